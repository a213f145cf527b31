//! The simulator of the five agency systems, for tests, demos and benchmarks.
//! It generates one consistent budget year ([`generate()`]), serves finance
//! and npc over HTTP and discipline over mutual TLS exactly as `SYSTEMS.md`
//! describes them, drops the audit and orgdept files, and injects faults on
//! demand. It never talks to anything but loopback and its own directory.

mod data;
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
mod simulator;

#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod tests;

pub use data::{SimData, SimDataHandle};
pub use error::SimError;
pub use faults::{FaultHandle, Faults, RequestLog, RequestRecord};
pub use generate::{Dataset, GenParams, generate, grade_of};
pub use http::{CREDENTIALS, Credentials};
pub use pki::Pki;
pub use simulator::{SimOptions, Simulator};
