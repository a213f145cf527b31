//! The delivery worker: a round of [`Deliverer::deliver_due`] at a time,
//! at once again while rounds claim full batches, otherwise every
//! `poll_secs`. A store that fails holds it off longer with every failure
//! in a row (from `poll_secs`, doubling, up to five minutes), instead of
//! asking it again every `poll_secs`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::Deliverer;
use crate::clock::Clock;
use crate::store::{Store, StoreError};
use crate::worker::{self, MAX_THROTTLE, Next, Worker};

pub struct DeliveryWorker {
    deliverer: Deliverer,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl DeliveryWorker {
    pub fn new(
        deliverer: Deliverer,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> DeliveryWorker {
        DeliveryWorker {
            deliverer,
            store,
            clock,
        }
    }

    fn poll(&self) -> Duration {
        Duration::from_secs(self.deliverer.config.poll_secs.max(1))
    }
}

#[async_trait]
impl Worker for DeliveryWorker {
    type Error = StoreError;

    fn name(&self) -> String {
        worker::DELIVERY.to_owned()
    }

    async fn work(&mut self) -> Result<Next, StoreError> {
        let round = self
            .deliverer
            .deliver_due(self.store.as_ref(), self.clock.as_ref())
            .await?;
        Ok(if round.attempted as i64 >= self.deliverer.config.batch {
            Next::Busy
        } else {
            Next::Idle
        })
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(self.poll()).await;
    }

    fn throttle(&self, consecutive: u32) -> Duration {
        worker::doubling(self.poll(), consecutive, MAX_THROTTLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::config::DeliveryConfig;
    use crate::store::StoreUrl;
    use crate::worker::{Workers, run};
    use tokio_util::sync::CancellationToken;

    #[tokio::test]
    async fn a_failing_store_is_asked_less_and_less_often() {
        let dir = tempfile::tempdir().unwrap();
        let url = StoreUrl::new(format!("sqlite:{}", dir.path().join("s.db").display()));
        let store = crate::store::open(&url).await.unwrap();
        store.migrate().await.unwrap();
        // The store stops answering: every round fails at once.
        store.close().await;
        let config = DeliveryConfig {
            poll_secs: 2,
            ..DeliveryConfig::default()
        };
        let deliverer = Deliverer::new(Vec::new(), &config).unwrap();
        let clock = Arc::new(FixedClock(chrono::DateTime::from_timestamp(0, 0).unwrap()));
        let workers = Workers::default();
        let stop = CancellationToken::new();

        tokio::time::pause();
        let task = tokio::spawn(run(
            DeliveryWorker::new(deliverer, store, clock.clone()),
            workers.clone(),
            clock,
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(600)).await;
        // Rounds at 0, 4, 10, 20, 38, 72, 138, 268 and 526 s (2 s poll after
        // a hold-off of 2, 4, … 256 s); unthrottled, every 2 s: 300.
        let s = workers.get(worker::DELIVERY).unwrap();
        assert_eq!((s.errors, s.consecutive_errors), (9, 9));
        assert!(
            s.last_error
                .as_deref()
                .unwrap()
                .starts_with("database error:"),
            "{s:?}"
        );
        stop.cancel();
        task.await.unwrap();
    }
}
