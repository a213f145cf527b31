//! The checkpoint worker of `liankong run`: after every committed run, and
//! at the end of each interval, it issues a checkpoint if one is due. A run
//! within the interval after a checkpoint is covered when the interval is
//! over, whether or not another run comes.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::issue::{IssueError, Issued};
use crate::pipeline::Context;
use crate::worker::{self, MAX_THROTTLE, Next, Worker};

/// How often the worker looks for history written by another replica's
/// runs when nothing told it of one.
const LOOK_AGAIN: Duration = Duration::from_secs(600);

/// Runs with a context that has a witness (without one it does nothing).
pub struct CheckpointWorker {
    ctx: Context,
    /// When the checkpoint of history already written falls due.
    due_at: Option<DateTime<Utc>>,
}

impl CheckpointWorker {
    pub fn new(ctx: Context) -> CheckpointWorker {
        CheckpointWorker { ctx, due_at: None }
    }
}

#[async_trait]
impl Worker for CheckpointWorker {
    type Error = IssueError;

    fn name(&self) -> String {
        worker::CHECKPOINT.to_owned()
    }

    async fn work(&mut self) -> Result<Next, IssueError> {
        self.due_at = match self.ctx.checkpoint().await? {
            Some(Issued::NotDue { due_at }) => Some(due_at),
            _ => None,
        };
        Ok(Next::Idle)
    }

    async fn wait_for_work(&mut self) {
        let wait = match self.due_at {
            Some(due_at) => (due_at - self.ctx.clock.now()).to_std().unwrap_or_default(),
            None => LOOK_AGAIN,
        };
        tokio::select! {
            _ = self.ctx.checkpoint_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }

    fn throttle(&self, consecutive: u32) -> Duration {
        worker::doubling(Duration::from_secs(5), consecutive, MAX_THROTTLE)
    }
}
