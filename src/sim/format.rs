//! How each agency writes values on its wire: times with China's offset,
//! npc's dashed project codes and 万元, the audit office's `YYYY/M/D` dates and
//! status words. The canonical model never leaves the simulator unformatted;
//! this module is the one place that decides how it looks.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Utc};

use crate::model::{
    FindingStatus, Grade, PaymentKind, ProjectCategory, ProjectCode, QuotaKind,
    RectificationStatus, ReferralOrigin, ReferralStatus,
};
use crate::money::{Fen, format_fixed};

/// China's wall clock (UTC+8) at an instant.
fn china(at: DateTime<Utc>) -> NaiveDateTime {
    let utc = at.naive_utc();
    utc.checked_add_signed(TimeDelta::hours(8)).unwrap_or(utc)
}

/// RFC 3339 with China's offset, `2021-06-30T16:20:00+08:00`; fractions of a
/// second only when there are any.
pub fn rfc3339_china(at: DateTime<Utc>) -> String {
    format!("{}+08:00", china(at).format("%Y-%m-%dT%H:%M:%S%.f"))
}

/// npc's `YYYY-MM-DD HH:MM:SS` in China time.
pub fn npc_time(at: DateTime<Utc>) -> String {
    china(at).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `YYYY-MM-DD`.
pub fn iso_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The audit office's `YYYY/M/D`, without zero padding.
pub fn audit_date(d: NaiveDate) -> String {
    format!("{}/{}/{}", d.year(), d.month(), d.day())
}

/// npc's dashed project code: `370100-2021-000123`.
pub fn npc_code(code: &ProjectCode) -> String {
    let s = code.as_str();
    match (s.get(..6), s.get(6..10), s.get(10..)) {
        (Some(region), Some(year), Some(seq)) => format!("{region}-{year}-{seq}"),
        _ => s.to_owned(),
    }
}

/// 万元 with 2 places when the amount is a whole number of hundredths of 万元
/// (as every audit amount is); otherwise with as many places as exactness
/// needs, up to 6, since the simulator never rounds money.
pub fn wan_2(amount: Fen) -> String {
    const FEN_PER_CENTI_WAN: i64 = 10_000;
    if amount.0 % FEN_PER_CENTI_WAN == 0 {
        return format_fixed(amount.0 / FEN_PER_CENTI_WAN, 2);
    }
    let mut s = amount.to_wan();
    while s.ends_with('0') && s.split_once('.').is_some_and(|(_, f)| f.len() > 2) {
        s.pop();
    }
    s
}

pub fn grade_word(g: Grade) -> &'static str {
    match g {
        Grade::Excellent => "优",
        Grade::Good => "良",
        Grade::Fair => "中",
        Grade::Poor => "差",
    }
}

pub fn finding_status_word(s: FindingStatus) -> &'static str {
    match s {
        FindingStatus::Open => "未整改",
        FindingStatus::InProgress => "整改中",
        FindingStatus::Rectified => "已整改",
    }
}

pub fn category_word(c: ProjectCategory) -> &'static str {
    match c {
        ProjectCategory::Special => "special",
        ProjectCategory::Basic => "basic",
        ProjectCategory::Reserve => "reserve",
    }
}

pub fn quota_kind_word(k: QuotaKind) -> &'static str {
    match k {
        QuotaKind::Initial => "initial",
        QuotaKind::Adjustment => "adjustment",
        QuotaKind::Reclaim => "reclaim",
    }
}

pub fn payment_kind_word(k: PaymentKind) -> &'static str {
    match k {
        PaymentKind::Allocation => "allocation",
        PaymentKind::Expenditure => "expenditure",
    }
}

pub fn rectification_word(s: RectificationStatus) -> &'static str {
    match s {
        RectificationStatus::Rectified => "rectified",
        RectificationStatus::InProgress => "in_progress",
    }
}

pub fn referral_status_word(s: ReferralStatus) -> &'static str {
    match s {
        ReferralStatus::Received => "received",
        ReferralStatus::Verifying => "verifying",
        ReferralStatus::Closed => "closed",
    }
}

pub fn origin_word(o: ReferralOrigin) -> &'static str {
    match o {
        ReferralOrigin::Audit => "audit",
        ReferralOrigin::Finance => "finance",
        ReferralOrigin::Npc => "npc",
        ReferralOrigin::Public => "public",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_look_as_each_agency_writes_them() {
        let at = DateTime::parse_from_rfc3339("2021-06-30T08:20:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339_china(at), "2021-06-30T16:20:00+08:00");
        assert_eq!(npc_time(at), "2021-06-30 16:20:00");
        let d = NaiveDate::from_ymd_opt(2021, 3, 5).unwrap();
        assert_eq!(audit_date(d), "2021/3/5");
        assert_eq!(iso_date(d), "2021-03-05");
        let code = ProjectCode::parse("3701002021000123").unwrap();
        assert_eq!(npc_code(&code), "370100-2021-000123");
        assert_eq!(wan_2(Fen(125_000_000)), "125.00");
        assert_eq!(wan_2(Fen(10_000)), "0.01");
        assert_eq!(wan_2(Fen(1)), "0.000001");
        assert_eq!(wan_2(Fen(15_000)), "0.015");
    }
}
