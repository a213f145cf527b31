//! When to try again, for adapters and webhook delivery alike: one capped
//! exponential schedule, its two jitters, and one `Retry-After` parser.
//!
//! Whether a failure is worth another attempt is not decided here (that is
//! [`crate::adapter::http::FetchError::is_retriable`] for adapters and the
//! dead-letter age for delivery); this module only says how long to wait.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

/// Doubling delays from `min`, never longer than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

/// Doublings beyond this change nothing: any cap is reached long before.
const MAX_DOUBLINGS: u32 = 30;

impl Backoff {
    /// The bound of the wait before retry `n` (1 for the first retry):
    /// `min · 2^(n−1)`, capped at `max`.
    pub fn ceiling(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(MAX_DOUBLINGS);
        self.min
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// Full jitter: uniform from zero to the ceiling. It spreads clients
    /// that failed together best, and suits retries within one adapter
    /// request, which are few and counted.
    pub fn full_jitter(&self, n: u32, rng: &mut fastrand::Rng) -> Duration {
        self.ceiling(n).mul_f64(rng.f64())
    }

    /// Equal jitter: half the ceiling fixed, half random. Webhook retries go
    /// on for a day against a receiver that may be down all along, so a wait
    /// never shrinks towards zero and delivery never spins on it.
    pub fn equal_jitter(&self, n: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling(n);
        ceiling / 2 + (ceiling / 2).mul_f64(rng.f64())
    }

    /// `times` full-jitter waits, for `backon`'s retry loop.
    pub fn full_jitter_waits(self, times: usize) -> FullJitterWaits {
        FullJitterWaits {
            backoff: self,
            times,
        }
    }
}

/// The waits of one adapter request's retries (a `backon` builder).
#[derive(Debug, Clone, Copy)]
pub struct FullJitterWaits {
    backoff: Backoff,
    times: usize,
}

impl backon::BackoffBuilder for FullJitterWaits {
    type Backoff = FullJitter;

    fn build(self) -> FullJitter {
        FullJitter {
            waits: self,
            next: 1,
            rng: fastrand::Rng::new(),
        }
    }
}

#[derive(Debug)]
pub struct FullJitter {
    waits: FullJitterWaits,
    next: u32,
    rng: fastrand::Rng,
}

impl Iterator for FullJitter {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.next as usize > self.waits.times {
            return None;
        }
        let wait = self.waits.backoff.full_jitter(self.next, &mut self.rng);
        self.next = self.next.saturating_add(1);
        Some(wait)
    }
}

/// How long a `Retry-After` value asks to wait at `now`: delay-seconds
/// (`120`) or an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`, and the two
/// obsolete forms RFC 9110 still has recipients accept). A date already past
/// asks for no wait; anything else is no answer (`None`).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = http_date(value)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of an answer's headers, as [`parse_retry_after`] reads it.
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

fn http_date(value: &str) -> Option<DateTime<Utc>> {
    let gmt = value.strip_suffix(" GMT");
    let naive = match gmt {
        // IMF-fixdate, then RFC 850.
        Some(v) => NaiveDateTime::parse_from_str(v, "%a, %d %b %Y %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(v, "%A, %d-%b-%y %H:%M:%S")),
        // asctime, whose day is padded with a space.
        None => NaiveDateTime::parse_from_str(value, "%a %b %e %H:%M:%S %Y"),
    };
    naive.ok().map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn retry_after_reads_seconds_and_each_http_date_form() {
        let now = at("1994-11-06T08:49:00Z");
        let s = Duration::from_secs;
        assert_eq!(parse_retry_after("120", now), Some(s(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(s(0)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(s(37))
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            Some(s(37))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:37 1994", now),
            Some(s(37))
        );
        // The next midnight.
        assert_eq!(
            parse_retry_after("Mon, 07 Nov 1994 00:00:00 GMT", now),
            Some(s(15 * 3600 + 11 * 60))
        );
        // A date already past: go now.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "-5",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn the_schedule_doubles_to_its_cap() {
        let b = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_millis(400),
        };
        let ceilings: Vec<u128> = (0..6).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 100, 200, 400, 400, 400]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_millis(400));
        let mut rng = fastrand::Rng::with_seed(7);
        for n in 1..40 {
            let full = b.full_jitter(n, &mut rng);
            let equal = b.equal_jitter(n, &mut rng);
            assert!(full <= b.ceiling(n), "{full:?}");
            assert!(
                equal >= b.ceiling(n) / 2 && equal <= b.ceiling(n),
                "{equal:?}"
            );
        }
        let hour = Backoff {
            min: Duration::from_secs(5),
            max: Duration::from_secs(3600),
        };
        assert_eq!(hour.ceiling(11), Duration::from_secs(3600));
        assert_eq!(hour.ceiling(10), Duration::from_secs(2560));
    }
}
