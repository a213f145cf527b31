//! The rules' settings (`[rules."rule.id"]` in the config): each rule can be
//! switched off, its thresholds changed and its recipients overridden. The
//! defaults are those of `RULES.md`.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

use crate::model::Agency;
use crate::money::{Fen, parse_fixed};

/// Money in a config file: yuan as a string with up to 2 places (`"100000.00"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Yuan(pub Fen);

impl<'de> Deserialize<'de> for Yuan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Yuan, D::Error> {
        let s = String::deserialize(d)?;
        Fen::from_yuan(&s)
            .map(Yuan)
            .map_err(serde::de::Error::custom)
    }
}

/// A number with up to 2 decimal places (percent points, percentages),
/// kept as hundredths. Written as an integer, a float or a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hundredths(pub i64);

impl<'de> Deserialize<'de> for Hundredths {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Hundredths, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Float(f64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Int(i) => i.to_string(),
            // A threshold, not money: the shortest form of the float is what
            // the operator wrote (14.99 stays "14.99").
            Raw::Float(f) => f.to_string(),
            Raw::Text(s) => s,
        };
        parse_fixed(&text, 2, "a number with up to 2 decimal places")
            .map(Hundredths)
            .map_err(serde::de::Error::custom)
    }
}

/// A day of the year as `MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthDay {
    pub month: u32,
    pub day: u32,
}

impl MonthDay {
    pub fn in_year(self, year: i32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(year, self.month, self.day)
    }
}

impl fmt::Display for MonthDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

impl<'de> Deserialize<'de> for MonthDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MonthDay, D::Error> {
        let s = String::deserialize(d)?;
        let parsed = s
            .split_once('-')
            .and_then(|(m, d)| Some((m.parse::<u32>().ok()?, d.parse::<u32>().ok()?)))
            .map(|(month, day)| MonthDay { month, day })
            .filter(|md| md.in_year(2024).is_some());
        parsed.ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a day like \"03-01\"")))
    }
}

/// Declares a rule's settings struct: `enabled`, `recipients`, then its own
/// parameters, each with a default and a doc comment.
/// Missing keys take the values of the struct's `Default`, which
/// `with_default!` builds from `defaults`.
macro_rules! rule_settings {
    ($(#[$doc:meta])* $name:ident { $( $(#[$fdoc:meta])* $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// Whether the rule runs at all.
            pub enabled: bool,
            /// Replaces the recipients of `RULES.md`. A confidential rule
            /// cannot be sent anywhere `RULES.md` does not allow.
            pub recipients: Option<Vec<Agency>>,
            $( $(#[$fdoc])* pub $field: $ty, )*
        }
    };
}

macro_rules! default_fns {
    ($( $field:ident : $ty:ty = $default:expr ),* $(,)?) => {
        $( pub fn $field() -> $ty { $default } )*
    };
}

/// All rules' settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    #[serde(rename = "budget.approved_mismatch", default)]
    pub approved_mismatch: ApprovedMismatch,
    #[serde(rename = "execution.mirror_mismatch", default)]
    pub mirror_mismatch: MirrorMismatch,
    #[serde(rename = "execution.slow", default)]
    pub slow: Slow,
    #[serde(rename = "funds.idle", default)]
    pub idle: Idle,
    #[serde(rename = "disbursement.lump_sum", default)]
    pub lump_sum: LumpSum,
    #[serde(rename = "disbursement.tranche_unsettled", default)]
    pub tranche_unsettled: TrancheUnsettled,
    #[serde(rename = "target.missing", default)]
    pub target_missing: Plain,
    #[serde(rename = "evaluation.result_unapplied", default)]
    pub result_unapplied: ResultUnapplied,
    #[serde(rename = "audit.status_mismatch", default)]
    pub status_mismatch: StatusMismatch,
    #[serde(rename = "audit.overdue", default)]
    pub overdue: Overdue,
    #[serde(rename = "referral.freeze_breach", default)]
    pub freeze_breach: Plain,
    #[serde(rename = "orgdept.rate_mismatch", default)]
    pub rate_mismatch: RateMismatch,
    #[serde(rename = "yearend.unspendable", default)]
    pub unspendable: Unspendable,
    #[serde(rename = "payment.over_quota", default)]
    pub over_quota: Plain,
    #[serde(rename = "link.unknown_project", default)]
    pub unknown_project: Plain,
    #[serde(rename = "link.unresolved_unit", default)]
    pub unresolved_unit: Plain,
}

/// Settings of a rule without parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Plain {
    /// Whether the rule runs at all.
    pub enabled: bool,
    /// Replaces the recipients of `RULES.md`.
    pub recipients: Option<Vec<Agency>>,
}

impl Default for Plain {
    fn default() -> Plain {
        Plain {
            enabled: true,
            recipients: None,
        }
    }
}

