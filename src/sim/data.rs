//! The simulator's mutable state: the dataset the servers and the exchange
//! files serve, finance's deletion flags, and the helpers tests use to change
//! both while the servers run.
//!
//! Every collection is kept in the order its system serves it, so that a page
//! is a slice and never a sort: finance by (`updated_at`, key), referrals by
//! (`changed_at`, id), the rest by key. A finance project or payment that is
//! deleted stays in the data with its flag set (`deleted` / `voided` in
//! `SYSTEMS.md` §1) and moves to the end of the feed, as a real system's
//! deletion is itself an update.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, TimeDelta, Utc};

use super::generate::Dataset;
use crate::model::{
    ApprovedBudget, AuditFinding, Collection, Evaluation, ExecutionMirror, OrgdeptEvaluation,
    Payment, Project, ProjectCode, Quota, Record, Rectification, Referral, Target, Unit, UnitCode,
};

/// A record kept in serving order and found by key.
pub(crate) trait Row: Clone {
    /// The key as [`Record::key`] spells it.
    fn key(&self) -> Cow<'_, str>;
    /// Whether two rows have the same key.
    fn same_key(&self, other: &Self) -> bool;
    /// The order in which the row's system serves its collection.
    fn serving_cmp(&self, other: &Self) -> Ordering;
}

/// A finance row: served by `updated_at`.
pub(crate) trait FinanceRow: Row {
    fn updated_at(&self) -> DateTime<Utc>;
    fn set_updated_at(&mut self, at: DateTime<Utc>);
}

macro_rules! finance_row {
    ($t:ty, $key:ident) => {
        impl Row for $t {
            fn key(&self) -> Cow<'_, str> {
                Cow::Borrowed(self.$key.key_text())
            }
            fn same_key(&self, other: &Self) -> bool {
                self.$key == other.$key
            }
            fn serving_cmp(&self, other: &Self) -> Ordering {
                (self.updated_at, &self.$key).cmp(&(other.updated_at, &other.$key))
            }
        }
        impl FinanceRow for $t {
            fn updated_at(&self) -> DateTime<Utc> {
                self.updated_at
            }
            fn set_updated_at(&mut self, at: DateTime<Utc>) {
                self.updated_at = at;
            }
        }
    };
}

finance_row!(Unit, unit_code);
finance_row!(Project, project_code);
finance_row!(Quota, quota_id);
finance_row!(Payment, payment_id);
finance_row!(Target, target_id);
finance_row!(Evaluation, evaluation_id);
finance_row!(Rectification, report_id);

/// A key field as text: ids are strings, codes are newtypes.
trait KeyText {
    fn key_text(&self) -> &str;
}

impl KeyText for String {
    fn key_text(&self) -> &str {
        self
    }
}

impl KeyText for UnitCode {
    fn key_text(&self) -> &str {
        self.as_str()
    }
}

impl KeyText for ProjectCode {
    fn key_text(&self) -> &str {
        self.as_str()
    }
}

impl Row for ApprovedBudget {
    fn key(&self) -> Cow<'_, str> {
        Cow::Owned(format!("{}/{}", self.project_code, self.year))
    }
    fn same_key(&self, other: &Self) -> bool {
        (&self.project_code, self.year) == (&other.project_code, other.year)
    }
    fn serving_cmp(&self, other: &Self) -> Ordering {
        (&self.project_code, self.year).cmp(&(&other.project_code, other.year))
    }
}

impl Row for ExecutionMirror {
    fn key(&self) -> Cow<'_, str> {
        Cow::Owned(format!("{}/{}", self.project_code, self.as_of))
    }
    fn same_key(&self, other: &Self) -> bool {
        (&self.project_code, self.as_of) == (&other.project_code, other.as_of)
    }
    fn serving_cmp(&self, other: &Self) -> Ordering {
        (&self.project_code, self.as_of).cmp(&(&other.project_code, other.as_of))
    }
}

impl Row for AuditFinding {
    fn key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.finding_no)
    }
    fn same_key(&self, other: &Self) -> bool {
        self.finding_no == other.finding_no
    }
    fn serving_cmp(&self, other: &Self) -> Ordering {
        self.finding_no.cmp(&other.finding_no)
    }
}

impl Row for Referral {
    fn key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.referral_id)
    }
    fn same_key(&self, other: &Self) -> bool {
        self.referral_id == other.referral_id
    }
    fn serving_cmp(&self, other: &Self) -> Ordering {
        (self.changed_at, &self.referral_id).cmp(&(other.changed_at, &other.referral_id))
    }
}

