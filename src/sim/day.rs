//! A day of changes, as the daemon meets them every few minutes in
//! production (`liankong bench`'s phase (d)): new payments, changed quotas,
//! and an npc snapshot in which a few budget lines changed. Deterministic:
//! every n-th record, so two runs change the same ones.

use chrono::TimeDelta;

use super::generate::Dataset;
use crate::model::Payment;
use crate::money::Fen;

/// What [`a_days_changes`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DayChanges {
    /// Each split off a payment that changed with it.
    pub new_payments: usize,
    pub changed_quotas: usize,
    pub changed_budgets: usize,
}

/// Adds 1% new payments (one fen split off an existing payment, which
/// changes too: same project, kind and day, the same sums, so that no rule's
/// verdict turns on them), changes 0.1% of the quotas and 0.1% of the npc budget lines (restamped: new content, the
/// same money and dates, so no rule's verdict turns on them either). Every change is stamped a second
/// after the newest record of its collection, so an incremental pull picks
/// it up. The caller restores serving order ([`super::SimData::edit`]).
pub fn a_days_changes(ds: &mut Dataset) -> DayChanges {
    let later = |newest: Option<chrono::DateTime<chrono::Utc>>| {
        newest.unwrap_or_default() + TimeDelta::seconds(1)
    };
    let stamp = later(ds.payments.iter().map(|p| p.updated_at).max());
    let mut new = Vec::new();
    for (i, p) in ds
        .payments
        .iter_mut()
        .step_by(100)
        .filter(|p| p.amount.0 >= 2)
        .enumerate()
    {
        p.amount = Fen(p.amount.0 - 1);
        p.updated_at = stamp;
        new.push(Payment {
            payment_id: format!("{}D{i:07}", p.payment_id),
            amount: Fen(1),
            updated_at: stamp,
            ..p.clone()
        });
    }
    let new_payments = new.len();
    ds.payments.extend(new);

    let stamp = later(ds.quotas.iter().map(|q| q.updated_at).max());
    let mut changed_quotas = 0;
    for q in ds.quotas.iter_mut().step_by(1000) {
        q.updated_at = stamp;
        changed_quotas += 1;
    }
    let stamp = later(ds.budgets.iter().map(|b| b.updated_at).max());
    let mut changed_budgets = 0;
    for b in ds.budgets.iter_mut().step_by(1000) {
        b.updated_at = stamp;
        changed_budgets += 1;
    }
    DayChanges {
        new_payments,
        changed_quotas,
        changed_budgets,
    }
}
