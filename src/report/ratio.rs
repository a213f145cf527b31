//! Exact fractions for the report's indicators.
//!
//! An indicator is kept as the two integers it divides, so that ranking
//! compares them exactly (i128 cross-multiplication) and rounding happens
//! only when a number is shown or drawn, half away from zero. No float ever
//! holds an indicator.

use std::cmp::Ordering;

/// `num / den` with `den > 0`.
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    num: i64,
    den: i64,
}

impl Ratio {
    /// 0 ÷ 1.
    pub const ZERO: Ratio = Ratio { num: 0, den: 1 };

    /// The fraction, or `None` when it is undefined (`den ≤ 0`: nothing to
    /// divide by).
    pub fn new(num: i64, den: i64) -> Option<Ratio> {
        (den > 0).then_some(Ratio { num, den })
    }

    pub fn num(self) -> i64 {
        self.num
    }

    pub fn den(self) -> i64 {
        self.den
    }

    /// `self × scale`, rounded half away from zero.
    pub fn scaled(self, scale: i64) -> i128 {
        round_div(
            i128::from(self.num) * i128::from(scale),
            i128::from(self.den),
        )
    }

    /// The percentage with 2 places and no sign for zero, e.g. `"74.79"`.
    pub fn percent(self) -> String {
        let hundredths = self.scaled(10_000);
        let sign = if hundredths < 0 { "-" } else { "" };
        let magnitude = hundredths.unsigned_abs();
        format!("{sign}{}.{:02}", magnitude / 100, magnitude % 100)
    }
}

/// `num / den` rounded half away from zero; `den` must be positive.
pub(crate) fn round_div(num: i128, den: i128) -> i128 {
    // `rem ≥ den − den/2` is `2·rem ≥ den` without the risk of overflow.
    let rounded_up_half = |n: i128| {
        let q = n / den;
        if n % den >= den - den / 2 { q + 1 } else { q }
    };
    if num >= 0 {
        rounded_up_half(num)
    } else {
        -rounded_up_half(-num)
    }
}

impl Ord for Ratio {
    fn cmp(&self, other: &Ratio) -> Ordering {
        // Both denominators are positive, so cross-multiplying keeps the order;
        // i64 × i64 always fits in i128.
        (i128::from(self.num) * i128::from(other.den))
            .cmp(&(i128::from(other.num) * i128::from(self.den)))
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, other: &Ratio) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equal as numbers: 1/2 equals 2/4.
impl PartialEq for Ratio {
    fn eq(&self, other: &Ratio) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ratio {}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(num: i64, den: i64) -> Ratio {
        Ratio::new(num, den).unwrap()
    }

    #[test]
    fn undefined_without_a_positive_denominator() {
        assert_eq!(Ratio::new(1, 0), None);
        assert_eq!(Ratio::new(1, -3), None);
    }

    #[test]
    fn percentages_round_half_away_from_zero() {
        assert_eq!(r(1, 3).percent(), "33.33");
        assert_eq!(r(2, 3).percent(), "66.67");
        assert_eq!(r(273, 365).percent(), "74.79");
        assert_eq!(r(1, 20_000).percent(), "0.01", "0.005% rounds up");
        assert_eq!(r(1, 20_001).percent(), "0.00");
        assert_eq!(r(-1, 20_000).percent(), "-0.01", "away from zero");
        assert_eq!(r(-1, 20_001).percent(), "0.00", "no negative zero");
        assert_eq!(r(0, 7).percent(), "0.00");
        assert_eq!(r(3, 2).percent(), "150.00");
        assert_eq!(r(i64::MAX, 1).percent(), "922337203685477580700.00");
    }

    #[test]
    fn rounding_of_odd_and_even_denominators() {
        assert_eq!(round_div(5, 2), 3);
        assert_eq!(round_div(-5, 2), -3);
        assert_eq!(round_div(4, 3), 1);
        assert_eq!(round_div(5, 3), 2);
        assert_eq!(round_div(-4, 3), -1);
        assert_eq!(round_div(7, 1), 7);
    }

    #[test]
    fn order_is_exact() {
        assert_eq!(r(1, 2), r(2, 4));
        assert!(r(1, 3) < r(333_333_333_333_334, 1_000_000_000_000_000));
        assert!(r(i64::MAX - 1, i64::MAX) < r(i64::MAX, i64::MAX));
        assert!(r(-1, 2) < r(0, 1));
    }
}
