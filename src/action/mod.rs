//! Actions: the three buttons of execution control (预警、冻结、复活) and
//! what goes with them (`RULES.md` § Actions). An agency takes one through
//! the API or the CLI; [`take`] decides it ([`decide`]: every refusal, a
//! pure function) and records it as a record of `liankong.actions`, with
//! one outbox event per subscriber of each agency it goes to, in one
//! transaction. [`ledger`] says what the recorded actions amount to on a
//! day (*frozen*, *applied*, *holds*); the rules `action.*` follow them
//! through in finance's data with it.
//!
//! Nothing of discipline's data enters an action: a warning can name no
//! confidential alert, and an action's events and logs carry only the
//! action itself.

pub mod ledger;
pub mod take;
pub mod view;

pub use take::{
    ActionRequest, Actor, Known, Refusal, RefusalStatus, TakeError, Taken, decide, may_take, take,
    visible,
};
pub use view::{action_json, audience};
