//! liankong (联控): five-party joint supervision of public budgets.
//!
//! Data flows one way (see `DESIGN.md`): adapters pull from the five agency
//! systems into the shared [`store`]; rules reconcile it into alerts; alerts
//! are delivered as signed webhooks. This library holds every stage; the
//! `liankong` binary only parses its command line and calls [`cli::run`].

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod action;
pub mod adapter;
pub mod alert;
pub mod api;
pub mod backoff;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod daemon;
pub mod deliver;
pub mod demo;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod money;
pub mod pipeline;
pub mod reconcile;
pub mod report;
pub mod sim;
pub mod store;
#[cfg(test)]
mod testing;
pub mod witness;
pub mod worker;
