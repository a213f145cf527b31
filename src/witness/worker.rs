//! The checkpoint worker of `liankong run`: after every committed run, and
//! at the end of each interval, it issues a checkpoint if one is due. A run
//! within the interval after a checkpoint is covered when the interval is
//! over, whether or not another run comes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::config::Witness;
use super::issue::{IssueError, Issued, issue_due};
use crate::pipeline::Context;
use crate::worker::{self, MAX_THROTTLE, Next, Worker};

/// How often the worker looks for history written by another replica's
/// runs when nothing told it of one.
const LOOK_AGAIN: Duration = Duration::from_secs(600);

pub struct CheckpointWorker {
    ctx: Context,
    witness: Arc<Witness>,
    /// When the checkpoint of history already written falls due.
    due_at: Option<DateTime<Utc>>,
}

impl CheckpointWorker {
    pub fn new(ctx: Context, witness: Arc<Witness>) -> CheckpointWorker {
        CheckpointWorker {
            ctx,
            witness,
            due_at: None,
        }
    }
}

#[async_trait]
impl Worker for CheckpointWorker {
    type Error = IssueError;

    fn name(&self) -> String {
        worker::CHECKPOINT.to_owned()
    }

    async fn work(&mut self) -> Result<Next, IssueError> {
        let issued = issue_due(
            self.ctx.store.as_ref(),
            &self.witness,
            &self.ctx.subscribers,
            self.ctx.clock.now(),
        )
        .await?;
        self.due_at = match issued {
            Issued::NotDue { due_at } => Some(due_at),
            Issued::Unchanged | Issued::Issued { .. } => None,
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
