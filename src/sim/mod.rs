//! The simulator of the five agency systems, for tests, demos and benchmarks.
//! It generates one consistent budget year ([`generate()`]), serves finance
//! and npc over HTTP and discipline over mutual TLS exactly as `SYSTEMS.md`
//! describes them, drops the audit and orgdept files, and injects faults on
//! demand. It never talks to anything but loopback and its own directory.
//!
//! ```no_run
//! # async fn demo() -> Result<(), liankong::sim::SimError> {
//! use liankong::model::Collection;
//! use liankong::sim::{CREDENTIALS, GenParams, SimOptions, Simulator};
//!
//! let sim = Simulator::start(SimOptions::new(GenParams::small(), "/tmp/sim")).await?;
//! let finance = sim.finance_url(); // http://127.0.0.1:PORT, CREDENTIALS.finance_*
//! let ca = sim.pki_dir().join("ca.pem"); // with client.pem / client.key for discipline
//! sim.faults().set_error_rate(0.2); // one request in five answers 503
//! sim.data().delete(Collection::Payments, "ZF2021000001001"); // served voided
//! sim.write_files()?; // refresh the audit CSV and orgdept workbooks
//! let asked = sim.requests(); // what the client did
//! sim.shutdown().await;
//! # let _ = (finance, ca, asked, CREDENTIALS.npc_api_key);
//! # Ok(())
//! # }
//! ```

mod data;
mod day;
mod discipline;
mod error;
mod faults;
pub mod files;
mod finance;
pub mod format;
mod generate;
mod http;
mod names;
mod npc;
mod pki;
mod plant;
mod simulator;

#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod tests;

pub use data::{SimData, SimDataHandle};
pub use day::{DayChanges, a_days_changes};
pub use error::SimError;
pub use faults::{FaultHandle, Faults, Garble, RequestLog, RequestRecord};
pub use generate::{Dataset, GenParams, generate, grade_of};
pub use http::{CREDENTIALS, Credentials};
pub use pki::Pki;
pub use plant::{AnomalyShare, Planted};
pub use simulator::{SimOptions, Simulator};
