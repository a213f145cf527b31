//! The daemon (`liankong run`): one named worker per adapter on its cron
//! schedule, a reconciliation after each successful sync, the delivery
//! worker, the API, systemd's notifications and watchdog, reloads on
//! SIGHUP and a stop on SIGTERM that lets the work in hand finish within a
//! deadline.

mod reload;
mod run;
mod systemd;
mod workers;

pub use reload::GenerationError;
pub use run::{DaemonError, run_daemon};
pub use workers::{SHUTDOWN_DEADLINE, run_schedules};
