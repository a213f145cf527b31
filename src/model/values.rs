//! The values of fields: validated codes, small exact decimals and the
//! enums of the five systems' fields.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::money::{DecimalError, format_fixed, parse_fixed};

/// A value that is not a valid canonical field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("{field}: {0}", field = .1)]
    Decimal(DecimalError, &'static str),
    #[error("{field}: {value:?} is not {expected}")]
    Invalid {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
}

macro_rules! digit_code {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, ModelError> {
                if s.len() == $len && s.bytes().all(|b| b.is_ascii_digit()) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(ModelError::Invalid {
                        field: stringify!($name),
                        value: s.to_owned(),
                        expected: $what,
                    })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ModelError;
            fn try_from(s: String) -> Result<Self, ModelError> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(c: $name) -> String {
                c.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

digit_code!(
    /// Finance's 6-digit unit code.
    UnitCode,
    6,
    "a 6-digit unit code"
);
digit_code!(
    /// Finance's 16-digit project code (region, start year, sequence).
    ProjectCode,
    16,
    "a 16-digit project code"
);

/// A non-negative decimal with 2 places, kept as hundredths: evaluation
/// scores (0–100) and percentages reported by units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Centi(pub i64);

impl Centi {
    pub fn parse(s: &str) -> Result<Centi, DecimalError> {
        parse_fixed(s, 2, "a decimal with 2 places").map(Centi)
    }

    /// A score on the 0–100 scale.
    pub fn parse_score(s: &str) -> Result<Centi, ModelError> {
        let c = Centi::parse(s).map_err(|e| ModelError::Decimal(e, "score"))?;
        if (0..=10_000).contains(&c.0) {
            Ok(c)
        } else {
            Err(ModelError::Invalid {
                field: "score",
                value: s.to_owned(),
                expected: "a score between 0 and 100",
            })
        }
    }
}

impl fmt::Display for Centi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_fixed(self.0, 2))
    }
}

/// The grade of an evaluation: 优 ≥ 90, 良 ≥ 80, 中 ≥ 60, 差 < 60.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    Excellent,
    Good,
    Fair,
    Poor,
}

impl Grade {
    /// The grade from its Chinese word as every source writes it.
    pub fn from_word(s: &str) -> Option<Grade> {
        match s {
            "优" => Some(Grade::Excellent),
            "良" => Some(Grade::Good),
            "中" => Some(Grade::Fair),
            "差" => Some(Grade::Poor),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectCategory {
    Special,
    Basic,
    Reserve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaKind {
    Initial,
    Adjustment,
    Reclaim,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    Allocation,
    Expenditure,
}

/// A unit's report to finance on rectifying an audit finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RectificationStatus {
    Rectified,
    InProgress,
}

/// The audit office's view of a finding: 未整改 / 整改中 / 已整改.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    Open,
    InProgress,
    Rectified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    Received,
    Verifying,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralOrigin {
    Audit,
    Finance,
    Npc,
    Public,
}

/// A unit name as the link step compares it: full-width brackets made
/// half-width and all white space (ASCII and the ideographic space) removed.
/// The audit office writes names this loosely (`SYSTEMS.md` §3).
pub fn normalize_unit_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            other => other,
        })
        .collect()
}
