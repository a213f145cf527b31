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

    /// The amount without its sign.
    pub fn abs(self) -> Fen {
        Fen(self.0.abs())
    }
}

// Sums and differences of amounts, as the rules take them: plain `i64`
// arithmetic on the fen, which no sum of a province's budget comes near
// overflowing.
impl std::ops::Add for Fen {
    type Output = Fen;
    fn add(self, other: Fen) -> Fen {
        Fen(self.0 + other.0)
    }
}

impl std::ops::Sub for Fen {
    type Output = Fen;
    fn sub(self, other: Fen) -> Fen {
        Fen(self.0 - other.0)
    }
}

impl std::iter::Sum for Fen {
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        Fen(iter.map(|f| f.0).sum())
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
    // Zero stays zero however many places are asked for; anything else
    // overflows within 19 of them.
    if value != 0 {
        for _ in kept.len()..places {
            value = value.checked_mul(10).ok_or_else(overflow)?;
        }
    }
    Ok(if negative { -value } else { value })
}

/// Formats an integer scaled by `10^places` as a decimal with exactly `places`
/// places.
pub fn format_fixed(value: i64, places: u32) -> String {
    let magnitude = value.unsigned_abs();
    let sign = if value < 0 { "-" } else { "" };
    if places == 0 {
        return format!("{sign}{magnitude}");
    }
    // From 20 places on the scale does not fit in u64, and every i64 is
    // all fraction.
    let (whole, fraction) = match 10u64.checked_pow(places) {
        Some(scale) => (magnitude / scale, magnitude % scale),
        None => (0, magnitude),
    };
    format!("{sign}{whole}.{fraction:0width$}", width = places as usize)
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
    fn places_beyond_what_i64_holds_neither_panic_nor_spin() {
        // Found by `props::any_string_parses_exactly_or_not_at_all`: 10^20
        // overflowed u64 (a panic in debug builds, garbage in release).
        assert_eq!(format_fixed(0, 20), "0.00000000000000000000");
        assert_eq!(parse_fixed("0", 20, "x"), Ok(0));
        assert_eq!(format_fixed(1, 19), "0.0000000000000000001");
        assert_eq!(format_fixed(-1, 21), "-0.000000000000000000001");
        assert_eq!(format_fixed(i64::MIN, 20), "-0.09223372036854775808",);
        assert_eq!(
            parse_fixed("-0.09223372036854775807", 20, "x"),
            Ok(-i64::MAX)
        );
        // Zero with four billion places used to multiply by ten four billion times.
        assert_eq!(parse_fixed("0.0", u32::MAX, "x"), Ok(0));
        assert!(parse_fixed("1", u32::MAX, "x").is_err());
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

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::config;

    /// What `parse_fixed` must answer for a plain decimal, computed another
    /// way: in `i128`, from the digits, with `None` for inexact or too large.
    fn model(negative: bool, int: &str, frac: Option<&str>, places: u32) -> Option<i64> {
        let frac = frac.unwrap_or("");
        let places = places as usize;
        let (kept, dropped) = frac.split_at(frac.len().min(places));
        if dropped.chars().any(|c| c != '0') {
            return None;
        }
        let digits = format!("{int}{kept:0<places$}");
        let magnitude: i128 = digits.parse().ok()?;
        let value = i64::try_from(magnitude).ok()?;
        Some(if negative { -value } else { value })
    }

    /// Whether `s` is in the grammar `parse_fixed` accepts.
    fn is_plain_decimal(s: &str) -> bool {
        let body = s.strip_prefix('-').unwrap_or(s);
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        digits(int) && frac.is_none_or(digits)
    }

    /// Strings that look like money, or almost, or not at all.
    fn money_like() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "-?[0-9]{1,20}(\\.[0-9]{1,8})?",
            "[-+]?[0-9]{0,30}(\\.[0-9]{0,30})?([eE][-+]?[0-9]{1,3})?",
            "[-+.,0-9eE \u{3000}\u{ff10}-\u{ff19}\u{0660}-\u{0669}\u{fffd}]{0,24}",
            "-?0{0,30}[0-9]{15,45}(\\.[0-9]{0,40})?",
            "-?[0-9]{1,3}\\.[0-9]{0,3}0{0,60}",
            "-?0{1,4}(\\.0{0,30})?",
        ]
    }

    #[test]
    fn the_smallest_amount_formats_but_does_not_parse_back() {
        // Its magnitude is one more than i64::MAX: the one exception above.
        assert!(Fen::from_yuan(&Fen(i64::MIN).to_yuan()).is_err());
        assert!(Fen::from_wan(&Fen(i64::MIN).to_wan()).is_err());
    }

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn every_amount_but_the_smallest_round_trips_through_yuan_and_wan(
            x in (i64::MIN + 1)..=i64::MAX
        ) {
            prop_assert_eq!(Fen::from_yuan(&Fen(x).to_yuan()), Ok(Fen(x)));
            prop_assert_eq!(Fen::from_wan(&Fen(x).to_wan()), Ok(Fen(x)));
        }

        #[test]
        fn any_string_parses_exactly_or_not_at_all(s in money_like(), places in 0u32..=40) {
            if let Ok(fen) = Fen::from_yuan(&s) {
                prop_assert!(is_plain_decimal(&s), "{s:?} parsed as {fen:?}");
                prop_assert_eq!(Fen::from_yuan(&fen.to_yuan()), Ok(fen));
            }
            if let Ok(fen) = Fen::from_wan(&s) {
                prop_assert!(is_plain_decimal(&s), "{s:?} parsed as {fen:?}");
                prop_assert_eq!(Fen::from_wan(&fen.to_wan()), Ok(fen));
            }
            if let Ok(v) = parse_fixed(&s, places, "x") {
                prop_assert!(is_plain_decimal(&s), "{s:?} parsed as {v}");
                prop_assert_eq!(parse_fixed(&format_fixed(v, places), places, "x"), Ok(v));
            }
        }

        #[test]
        fn plain_decimals_parse_exactly_as_the_digits_say(
            negative in any::<bool>(),
            int in "[0-9]{1,22}",
            frac in proptest::option::of("[0-9]{1,22}"),
            places in 0u32..=8,
        ) {
            let s = format!("{}{int}{}", if negative { "-" } else { "" },
                frac.as_deref().map(|f| format!(".{f}")).unwrap_or_default());
            let got = parse_fixed(&s, places, "x").ok();
            prop_assert_eq!(got, model(negative, &int, frac.as_deref(), places), "{}", s);
        }

        #[test]
        fn more_significant_places_than_allowed_are_rejected(
            int in "-?[0-9]{1,6}",
            allowed in "[0-9]{0,8}",
            extra in "[0-9]{0,4}[1-9][0-9]{0,4}",
            places in 0u32..=8,
        ) {
            // `allowed` is cut to `places` digits; every digit past them counts.
            let kept: String = allowed.chars().take(places as usize).collect();
            let kept = format!("{kept:0<width$}", width = places as usize);
            let s = format!("{int}.{kept}{extra}");
            prop_assert!(parse_fixed(&s, places, "x").is_err(), "{} with {} places", s, places);
            if places == YUAN_PLACES {
                prop_assert!(Fen::from_yuan(&s).is_err());
            }
            if places == WAN_PLACES {
                prop_assert!(Fen::from_wan(&s).is_err());
            }
        }
    }
}
