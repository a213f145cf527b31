//! The agencies' console (`DESIGN.md` § The console): server-rendered pages
//! under `/ui` on the API's listener, in Chinese for clerks. A clerk signs
//! in with a personal token and sees exactly what the API shows that
//! agency, through the same functions ([`crate::api::shared`]), and acts
//! through the same ones: acknowledge, silence, the actions of `RULES.md`.
//!
//! It must never show an agency more than the API would: an alert another
//! agency may not see answers as one that does not exist, and every value
//! is spliced by maud, escaped (the report's chart is the report module's
//! own escaped markup). Sessions live in memory ([`session`]); every form
//! carries the session's CSRF token ([`clerk::Posted`]).

mod actions;
mod adapters;
mod alert;
mod alerts;
mod clerk;
mod deliveries;
mod export;
mod layout;
mod report;
mod router;
pub mod session;
mod signin;
mod views;

pub use layout::CSP;
pub use router::router;
