//! What agencies take through liankong (`RULES.md` § Actions).

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{Agency, ProjectCode};
use crate::money::Fen;

/// What an agency did (`RULES.md` § Actions): the three buttons of execution
/// control and what goes with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// 预警: a formal warning to the unit about a firing alert.
    Warn,
    /// 冻结: no more payments on the project from a day.
    Freeze,
    /// Lifts a freeze from a day.
    Unfreeze,
    /// 收回: takes an amount of the project's quota back.
    Reclaim,
    /// 盘活、复活: puts reclaimed money to use in another project.
    Revive,
    /// 撤销: takes back a mistaken action.
    Withdraw,
}

impl ActionKind {
    pub const ALL: [ActionKind; 6] = [
        ActionKind::Warn,
        ActionKind::Freeze,
        ActionKind::Unfreeze,
        ActionKind::Reclaim,
        ActionKind::Revive,
        ActionKind::Withdraw,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Warn => "warn",
            ActionKind::Freeze => "freeze",
            ActionKind::Unfreeze => "unfreeze",
            ActionKind::Reclaim => "reclaim",
            ActionKind::Revive => "revive",
            ActionKind::Withdraw => "withdraw",
        }
    }

    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A word that names no action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an action (warn, freeze, unfreeze, reclaim, revive, withdraw)")]
pub struct UnknownAction(pub String);

impl std::str::FromStr for ActionKind {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<ActionKind, UnknownAction> {
        ActionKind::parse(s).ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

/// liankong `actions`: one action an agency took, as recorded. Append-only:
/// an action is never changed, a mistaken one is withdrawn by another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub action_id: String,
    pub kind: ActionKind,
    /// The agency that took it (its token's).
    pub agency: Agency,
    /// The name of the token it came through (`cli` from the command line).
    pub token: String,
    /// The person the caller named.
    pub by: String,
    /// When liankong recorded it (whole microseconds).
    pub recorded_at: DateTime<Utc>,
    /// The day it was taken: never after the day it was recorded.
    pub taken_on: NaiveDate,
    /// The project and year it concerns; a withdrawal's are those of the
    /// action it withdraws.
    pub project_code: ProjectCode,
    pub year: i32,
    /// `warn`: the alert it is about, and the day it must be answered by.
    pub alert_id: Option<String>,
    pub deadline: Option<NaiveDate>,
    /// `freeze`, `unfreeze`: the day it takes effect.
    pub effective_on: Option<NaiveDate>,
    /// `reclaim`, `revive`: greater than zero.
    pub amount: Option<Fen>,
    /// `revive`: the reclaims it draws on, in the order it draws.
    pub from: Vec<String>,
    /// `withdraw`: the action it takes back.
    pub withdraws: Option<String>,
    pub reason: String,
}