mod defaults {
    use super::*;
    default_fns! {
        tolerance: Yuan = Yuan(Fen(0)),
        critical_percent: Hundredths = Hundredths(100),
        critical_amount: Yuan = Yuan(Fen(100_000_000)),
        min_quota: Yuan = Yuan(Fen(10_000_000)),
        start: MonthDay = MonthDay { month: 3, day: 1 },
        warning_gap_pp: Hundredths = Hundredths(1500),
        critical_gap_pp: Hundredths = Hundredths(3000),
        idle_days: i64 = 180,
        large_quota: Yuan = Yuan(Fen(500_000_000)),
        min_tranches: i64 = 3,
        settle_days: i64 = 90,
        below_score: Hundredths = Hundredths(8000),
        cut_percent: Hundredths = Hundredths(1000),
        grace_days: i64 = 30,
        critical_after_days: i64 = 90,
        tolerance_pp: Hundredths = Hundredths(100),
        from: MonthDay = MonthDay { month: 10, day: 1 },
        unspent_percent: Hundredths = Hundredths(1000),
        lookback_days: i64 = 90,
    }
}

macro_rules! with_default {
    ($name:ident { $( $field:ident ),* }) => {
        impl Default for $name {
            fn default() -> $name {
                $name { enabled: true, recipients: None, $( $field: defaults::$field() ),* }
            }
        }
    };
}

rule_settings! {
    /// `budget.approved_mismatch`.
    ApprovedMismatch {
        /// Differences up to this many yuan are not reported.
        tolerance: Yuan,
        /// Critical when the difference reaches this percentage of the larger side…
        critical_percent: Hundredths,
        /// …or this many yuan.
        critical_amount: Yuan,
    }
}
with_default!(ApprovedMismatch {
    tolerance,
    critical_percent,
    critical_amount
});

rule_settings! {
    /// `execution.mirror_mismatch`.
    MirrorMismatch {
        /// Differences up to this many yuan are not reported.
        tolerance: Yuan,
    }
}
with_default!(MirrorMismatch { tolerance });

rule_settings! {
    /// `execution.slow`.
    Slow {
        /// Projects with a smaller quota are not judged.
        min_quota: Yuan,
        /// Not judged before this day of the year (`MM-DD`).
        start: MonthDay,
        /// Warning when time progress leads execution progress by this many pp…
        warning_gap_pp: Hundredths,
        /// …critical from this many.
        critical_gap_pp: Hundredths,
    }
}
with_default!(Slow {
    min_quota,
    start,
    warning_gap_pp,
    critical_gap_pp
});

rule_settings! {
    /// `funds.idle`.
    Idle {
        /// Days without expenditure (while a balance remains) before it fires.
        idle_days: i64,
    }
}
with_default!(Idle { idle_days });

rule_settings! {
    /// `disbursement.lump_sum`.
    LumpSum {
        /// Full-year projects from this quota on must be paid in tranches.
        large_quota: Yuan,
        /// The fewest tranches that may reach the quota.
        min_tranches: i64,
    }
}
with_default!(LumpSum {
    large_quota,
    min_tranches
});

rule_settings! {
    /// `disbursement.tranche_unsettled`.
    TrancheUnsettled {
        /// Days a unit has to spend a tranche.
        settle_days: i64,
    }
}
with_default!(TrancheUnsettled { settle_days });

rule_settings! {
    /// `evaluation.result_unapplied`.
    ResultUnapplied {
        /// Evaluation scores below this must lead to a cut.
        below_score: Hundredths,
        /// The cut, in percent of last year's quota.
        cut_percent: Hundredths,
    }
}
with_default!(ResultUnapplied {
    below_score,
    cut_percent
});

rule_settings! {
    /// `audit.status_mismatch`.
    StatusMismatch {
        /// Days the audit office has to confirm a rectification finance recorded.
        grace_days: i64,
    }
}
with_default!(StatusMismatch { grace_days });

rule_settings! {
    /// `audit.overdue`.
    Overdue {
        /// Critical (and sent to discipline) when more than this many days overdue.
        critical_after_days: i64,
    }
}
with_default!(Overdue {
    critical_after_days
});

rule_settings! {
    /// `orgdept.rate_mismatch`.
    RateMismatch {
        /// Reported and computed rates may differ by this many pp.
        tolerance_pp: Hundredths,
    }
}
with_default!(RateMismatch { tolerance_pp });

rule_settings! {
    /// `yearend.unspendable`.
    Unspendable {
        /// Judged from this day of the year on (`MM-DD`).
        from: MonthDay,
        /// Projects with a smaller quota are not judged.
        min_quota: Yuan,
        /// Fires when the projected unspent share of the quota exceeds this percentage.
        unspent_percent: Hundredths,
        /// The spending pace is measured over this many days before the as-of date.
        lookback_days: i64,
    }
}
with_default!(Unspendable {
    from,
    min_quota,
    unspent_percent,
    lookback_days
});
