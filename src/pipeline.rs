//! The pipeline after a sync: what every stage needs ([`Context`]), the
//! rules' findings as of a date (reused while no record changed), and the
//! evaluation that turns them into alerts and outbox events. The daemon
//! runs it after each successful sync; `reconcile` and `once` run it
//! directly.

use std::sync::Arc;

use chrono::NaiveDate;

use crate::adapter::SyncReport;
use crate::alert::{self, EvaluationOutcome, Lifecycle};
use crate::clock::Clock;
use crate::config::{Config, china_time};
use crate::deliver::{ClientError, Deliverer, Subscriber};
use crate::reconcile;
use crate::store::{Store, StoreError};
use crate::witness::{IssueError, Issued, Witness, issue_due};

/// What every stage needs: the store, the config, the subscribers, the clock.
/// A context's config never changes: a reload makes a new context.
#[derive(Clone)]
pub struct Context {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub subscribers: Arc<Vec<Subscriber>>,
    pub clock: Arc<dyn Clock>,
    /// The last evaluation's findings, reused while the store's records and
    /// the date are the same.
    pub last_findings: Arc<tokio::sync::Mutex<Option<LastFindings>>>,
    /// The checkpoint signer, when the config has a key.
    pub witness: Option<Arc<Witness>>,
    /// Told after every committed run: the checkpoint worker looks whether
    /// one is due.
    pub checkpoint_wake: Arc<tokio::sync::Notify>,
}

/// Findings as of a date over the store at one data generation
/// ([`Store::data_generation`]).
pub struct LastFindings {
    as_of: NaiveDate,
    generation: i64,
    findings: Arc<Vec<reconcile::Finding>>,
}

impl Context {
    pub fn new(
        store: Arc<dyn Store>,
        config: Arc<Config>,
        subscribers: Arc<Vec<Subscriber>>,
        clock: Arc<dyn Clock>,
    ) -> Context {
        Context {
            store,
            config,
            subscribers,
            clock,
            last_findings: Arc::default(),
            witness: None,
            checkpoint_wake: Arc::default(),
        }
    }

    /// Signs checkpoints with `witness` (none without).
    pub fn with_witness(mut self, witness: Option<Arc<Witness>>) -> Context {
        self.witness = witness;
        self
    }

    /// Issues a checkpoint if the config has a key and one is due, and
    /// keeps the store's newest in this machine's state file.
    pub async fn checkpoint(&self) -> Result<Option<Issued>, IssueError> {
        let Some(witness) = &self.witness else {
            return Ok(None);
        };
        let issued = issue_due(
            self.store.as_ref(),
            witness,
            &self.subscribers,
            self.clock.now(),
        )
        .await?;
        crate::witness::state::refresh(self.store.as_ref(), witness).await?;
        Ok(Some(issued))
    }

    /// The rules' findings as of `as_of`. The rules read nothing but the
    /// store's records, the date and this context's config, so when no
    /// record changed since the last evaluation (no stream has a new
    /// version: deletions and links follow records) its findings stand and
    /// the sums are not taken again. That is what keeps a sync that changed
    /// nothing cheap, on a province's data as on a county's.
    async fn findings(&self, as_of: NaiveDate) -> Result<Arc<Vec<reconcile::Finding>>, StoreError> {
        let mut last = self.last_findings.lock().await;
        // Read before the rules read: a change landing meanwhile makes the
        // next evaluation look again.
        let generation = self.store.data_generation().await?;
        if let Some(l) = last.as_ref()
            && l.as_of == as_of
            && l.generation == generation
        {
            tracing::debug!(%as_of, generation, "no record changed since the last evaluation: its findings stand");
            return Ok(l.findings.clone());
        }
        let findings =
            Arc::new(reconcile::evaluate(self.store.as_ref(), as_of, &self.config.rules).await?);
        *last = Some(LastFindings {
            as_of,
            generation,
            findings: findings.clone(),
        });
        Ok(findings)
    }
}

impl Context {
    /// Today in China time: the default as-of date.
    pub fn today(&self) -> NaiveDate {
        self.clock.now().with_timezone(&china_time()).date_naive()
    }

    /// Evaluates the rules as of `as_of` and applies the findings to the
    /// alerts and the outbox.
    pub async fn reconcile(&self, as_of: NaiveDate) -> Result<EvaluationOutcome, StoreError> {
        let findings = self.findings(as_of).await?;
        let applied = alert::apply_findings(
            self.store.as_ref(),
            &findings,
            as_of,
            self.clock.now(),
            Lifecycle {
                repeat_interval: chrono::Duration::hours(
                    self.config.alerts.repeat_interval_hours as i64,
                ),
            },
            &self.subscribers,
        )
        .await;
        crate::memory::give_back();
        applied
    }

    /// The pipeline after one adapter's run: when it succeeded, a
    /// reconciliation as of today, one at a time in this process (`turn`).
    /// A failed run changed nothing; a skipped one left the work to the
    /// replica holding its lease.
    pub async fn after_sync(
        &self,
        report: &SyncReport,
        turn: &tokio::sync::Mutex<()>,
    ) -> Result<Option<EvaluationOutcome>, StoreError> {
        if !report.ok() || report.skipped {
            return Ok(None);
        }
        // The run committed: a checkpoint may be due, whatever the
        // reconciliation does.
        self.checkpoint_wake.notify_one();
        let _turn = turn.lock().await;
        self.reconcile(self.today()).await.map(Some)
    }

    pub fn deliverer(&self) -> Result<Deliverer, ClientError> {
        Deliverer::new(self.subscribers.as_ref().clone(), &self.config.delivery)
    }
}
