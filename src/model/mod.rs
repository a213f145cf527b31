//! The canonical model: one typed record per collection of the five agency
//! systems (`SYSTEMS.md`), after the adapters have translated each source's
//! conventions away. Money is [`Fen`], dates are `NaiveDate`, instants are UTC,
//! codes are validated newtypes. A record that exists is valid.
//!
//! The serialised form of a record (serde JSON, fields in declaration order) is
//! its *canonical content*: the store hashes exactly these bytes, so changing a
//! field's name or order here changes every hash and needs a migration.
//!
//! The model by room: [`agency`] (who: agencies, sources, collections),
//! [`values`] (codes, small decimals and the enums of fields), [`records`]
//! (the records of the five systems and [`Record`]) and [`action`] (what
//! agencies take through liankong).

mod action;
mod agency;
mod records;
mod values;

pub use action::{Action, ActionKind, UnknownAction};
pub use agency::{Agency, Collection, Source, UnknownAgency};
pub use records::*;
pub use values::*;
