//! Adapters: declarative manifests (`adapters/*.toml`) turned into sources
//! that pull the five agency systems into the store.
//!
//! [`Adapter::build`] joins a manifest with its part of the daemon config
//! (where the system is, its secrets, its schedule); [`sync::run_adapter`]
//! runs it once. Adding a system means writing a manifest, not code.

mod build;
pub mod file;
pub mod holder;
pub mod http;
pub mod json;
pub mod manifest;
pub mod mapping;
pub mod report;
pub mod retry;
pub mod sync;

pub use build::{Adapter, AdapterError, DeleteGuard, Source, StreamSpec, Unbuildable, build_all};
pub use report::{HeldReport, StreamReport, SyncReport};
pub use sync::{SyncOptions, run_adapter};