impl Row for OrgdeptEvaluation {
    fn key(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "{}/{}/Q{}",
            self.unit_code, self.year, self.quarter
        ))
    }
    fn same_key(&self, other: &Self) -> bool {
        (&self.unit_code, self.year, self.quarter) == (&other.unit_code, other.year, other.quarter)
    }
    fn serving_cmp(&self, other: &Self) -> Ordering {
        (self.year, self.quarter, &self.unit_code).cmp(&(
            other.year,
            other.quarter,
            &other.unit_code,
        ))
    }
}

fn sort_rows<T: Row>(rows: &mut [T]) {
    rows.sort_unstable_by(T::serving_cmp);
}

/// Replaces the row with the same key, or adds it, keeping serving order.
fn upsert_row<T: Row>(rows: &mut Vec<T>, row: T) {
    if let Some(pos) = rows.iter().position(|r| r.same_key(&row)) {
        rows.remove(pos);
    }
    let at = rows.partition_point(|r| r.serving_cmp(&row) == Ordering::Less);
    rows.insert(at, row);
}

fn remove_row<T: Row>(rows: &mut Vec<T>, key: &str) -> Option<T> {
    let pos = rows.iter().position(|r| r.key() == key)?;
    Some(rows.remove(pos))
}

/// Re-stamps the row with `key` at `at` (or one second after the latest
/// stamp of the collection) and moves it to its new place in the feed.
fn touch_row<T: FinanceRow>(rows: &mut Vec<T>, key: &str, at: Option<DateTime<Utc>>) -> bool {
    let Some(mut row) = remove_row(rows, key) else {
        return false;
    };
    let latest = rows
        .iter()
        .map(T::updated_at)
        .max()
        .unwrap_or(row.updated_at())
        .max(row.updated_at());
    row.set_updated_at(at.unwrap_or(latest + TimeDelta::seconds(1)));
    upsert_row(rows, row);
    true
}

impl Dataset {
    /// Puts every collection in the order its system serves it.
    pub fn sort_for_serving(&mut self) {
        sort_rows(&mut self.units);
        sort_rows(&mut self.projects);
        sort_rows(&mut self.quotas);
        sort_rows(&mut self.payments);
        sort_rows(&mut self.targets);
        sort_rows(&mut self.evaluations);
        sort_rows(&mut self.rectifications);
        sort_rows(&mut self.budgets);
        sort_rows(&mut self.execution);
        sort_rows(&mut self.findings);
        sort_rows(&mut self.referrals);
        sort_rows(&mut self.orgdept);
    }
}

/// The state the simulated systems serve.
#[derive(Debug, Clone, Default)]
pub struct SimData {
    dataset: Dataset,
    /// Keys of finance projects served with `deleted: true`.
    deleted_projects: HashSet<String>,
    /// Keys of finance payments served with `voided: true`.
    voided_payments: HashSet<String>,
}

impl SimData {
    pub fn new(mut dataset: Dataset) -> SimData {
        dataset.sort_for_serving();
        SimData {
            dataset,
            ..SimData::default()
        }
    }

