//! Money as integer fen, and the exact fixed-point parsing every source needs.
//!
//! Sources send money as decimal strings: finance in yuan with 2 places, npc in
//! 万元 with up to 6 places, audit in 万元 with 2. A string converts to fen only
//! when it does so exactly; anything that would need rounding, that overflows
//! `i64`, or that is not a plain decimal (`"1e5"`, `"12,34"`, `""`) is an error.
//! Floats never touch money in this crate.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in fen (0.01 yuan).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(pub i64);

/// Fen per yuan, as a power of ten.
const YUAN_PLACES: u32 = 2;
/// Fen per 万元 (10,000 yuan), as a power of ten.
const WAN_PLACES: u32 = 6;

/// A decimal string that is not an exact amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not {expected}: {reason}")]
pub struct DecimalError {
    /// The string as received.
    pub input: String,
    /// What the string should have been, e.g. "an amount in yuan".
    pub expected: &'static str,
    /// Why it is not.
    pub reason: &'static str,
}

impl Fen {
    pub const ZERO: Fen = Fen(0);

    /// Parses yuan with at most 2 significant decimal places (`"1250000.00"`).
    pub fn from_yuan(s: &str) -> Result<Fen, DecimalError> {
        parse_fixed(s, YUAN_PLACES, "an amount in yuan").map(Fen)
    }

    /// Parses 万元 with at most 6 significant decimal places (`"125.000000"`).
    pub fn from_wan(s: &str) -> Result<Fen, DecimalError> {
        parse_fixed(s, WAN_PLACES, "an amount in 万元").map(Fen)
    }

    /// Yuan with exactly 2 places, e.g. `"-1234.05"`.
    pub fn to_yuan(self) -> String {
        format_fixed(self.0, YUAN_PLACES)
    }

    /// 万元 with exactly 6 places, e.g. `"125.000000"`.
    pub fn to_wan(self) -> String {
        format_fixed(self.0, WAN_PLACES)
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }
}

impl fmt::Display for Fen {
    /// Money is shown as yuan with 2 places.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_yuan())
    }
}

/// Parses a plain decimal (`-?digits(.digits)?`) into an integer scaled by
/// `10^places`. Extra decimal places are accepted only when they are zeros,
/// since only then is the value exact.
pub fn parse_fixed(s: &str, places: u32, expected: &'static str) -> Result<i64, DecimalError> {
    let err = |reason| DecimalError {
        input: s.to_owned(),
        expected,
        reason,
    };
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            "it must be digits with an optional sign and decimal point",
        ));
    }
    let frac = match frac_part {
        Some(f) if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(err("it must have digits after the decimal point"));
        }
        Some(f) => f,
        None => "",
    };
    let places = places as usize;
    let (kept, dropped) = frac.split_at(frac.len().min(places));
    if dropped.bytes().any(|b| b != b'0') {
        return Err(err("it has more decimal places than the unit allows"));
    }
    let overflow = || err("it is too large");
    let mut value: i64 = 0;
    for digit in int_part.bytes().chain(kept.bytes()) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(digit - b'0')))
            .ok_or_else(overflow)?;
    }
    for _ in kept.len()..places {
        value = value.checked_mul(10).ok_or_else(overflow)?;
    }
    Ok(if negative { -value } else { value })
}

/// Formats an integer scaled by `10^places` as a decimal with exactly `places`
/// places.
pub fn format_fixed(value: i64, places: u32) -> String {
    let scale = 10u64.pow(places);
    let magnitude = value.unsigned_abs();
    let sign = if value < 0 { "-" } else { "" };
    if places == 0 {
        return format!("{sign}{magnitude}");
    }
    format!(
        "{sign}{}.{:0width$}",
        magnitude / scale,
        magnitude % scale,
        width = places as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_round_trips_exactly() {
        let cases = [
            ("0.00", 0),
            ("0.01", 1),
            ("0.10", 10),
            ("1.00", 100),
            ("1250000.00", 125_000_000),
            ("-0.01", -1),
            ("-1234.56", -123_456),
            ("9999999999999.99", 999_999_999_999_999),
            ("1234567890123.45", 123_456_789_012_345),
            ("-1234567890123.45", -123_456_789_012_345),
            ("100000000.00", 10_000_000_000),
            ("42.07", 4207),
            ("5000000.00", 500_000_000),
            ("1000000.00", 100_000_000),
            ("99.99", 9999),
            ("92233720368547758.07", i64::MAX),
        ];
        for (text, fen) in cases {
            assert_eq!(Fen::from_yuan(text), Ok(Fen(fen)), "parsing {text}");
            assert_eq!(Fen(fen).to_yuan(), text, "formatting {fen}");
        }
    }

    #[test]
    fn wan_round_trips_exactly() {
        let cases = [
            ("0.000001", 1),
            ("0.000010", 10),
            ("0.000100", 100),
            ("0.010000", 10_000),
            ("1.000000", 1_000_000),
            ("125.000000", 125_000_000),
            ("125.123456", 125_123_456),
            ("-0.000001", -1),
            ("-3.500000", -3_500_000),
            ("123456789.123456", 123_456_789_123_456),
            ("0.000000", 0),
            ("500.000000", 500_000_000),
            ("12.340000", 12_340_000),
            ("7.000007", 7_000_007),
        ];
        for (text, fen) in cases {
            assert_eq!(Fen::from_wan(text), Ok(Fen(fen)), "parsing {text}");
            assert_eq!(Fen(fen).to_wan(), text, "formatting {fen}");
        }
    }

    #[test]
    fn shorter_and_zero_padded_forms_are_exact() {
        assert_eq!(Fen::from_yuan("12"), Ok(Fen(1200)));
        assert_eq!(Fen::from_yuan("12.5"), Ok(Fen(1250)));
        assert_eq!(Fen::from_yuan("12.500"), Ok(Fen(1250)));
        assert_eq!(Fen::from_yuan("-0.00"), Ok(Fen(0)));
        assert_eq!(Fen::from_wan("125"), Ok(Fen(125_000_000)));
        assert_eq!(Fen::from_wan("125.00"), Ok(Fen(125_000_000)));
        assert_eq!(Fen::from_wan("0.0000010"), Ok(Fen(1)));
        assert_eq!(Fen(-5).to_yuan(), "-0.05");
        assert_eq!(Fen(i64::MIN).to_yuan(), "-92233720368547758.08");
    }

    #[test]
    fn inexact_or_malformed_amounts_are_rejected() {
        for bad in [
            "12,34.5x", "1.234", "1e5", "", "-", ".5", "5.", "+1.00", " 1.00", "1.00 ", "1,000.00",
            "１２", "0x10", "1.2.3", "--1", "NaN", "inf",
        ] {
            assert!(
                Fen::from_yuan(bad).is_err(),
                "{bad:?} should be rejected as yuan"
            );
        }
        for bad in ["0.0000001", "1.1234567", "12,34.5x", "", "1e5"] {
            assert!(
                Fen::from_wan(bad).is_err(),
                "{bad:?} should be rejected as 万元"
            );
        }
        assert!(Fen::from_yuan("92233720368547758.08").is_err(), "overflow");
        assert!(Fen::from_wan("99999999999999").is_err(), "overflow");
    }

    #[test]
    fn errors_say_what_and_why() {
        let e = Fen::from_yuan("1.234").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"1.234\" is not an amount in yuan: it has more decimal places than the unit allows"
        );
    }
}
