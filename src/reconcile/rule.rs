//! What a rule is to the evaluation: its settings (which are the rule),
//! what it reads, and how it judges. The evaluation runs every enabled rule
//! of the [registry](super::registry) through this trait and nothing else.

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::finding::{Finding, RuleId};
use crate::model::{Action, Agency};
use crate::store::StoreError;
use crate::store::facts::{FactStore, FactsQuery, FindingFact, ProjectFacts, ProjectRange};

/// What every rule's settings have: a switch and a recipient override.
/// Implemented by [`rule_settings!`](super::config::rule_settings).
pub trait Switch {
    fn enabled(&self) -> bool;
    /// The configured recipients, replacing those of `RULES.md`.
    fn recipients(&self) -> Option<&[Agency]>;
}

/// A rule's place in the registry. Implemented by the registry itself.
pub trait Registered {
    fn id(&self) -> RuleId;
}

/// What a rule judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Finance's projects, a slice at a time ([`Facts::projects`]): the
    /// rule judges each project on its own facts, so its findings are the
    /// same whatever the slice.
    Projects,
    /// What it asks the store for, once per evaluation.
    Store,
    /// What it asks the store for and every other rule's findings of this
    /// evaluation ([`Facts::others`]): judged last, once.
    Findings,
}

/// Who may receive a confidential rule's findings, whatever the config says.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    pub agencies: &'static [Agency],
    /// How the config error names them.
    pub described: &'static str,
}

/// A rule of `RULES.md`: its settings struct, registered once in
/// [`registry!`](super::registry), judging the facts of an evaluation.
#[async_trait]
pub trait Rule: Switch + Registered + Send + Sync {
    /// What it judges: by default what it asks the store for, once.
    fn reads(&self) -> Reads {
        Reads::Store
    }

    /// For a rule that reads discipline data: who may receive it.
    fn allowed(&self) -> Option<Allowed> {
        None
    }

    /// The rule's findings. A rule that [`Reads::Projects`] is called once
    /// per slice; any other once.
    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError>;
}

/// A rule that judges each project on its own facts and nothing else: its
/// [`Rule`] impl follows (it [`Reads::Projects`]).
pub trait ProjectRule: Switch + Registered + Send + Sync {
    fn judge_projects(&self, q: &FactsQuery, projects: &[ProjectFacts]) -> Vec<Finding>;
}

#[async_trait]
impl<R: ProjectRule> Rule for R {
    fn reads(&self) -> Reads {
        Reads::Projects
    }

    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        Ok(self.judge_projects(&facts.query, facts.projects()))
    }
}

/// What an evaluation knows: the store to ask, the dates, and (for project
/// rules) the slice of projects being judged. Facts that several rules
/// read are asked for once.
pub struct Facts<'a> {
    pub store: &'a dyn FactStore,
    pub query: FactsQuery,
    /// The project codes of this slice; every code outside a slice.
    pub range: ProjectRange,
    projects: &'a [ProjectFacts],
    others: &'a [Finding],
    audit_findings: OnceCell<Vec<FindingFact>>,
    actions: OnceCell<Vec<Action>>,
}

impl<'a> Facts<'a> {
    /// The facts of one slice of projects, for the project rules.
    pub fn of_slice(
        store: &'a dyn FactStore,
        query: FactsQuery,
        range: &ProjectRange,
        projects: &'a [ProjectFacts],
    ) -> Facts<'a> {
        Facts {
            store,
            query,
            range: range.clone(),
            projects,
            others: &[],
            audit_findings: OnceCell::new(),
            actions: OnceCell::new(),
        }
    }

    /// The facts of the whole store, for every other rule.
    pub fn of_store(store: &'a dyn FactStore, query: FactsQuery) -> Facts<'a> {
        Facts {
            store,
            query,
            range: ProjectRange::default(),
            projects: &[],
            others: &[],
            audit_findings: OnceCell::new(),
            actions: OnceCell::new(),
        }
    }

    /// The facts of the whole store and the findings of every rule judged
    /// before, for the rules that [`Reads::Findings`].
    pub fn with_findings(self, others: &'a [Finding]) -> Facts<'a> {
        Facts { others, ..self }
    }

    /// The findings of the other rules of this evaluation (only for a rule
    /// that [`Reads::Findings`]).
    pub fn others(&self) -> &'a [Finding] {
        self.others
    }

    /// Every action of the year `Y`, withdrawals included, asked for once.
    pub async fn actions(&self) -> Result<&[Action], StoreError> {
        let actions = self
            .actions
            .get_or_try_init(|| self.store.actions(Some(self.query.year)))
            .await?;
        Ok(actions)
    }

    /// The [`ProjectFacts`] of this slice (none outside a slice).
    pub fn projects(&self) -> &'a [ProjectFacts] {
        self.projects
    }

    /// The live audit findings, asked for once however many rules read them.
    pub async fn audit_findings(&self) -> Result<&[FindingFact], StoreError> {
        let findings = self
            .audit_findings
            .get_or_try_init(|| self.store.audit_findings())
            .await?;
        Ok(findings)
    }
}