    /// Everything, deleted finance records included (with their flags in
    /// [`SimData::is_deleted`]).
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// Changes the dataset in bulk; serving order is restored afterwards.
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut Dataset) -> R) -> R {
        let result = f(&mut self.dataset);
        self.dataset.sort_for_serving();
        result
    }

    /// Whether finance serves this record as deleted (`deleted` on a project,
    /// `voided` on a payment).
    pub fn is_deleted(&self, c: Collection, key: &str) -> bool {
        match c {
            Collection::Projects => self.deleted_projects.contains(key),
            Collection::Payments => self.voided_payments.contains(key),
            _ => false,
        }
    }

    /// The live records of a collection: what a client that applied every
    /// deletion holds.
    pub fn records(&self, c: Collection) -> Vec<Record> {
        let mut records = self.dataset.records(c);
        if matches!(c, Collection::Projects | Collection::Payments) {
            records.retain(|r| !self.is_deleted(c, &r.key()));
        }
        records
    }

    /// Number of live records in a collection.
    pub fn len(&self, c: Collection) -> usize {
        let flagged = match c {
            Collection::Projects => self.deleted_projects.len(),
            Collection::Payments => self.voided_payments.len(),
            _ => 0,
        };
        self.dataset.len(c).saturating_sub(flagged)
    }

    /// Replaces the record with the same key or adds it. A finance record is
    /// served by its own `updated_at`, so the caller sets it later than what
    /// clients have seen for an incremental pull to pick it up. Upserting a
    /// deleted finance project or payment makes it live again.
    pub fn upsert(&mut self, record: Record) {
        let key = record.key();
        let ds = &mut self.dataset;
        match record {
            Record::Unit(r) => upsert_row(&mut ds.units, r),
            Record::Project(r) => {
                self.deleted_projects.remove(&key);
                upsert_row(&mut ds.projects, r);
            }
            Record::Quota(r) => upsert_row(&mut ds.quotas, r),
            Record::Payment(r) => {
                self.voided_payments.remove(&key);
                upsert_row(&mut ds.payments, r);
            }
            Record::Target(r) => upsert_row(&mut ds.targets, r),
            Record::Evaluation(r) => upsert_row(&mut ds.evaluations, r),
            Record::Rectification(r) => upsert_row(&mut ds.rectifications, r),
            Record::ApprovedBudget(r) => upsert_row(&mut ds.budgets, r),
            Record::ExecutionMirror(r) => upsert_row(&mut ds.execution, r),
            Record::AuditFinding(r) => upsert_row(&mut ds.findings, r),
            Record::Referral(r) => upsert_row(&mut ds.referrals, r),
            Record::OrgdeptEvaluation(r) => upsert_row(&mut ds.orgdept, r),
            // No agency system serves liankong's own actions.
            Record::Action(_) => {}
        }
    }

    /// Deletes a record by key ([`Record::key`]); false when there is none.
    ///
    /// A finance project or payment stays and is served flagged `deleted` /
    /// `voided`, re-stamped one second after the collection's latest
    /// `updated_at` so an incremental pull sees it. Other finance collections
    /// have no flag in `SYSTEMS.md`, so their records, like every other
    /// system's, simply disappear.
    pub fn delete(&mut self, c: Collection, key: &str) -> bool {
        self.delete_stamped(c, key, None)
    }

    /// Like [`SimData::delete`], with the deletion of a finance project or
    /// payment stamped `at`.
    pub fn delete_at(&mut self, c: Collection, key: &str, at: DateTime<Utc>) -> bool {
        self.delete_stamped(c, key, Some(at))
    }

    fn delete_stamped(&mut self, c: Collection, key: &str, at: Option<DateTime<Utc>>) -> bool {
        let ds = &mut self.dataset;
        use Collection::*;
        match c {
            Projects => {
                let found = touch_row(&mut ds.projects, key, at);
                if found {
                    self.deleted_projects.insert(key.to_owned());
                }
                found
            }
            Payments => {
                let found = touch_row(&mut ds.payments, key, at);
                if found {
                    self.voided_payments.insert(key.to_owned());
                }
                found
            }
            Units => remove_row(&mut ds.units, key).is_some(),
            Quotas => remove_row(&mut ds.quotas, key).is_some(),
            Targets => remove_row(&mut ds.targets, key).is_some(),
            Evaluations => remove_row(&mut ds.evaluations, key).is_some(),
            Rectifications => remove_row(&mut ds.rectifications, key).is_some(),
            Budgets => remove_row(&mut ds.budgets, key).is_some(),
            Execution => remove_row(&mut ds.execution, key).is_some(),
            Findings => remove_row(&mut ds.findings, key).is_some(),
            Referrals => remove_row(&mut ds.referrals, key).is_some(),
            OrgdeptEvaluations => remove_row(&mut ds.orgdept, key).is_some(),
            Actions => false,
        }
    }
}

/// The shared, lockable [`SimData`] the servers and tests hold.
#[derive(Debug, Clone, Default)]
pub struct SimDataHandle {
    inner: Arc<RwLock<SimData>>,
}

impl SimDataHandle {
    pub fn new(data: SimData) -> SimDataHandle {
        SimDataHandle {
            inner: Arc::new(RwLock::new(data)),
        }
    }

    /// Read access. Do not hold it across an `.await`: the servers wait on it.
    pub fn read(&self) -> RwLockReadGuard<'_, SimData> {
        // A panic in a test holding the lock leaves the data as consistent as
        // any single mutation does; keep serving it.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Write access. Do not hold it across an `.await`.
    pub fn write(&self) -> RwLockWriteGuard<'_, SimData> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// See [`SimData::upsert`].
    pub fn upsert(&self, record: Record) {
        self.write().upsert(record);
    }

    /// See [`SimData::delete`].
    pub fn delete(&self, c: Collection, key: &str) -> bool {
        self.write().delete(c, key)
    }

    /// See [`SimData::delete_at`].
    pub fn delete_at(&self, c: Collection, key: &str, at: DateTime<Utc>) -> bool {
        self.write().delete_at(c, key, at)
    }

    /// See [`SimData::records`].
    pub fn records(&self, c: Collection) -> Vec<Record> {
        self.read().records(c)
    }

    /// A copy of everything, deleted finance records included.
    pub fn snapshot(&self) -> Dataset {
        self.read().dataset().clone()
    }

    /// See [`SimData::edit`].
    pub fn edit<R>(&self, f: impl FnOnce(&mut Dataset) -> R) -> R {
        self.write().edit(f)
    }
}
