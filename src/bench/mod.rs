//! `liankong bench`: a province-year from the simulator, synced and
//! reconciled into a fresh SQLite store and timed against the `sqlite3` shell
//! doing the core of the same job on the same data as CSV.
//!
//! One scale is one run, in order: (a) a full sync of the five adapters and a
//! reconciliation into a new store, (b) the same again with nothing changed
//! at the sources, (c) a reconciliation alone, (f) a day's changes (the
//! simulator adds 1% new payments and changes 0.1% of quotas and npc budget
//! lines; what the daemon does every few minutes) synced and reconciled, (d)
//! the peak resident memory of this process during each of them, (g) with
//! `--anomalies`, the delivery of the alerts (a) raised over the planted
//! anomalies to one receiver per agency, and (e) the
//! baseline: the `sqlite3`
//! shell importing payments, quotas, projects, npc budgets and execution as
//! CSV and computing each project's execution progress and the npc-versus-
//! finance mismatches in SQL.
//!
//! The simulator runs in a child process (`liankong sim`), so the memory
//! measured is the daemon's side only: this process does exactly what
//! `liankong once` does, with the same library calls. Nothing here is used by
//! the daemon, and nothing here asserts a time: the figures are printed for a
//! person to judge against the targets.
//!
//! [`scale`] runs one scale, [`summary`] prints the figures against the
//! targets; [`baseline`] is the `sqlite3` shell's side and the CSV export it
//! imports; [`delivery`] is phase (g), [`receiver`] the agencies' side of it.

pub mod baseline;
pub mod delivery;
pub mod receiver;
pub mod scale;
pub mod summary;

pub use baseline::{CSV_FILES, baseline_sql, export_csv};
pub use delivery::Delivery;
pub use receiver::Received;
pub use scale::*;
pub use summary::print_summary;
