//! The rules of `RULES.md`, a file per family (the part of the id before
//! the dot). Each family declares its rules' settings, their [`Rule`]
//! impls (what they read) and their judging: pure functions from the
//! store's facts and the settings to findings. Every comparison is exact
//! integer arithmetic (fen, days, and percentages cross-multiplied in
//! `i128`); rounding happens only when a number is shown.
//!
//! [`Rule`]: super::rule::Rule

pub mod action;
pub mod audit;
pub mod budget;
pub mod disbursement;
pub mod evaluation;
pub mod execution;
pub mod funds;
pub mod link;
pub mod orgdept;
pub mod payment;
pub mod referral;
mod shared;
pub mod target;
pub mod yearend;

pub use orgdept::quarter_end;
pub use shared::{percent, yuan};
