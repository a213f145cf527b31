//! Alerts: findings of an evaluation become alerts that fire, escalate,
//! remind and resolve ([`lifecycle`], a pure function), and every change
//! the recipients must hear of becomes one outbox event per subscriber, in
//! the same transaction ([`apply`]).
//!
//! An alert's identity is the sha-256 of a per-store salt and its subject:
//! one condition is one alert however often it is evaluated, and an id shown
//! to finance cannot be turned back into a referral number by guessing.
//! Each recipient gets the view of the finding it may see
//! ([`Finding::view_for`](crate::reconcile::Finding::view_for)); a silenced
//! alert is kept and listed but not delivered. Logs carry counts and ids
//! only, never a finding's content. Signing and sending belong to
//! [`crate::deliver`].

pub mod apply;
pub mod events;
pub mod lifecycle;
pub mod silences;
pub mod view;

pub use crate::store::alerts::{AlertState, EventType, SilenceScope};
pub use apply::{EvaluationOutcome, alert_id, apply_findings};
pub use events::event_body;
pub use lifecycle::Lifecycle;
pub use silences::in_force;
pub use view::{AlertFilter, AlertView, StateFilter, known_rule, view_for, visible};
