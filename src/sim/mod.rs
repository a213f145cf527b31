//! The simulator of the five agency systems, for tests, demos and benchmarks.
//! It generates one consistent budget year ([`generate()`]), serves finance
//! and npc over HTTP and discipline over mutual TLS exactly as `SYSTEMS.md`
//! describes them, drops the audit and orgdept files, and injects faults on
//! demand. It never talks to anything but loopback and its own directory.

mod data;
mod error;
pub mod files;
pub mod format;
mod generate;
mod names;

#[cfg(test)]
mod tests;

pub use data::{SimData, SimDataHandle};
pub use error::SimError;
pub use generate::{Dataset, GenParams, generate, grade_of};
