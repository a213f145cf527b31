//! The rules' settings (`[rules."rule.id"]` in the config): each rule can be
//! switched off, its thresholds changed and its recipients overridden. The
//! defaults are those of `RULES.md`. Each rule declares its own settings
//! beside its judging ([`rule_settings!`]); the registry gathers them into
//! [`RulesConfig`](super::RulesConfig). Here are the types thresholds are
//! written in.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

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
/// parameters, each with a doc comment (the operator's manual) and its
/// default (that of `RULES.md`). Missing keys take their defaults.
macro_rules! rule_settings {
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $(#[$fdoc:meta])* $field:ident : $ty:ty = $default:expr ),* $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, ::serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// Whether the rule runs at all.
            pub enabled: bool,
            /// Replaces the recipients of `RULES.md`. A confidential rule
            /// cannot be sent anywhere `RULES.md` does not allow.
            pub recipients: Option<Vec<$crate::model::Agency>>,
            $( $(#[$fdoc])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> $name {
                $name {
                    enabled: true,
                    recipients: None,
                    $( $field: $default, )*
                }
            }
        }

        impl $crate::reconcile::rule::Switch for $name {
            fn enabled(&self) -> bool {
                self.enabled
            }
            fn recipients(&self) -> Option<&[$crate::model::Agency]> {
                self.recipients.as_deref()
            }
        }
    };
}
pub(crate) use rule_settings;
