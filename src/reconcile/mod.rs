//! Reconciliation: the rules of `RULES.md` over the store as of a date.
//!
//! The [`registry`] lists every rule once; each [`rule::Rule`] says what it
//! reads and judges it ([`rules`], by family); [`evaluate`] asks the store
//! for its sums (`store::facts`) and runs every enabled rule over them. It
//! writes nothing: the alert stage turns the findings into alerts and
//! events. Nothing here logs a finding's content: findings of confidential
//! rules carry discipline data.

pub mod config;
pub mod evaluate;
pub mod finding;
pub mod registry;
pub mod rule;
pub mod rules;

pub use evaluate::{PROJECT_SLICE, evaluate, evaluate_in_slices};
pub use finding::{Finding, RuleId, Severity, SourceRef, View};
pub use registry::{RecipientError, RulesConfig, check_recipients};
