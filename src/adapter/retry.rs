//! When to retry a failed request. Whether an error is worth retrying is the
//! error's business ([`super::http::FetchError::is_retriable`]); this module
//! holds the adapters' policy: how many attempts, the bounds of the shared
//! schedule ([`crate::backoff`], full jitter) and how long a `Retry-After`
//! may ask us to wait.

use std::time::Duration;

use crate::backoff::{Backoff, FullJitterWaits};
use crate::config::SyncConfig;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// A longer `Retry-After` ends the retries.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn from_config(c: &SyncConfig) -> RetryPolicy {
        RetryPolicy {
            attempts: c.retry_attempts,
            min_delay: c.retry_min_delay(),
            max_delay: c.retry_max_delay(),
            max_retry_after: c.max_retry_after(),
        }
    }

    /// The delays between attempts.
    pub fn backoff(&self) -> FullJitterWaits {
        Backoff {
            min: self.min_delay,
            max: self.max_delay,
        }
        .full_jitter_waits(self.attempts.saturating_sub(1))
    }

    /// The delay before the next attempt given the server's `Retry-After`:
    /// the server's word when it gives one we are willing to wait for, the
    /// backoff's otherwise; `None` ends the retries.
    pub fn adjust(
        &self,
        retry_after: Option<Duration>,
        backoff: Option<Duration>,
    ) -> Option<Duration> {
        let backoff = backoff?;
        match retry_after {
            Some(wait) if wait > self.max_retry_after => None,
            Some(wait) => Some(wait),
            None => Some(backoff),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    #[test]
    fn delays_are_capped_jittered_and_counted() {
        let p = RetryPolicy {
            attempts: 6,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
            max_retry_after: Duration::from_secs(60),
        };
        let delays: Vec<Duration> = p.backoff().build().collect();
        assert_eq!(delays.len(), 5, "six attempts are five waits");
        for (d, cap) in delays.iter().zip([100, 200, 400, 400, 400]) {
            assert!(*d <= Duration::from_millis(cap), "{d:?} over {cap} ms");
        }
        assert_eq!(
            p.adjust(Some(Duration::from_secs(2)), Some(Duration::ZERO)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            p.adjust(Some(Duration::from_secs(61)), Some(Duration::ZERO)),
            None
        );
        assert_eq!(p.adjust(None, None), None);
    }
}
