// The store implementation shared by both backends.
//
// This file is compiled twice, `include!`d by `sqlite.rs` and `postgres.rs`,
// each of which first defines `Db` (its sqlx driver), `BACKEND`, `MIGRATIONS`,
// `connect_pool` and `begin_write`. Both backends accept the same SQL here
// (`$n` placeholders, `ON CONFLICT`, `RETURNING`, `TRUE`/`FALSE`); what they
// do not share lives in their own files and migrations.
//
// The rest of the implementation is split by concern, each file
// `include!`d after this one: `sql_store.rs` (runs, leases, records,
// statistics: the `Store` trait), `sql_ingest.rs` (batches and the chain),
// `sql_quarantine.rs`, `sql_verify.rs`, `sql_upgrade.rs` (the re-hashes that
// migrations 0008 and 0011 leave to the program), `sql_report.rs`,
// `sql_actions.rs` and `sql_witness.rs` (checkpoints and proofs' leaves).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use sqlx::query_builder::Separated;
use sqlx::{AssertSqlSafe, Pool, QueryBuilder, Row};

use super::alerts::{
    AlertRow, AlertStore, AlertTx, NewEvent, OutboxCounts, OutboxRow, SilenceRow, SilenceScope,
};
use super::chain::{
    BatchRoot, Digest32, FlatRoot, GENESIS, batch_link, content_hash, digest, entry_hash, legacy,
    stream_leaf,
};
use super::facts::{
    FactStore, FactsQuery, FindingFact, FreezeFact, MirrorFact, OrgdeptFact, ProjectFacts,
    ProjectRange, RectificationFact, TrancheFact, UnitQuarterFact, UnknownProjectFact,
};
use super::schema::{self, Value};
use super::{
    AdapterRunRow, Batch, BatchOutcome, CollectionStats, Covered, Damage, Held, Item,
    QuarantineEntry, QuarantineSelection, QuarantineState, Quarantined, Refetch, RunId, Store,
    StoreError, StoreUrl, StoredRecord, StreamState, SyncTx, Unseen, VerifyReport, Version,
};
use crate::model::{Agency, Collection, Record};
use crate::money::Fen;

/// Binds per statement stay below both backends' limits (SQLite 32766,
/// PostgreSQL 65535).
const MAX_BIND_PARAMS: usize = 30_000;

/// At most this many current-state problems are listed per collection.
const MAX_DAMAGE_PER_COLLECTION: usize = 20;

/// The `sqlx` store for this backend.
pub struct SqlStore {
    pool: Pool<Db>,
    /// Where write transactions run: the same pool, or (SQLite) its one
    /// writer's connection.
    writer: Pool<Db>,
    /// Held by every write transaction where the backend has one writer.
    write_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl SqlStore {
    pub async fn connect(url: &StoreUrl) -> Result<SqlStore, StoreError> {
        let (pool, writer) = connect_pools(url).await?;
        Ok(SqlStore {
            pool,
            writer,
            write_lock: Default::default(),
        })
    }

    async fn write_tx(&self) -> Result<SqlSyncTx, StoreError> {
        let guard = if SERIALIZE_WRITERS {
            Some(self.write_lock.clone().lock_owned().await)
        } else {
            None
        };
        Ok(SqlSyncTx {
            tx: begin_write(&self.writer).await?,
            seen: false,
            written: HashMap::new(),
            _guard: guard,
        })
    }

    /// Applies this backend's migrations up to and including `last`, and
    /// none of the upgrades they leave to the program: how the tests build a
    /// store of an older layout. [`Store::migrate`] is the real thing.
    #[doc(hidden)]
    pub async fn migrate_until(&self, last: i64) -> Result<(), StoreError> {
        migrator(|version| version <= last).run(&self.pool).await?;
        Ok(())
    }

    /// The connection pool, for the stages that query their own tables.
    pub fn pool(&self) -> &Pool<Db> {
        &self.pool
    }
}

/// Reads a typed column as the same kind of value that `expected` is.
fn read_value(
    row: &<Db as sqlx::Database>::Row,
    column: &str,
    expected: &Value,
) -> Result<Value, sqlx::Error> {
    Ok(match expected {
        Value::Text(_) => Value::Text(row.try_get::<Option<String>, _>(column)?),
        Value::Int(_) => Value::Int(row.try_get::<Option<i64>, _>(column)?),
        Value::Bool(_) => Value::Bool(row.try_get::<Option<bool>, _>(column)?),
        Value::Date(_) => Value::Date(row.try_get::<Option<NaiveDate>, _>(column)?),
    })
}

fn rows_per_statement(columns: usize) -> usize {
    (MAX_BIND_PARAMS / columns.max(1)).max(1)
}

type Tx = sqlx::Transaction<'static, Db>;

/// A stored instant of the record tables and the chain (microseconds since
/// the Unix epoch).
fn micros(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt(format!("instant {us}")))
}

/// A write transaction, with the writer's turn where the backend needs one.
pub struct SqlSyncTx {
    tx: Tx,
    /// Whether this transaction's `seen_keys` table is ready.
    seen: bool,
    /// Versions this transaction wrote, per collection table.
    written: HashMap<&'static str, u64>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

fn check_collections(batch: &Batch) -> Result<(), StoreError> {
    for item in &batch.items {
        if let Item::Upsert(r) = item
            && r.collection() != batch.collection
        {
            return Err(StoreError::WrongCollection {
                batch: batch.collection,
                record: r.collection(),
            });
        }
    }
    Ok(())
}

/// See [`Store::hand_over_lease`].
async fn hand_over_lease(
    tx: &mut Tx,
    name: &str,
    from: &str,
    to: &str,
    until: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let handed = sqlx::query(
        "UPDATE leases SET holder = $3, expires_at = $4 WHERE name = $1 AND holder = $2",
    )
    .bind(name)
    .bind(from)
    .bind(to)
    .bind(until)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(handed == 1)
}

/// `CAST(COALESCE(SUM(expr), 0) AS BIGINT)`: PostgreSQL sums BIGINTs as
/// NUMERIC; both backends then hand back an `i64`.
fn sum(expr: &str) -> String {
    format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)")
}

/// A quota row's contribution to quota(p, Y): reclaims subtract.
const SIGNED_QUOTA: &str = "CASE WHEN kind = 'reclaim' THEN -amount ELSE amount END";

/// ` AND {column} > $n AND {column} <= $m` for the ends `range` has, its
/// parameters numbered from `first`; [`bind_range`] binds them in order.
fn range_condition(column: &str, range: &ProjectRange, first: usize) -> String {
    let mut sql = String::new();
    let mut n = first;
    if range.after.is_some() {
        sql.push_str(&format!(" AND {column} > ${n}"));
        n += 1;
    }
    if range.up_to.is_some() {
        sql.push_str(&format!(" AND {column} <= ${n}"));
    }
    sql
}

type RangeQuery<'q, O> = sqlx::query::QueryAs<'q, Db, O, <Db as sqlx::Database>::Arguments>;

fn bind_range<'q, O>(mut query: RangeQuery<'q, O>, range: &ProjectRange) -> RangeQuery<'q, O> {
    if let Some(after) = &range.after {
        query = query.bind(after.clone());
    }
    if let Some(up_to) = &range.up_to {
        query = query.bind(up_to.clone());
    }
    query
}

#[async_trait]
impl FactStore for SqlStore {
    async fn project_slices(&self, size: usize) -> Result<Vec<ProjectRange>, StoreError> {
        // Every size-th live project code bounds a slice; the codes beyond
        // the last bound (and those finance does not hold) fall in the open
        // ends.
        let bounds: Vec<String> = sqlx::query_scalar(
            "SELECT key FROM ( \
               SELECT key, ROW_NUMBER() OVER (ORDER BY key) AS n \
               FROM finance_projects WHERE deleted = FALSE) numbered \
             WHERE n % $1 = 0 ORDER BY key",
        )
        .bind(i64::try_from(size.max(1)).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(ProjectRange::between(bounds))
    }

    async fn project_facts(
        &self,
        q: &FactsQuery,
        range: &ProjectRange,
    ) -> Result<Vec<ProjectFacts>, StoreError> {
        let in_range = |column: &str| range_condition(column, range, 6);
        let sql = format!(
            "WITH q AS ( \
               SELECT project_code, \
                 {quota} AS quota, \
                 {quota_rows} AS quota_rows, \
                 {initial} AS initial, \
                 MIN(CASE WHEN fiscal_year = $1 AND kind = 'initial' THEN approved_on END) AS first_initial_on, \
                 {quota_prev} AS quota_prev \
               FROM finance_quotas WHERE deleted = FALSE AND fiscal_year IN ($1, $2){quotas_in} \
               GROUP BY project_code), \
             pay AS ( \
               SELECT project_code, \
                 {exp} AS exp, \
                 {exp_lookback} AS exp_lookback, \
                 MAX(CASE WHEN kind = 'expenditure' THEN paid_on END) AS last_exp_on, \
                 {alloc} AS alloc, \
                 {nalloc} AS nalloc \
               FROM finance_payments WHERE deleted = FALSE AND paid_on >= $3 AND paid_on <= $4{payments_in} \
               GROUP BY project_code), \
             npc AS ( \
               SELECT project_code, {approved} AS approved, MIN(key) AS npc_key \
               FROM npc_budgets WHERE deleted = FALSE AND year = $1{budgets_in} GROUP BY project_code), \
             keys AS ( \
               SELECT key AS project_code FROM finance_projects WHERE deleted = FALSE{projects_in} \
               UNION SELECT project_code FROM q UNION SELECT project_code FROM pay \
               UNION SELECT project_code FROM npc) \
             SELECT k.project_code, p.key IS NOT NULL AS in_finance, p.unit_code, p.category, \
               COALESCE(p.full_year, FALSE) AS full_year, \
               COALESCE(q.quota, 0) AS quota, COALESCE(q.quota_rows, 0) AS quota_rows, \
               COALESCE(q.initial, 0) AS initial, q.first_initial_on, \
               COALESCE(q.quota_prev, 0) AS quota_prev, \
               COALESCE(pay.exp, 0) AS exp, COALESCE(pay.exp_lookback, 0) AS exp_lookback, \
               pay.last_exp_on, COALESCE(pay.alloc, 0) AS alloc, COALESCE(pay.nalloc, 0) AS nalloc, \
               npc.approved AS npc_approved, npc.npc_key, \
               (SELECT COUNT(*) FROM finance_targets t WHERE t.deleted = FALSE \
                  AND t.project_code = k.project_code AND t.fiscal_year = $1) AS targets, \
               (SELECT e.score FROM finance_evaluations e WHERE e.deleted = FALSE \
                  AND e.project_code = k.project_code AND e.fiscal_year = $2 \
                  ORDER BY e.score, e.key LIMIT 1) AS prev_score, \
               (SELECT e.key FROM finance_evaluations e WHERE e.deleted = FALSE \
                  AND e.project_code = k.project_code AND e.fiscal_year = $2 \
                  ORDER BY e.score, e.key LIMIT 1) AS prev_evaluation \
             FROM keys k \
             LEFT JOIN finance_projects p ON p.key = k.project_code AND p.deleted = FALSE \
             LEFT JOIN q ON q.project_code = k.project_code \
             LEFT JOIN pay ON pay.project_code = k.project_code \
             LEFT JOIN npc ON npc.project_code = k.project_code \
             ORDER BY k.project_code",
            quota = sum(&format!(
                "CASE WHEN fiscal_year = $1 THEN {SIGNED_QUOTA} ELSE 0 END"
            )),
            quota_rows = sum("CASE WHEN fiscal_year = $1 THEN 1 ELSE 0 END"),
            initial = sum("CASE WHEN fiscal_year = $1 AND kind = 'initial' THEN amount ELSE 0 END"),
            quota_prev = sum(&format!(
                "CASE WHEN fiscal_year = $2 THEN {SIGNED_QUOTA} ELSE 0 END"
            )),
            exp = sum("CASE WHEN kind = 'expenditure' THEN amount ELSE 0 END"),
            exp_lookback =
                sum("CASE WHEN kind = 'expenditure' AND paid_on <= $5 THEN amount ELSE 0 END"),
            alloc = sum("CASE WHEN kind = 'allocation' THEN amount ELSE 0 END"),
            nalloc = sum("CASE WHEN kind = 'allocation' THEN 1 ELSE 0 END"),
            approved = sum("approved + adjustment"),
            quotas_in = in_range("project_code"),
            payments_in = in_range("project_code"),
            budgets_in = in_range("project_code"),
            projects_in = in_range("key"),
        );
        let query = sqlx::query_as(AssertSqlSafe(sql))
            .bind(i64::from(q.year))
            .bind(i64::from(q.year) - 1)
            .bind(q.year_start())
            .bind(q.as_of)
            .bind(q.lookback);
        Ok(bind_range(query, range).fetch_all(&self.pool).await?)
    }

    async fn mirror_mismatches(
        &self,
        q: &FactsQuery,
        tolerance: Fen,
    ) -> Result<Vec<MirrorFact>, StoreError> {
        // Each execution row's figure is one range of the covering payments
        // index (project, kind, date): measured at a quarter province, 1.3 s
        // against 4.7 s for both sides streamed in project order and merged
        // here, whose rows each cross from the database to this process.
        // Only the rows that differ come back.
        let sql = format!(
            "SELECT m.key, m.project_code, p.unit_code, m.as_of, m.reported, m.exp FROM ( \
               SELECT x.key, x.project_code, x.as_of, x.cumulative AS reported, \
                 (SELECT {amount} FROM finance_payments f \
                   WHERE f.project_code = x.project_code AND f.kind = 'expenditure' \
                     AND f.paid_on >= $1 AND f.paid_on <= x.as_of AND f.deleted = FALSE) AS exp \
               FROM npc_execution x \
               WHERE x.deleted = FALSE AND x.year = $3 AND x.as_of <= $2) m \
             LEFT JOIN finance_projects p ON p.key = m.project_code AND p.deleted = FALSE \
             WHERE ABS(m.reported - m.exp) > $4 \
             ORDER BY m.project_code, m.as_of, m.key",
            amount = sum("f.amount")
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(q.year_start())
            .bind(q.as_of)
            .bind(i64::from(q.year))
            .bind(tolerance)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn unsettled_tranches(
        &self,
        q: &FactsQuery,
        paid_on_or_before: NaiveDate,
        range: &ProjectRange,
    ) -> Result<Vec<TrancheFact>, StoreError> {
        let in_range = range_condition("project_code", range, 4);
        let sql = format!(
            "WITH e AS ( \
               SELECT project_code, {exp} AS exp FROM finance_payments \
               WHERE deleted = FALSE AND kind = 'expenditure' AND paid_on >= $1 AND paid_on <= $2{in_range} \
               GROUP BY project_code), \
             w AS ( \
               SELECT project_code, key, paid_on, amount, \
                 CAST(SUM(amount) OVER (PARTITION BY project_code ORDER BY paid_on \
                   RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS cumulative \
               FROM finance_payments \
               WHERE deleted = FALSE AND kind = 'allocation' AND paid_on >= $1 AND paid_on <= $2{in_range}) \
             SELECT w.project_code, w.key AS payment_id, w.paid_on, w.amount, w.cumulative, \
               COALESCE(e.exp, 0) AS exp \
             FROM w LEFT JOIN e ON e.project_code = w.project_code \
             WHERE w.paid_on <= $3 AND w.cumulative > COALESCE(e.exp, 0) \
             ORDER BY w.project_code, w.paid_on, w.key",
            exp = sum("amount")
        );
        let query = sqlx::query_as(AssertSqlSafe(sql))
            .bind(q.year_start())
            .bind(q.as_of)
            .bind(paid_on_or_before);
        Ok(bind_range(query, range).fetch_all(&self.pool).await?)
    }

    async fn audit_findings(&self) -> Result<Vec<FindingFact>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key AS finding_no, unit_name, unit_code, project_code, status, amount, \
             deadline, found_on FROM audit_findings WHERE deleted = FALSE ORDER BY key",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn rectifications(&self) -> Result<Vec<RectificationFact>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key AS report_id, finding_no, status, reported_on FROM finance_rectifications \
             WHERE deleted = FALSE ORDER BY finding_no, reported_on, key",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn freeze_breaches(&self, as_of: NaiveDate) -> Result<Vec<FreezeFact>, StoreError> {
        let columns = "r.key AS referral_id, r.unit_code, r.project_code AS referral_project, \
             r.received_on, r.status, r.origin, r.freeze_from, f.key AS payment_id, \
             f.project_code AS payment_project, f.kind, f.amount, f.paid_on";
        let live = "r.deleted = FALSE AND r.frozen = TRUE AND r.status <> 'closed' \
             AND r.freeze_from IS NOT NULL";
        let sql = format!(
            "SELECT {columns} FROM discipline_referrals r \
               JOIN finance_payments f ON f.project_code = r.project_code \
             WHERE {live} AND f.deleted = FALSE AND f.paid_on >= r.freeze_from AND f.paid_on <= $1 \
             UNION ALL \
             SELECT {columns} FROM discipline_referrals r \
               JOIN finance_projects p ON p.unit_code = r.unit_code AND p.deleted = FALSE \
               JOIN finance_payments f ON f.project_code = p.key \
             WHERE {live} AND r.project_code IS NULL \
               AND f.deleted = FALSE AND f.paid_on >= r.freeze_from AND f.paid_on <= $1 \
             ORDER BY 1, 12, 8"
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(as_of)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn unit_quarters(
        &self,
        year: i32,
        quarter_ends: &[NaiveDate],
    ) -> Result<Vec<Vec<UnitQuarterFact>>, StoreError> {
        let Some(last) = quarter_ends.iter().max().copied() else {
            return Ok(Vec::new());
        };
        // End i is parameter $(i + 4); $3 is the latest, bounding the scans.
        let columns = |f: &dyn Fn(usize) -> String| {
            (0..quarter_ends.len())
                .map(f)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!(
            "WITH active AS ( \
               SELECT project_code FROM finance_quotas \
               WHERE deleted = FALSE AND fiscal_year = $1 GROUP BY project_code \
               HAVING SUM({SIGNED_QUOTA}) > 0), \
             qe AS ( \
               SELECT project_code, {quotas} FROM finance_quotas \
               WHERE deleted = FALSE AND fiscal_year = $1 AND approved_on <= $3 \
               GROUP BY project_code), \
             ee AS ( \
               SELECT project_code, {exps} FROM finance_payments \
               WHERE deleted = FALSE AND kind = 'expenditure' AND paid_on >= $2 AND paid_on <= $3 \
               GROUP BY project_code) \
             SELECT p.unit_code, {unit_sums} \
             FROM active a \
             JOIN finance_projects p ON p.key = a.project_code AND p.deleted = FALSE \
               AND p.category <> 'reserve' \
             LEFT JOIN qe ON qe.project_code = a.project_code \
             LEFT JOIN ee ON ee.project_code = a.project_code \
             GROUP BY p.unit_code ORDER BY p.unit_code",
            quotas = columns(&|i| format!(
                "{} AS quota_{i}",
                sum(&format!(
                    "CASE WHEN approved_on <= ${} THEN {SIGNED_QUOTA} ELSE 0 END",
                    i + 4
                ))
            )),
            exps = columns(&|i| format!(
                "{} AS exp_{i}",
                sum(&format!(
                    "CASE WHEN paid_on <= ${} THEN amount ELSE 0 END",
                    i + 4
                ))
            )),
            unit_sums = columns(&|i| format!(
                "{} AS quota_{i}, {} AS exp_{i}",
                sum(&format!("COALESCE(qe.quota_{i}, 0)")),
                sum(&format!("COALESCE(ee.exp_{i}, 0)"))
            )),
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::from(year))
            .bind(NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(last))
            .bind(last);
        for end in quarter_ends {
            query = query.bind(*end);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut out: Vec<Vec<UnitQuarterFact>> =
            vec![Vec::with_capacity(rows.len()); quarter_ends.len()];
        for row in &rows {
            let unit_code: String = row.try_get("unit_code")?;
            for (i, of_end) in out.iter_mut().enumerate() {
                of_end.push(UnitQuarterFact {
                    unit_code: unit_code.clone(),
                    quota: row.try_get(format!("quota_{i}").as_str())?,
                    exp: row.try_get(format!("exp_{i}").as_str())?,
                });
            }
        }
        Ok(out)
    }

    async fn orgdept_rows(&self, year: i32) -> Result<Vec<OrgdeptFact>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, unit_code, quarter, reported_rate FROM orgdept_evaluations \
             WHERE deleted = FALSE AND year = $1 ORDER BY key",
        )
        .bind(i64::from(year))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn unknown_projects(&self) -> Result<Vec<UnknownProjectFact>, StoreError> {
        // The codes a table names are few next to its rows: find the unknown
        // codes first, then the rows naming them (not one lookup per row).
        let part = |agency: &str, collection: &str, table: &str| {
            format!(
                "SELECT '{agency}' AS agency, '{collection}' AS collection, x.key, x.project_code \
                 FROM {table} x WHERE x.deleted = FALSE AND x.project_code IN ( \
                   SELECT d.project_code FROM (SELECT DISTINCT project_code FROM {table} \
                     WHERE project_code IS NOT NULL) d \
                   WHERE NOT EXISTS (SELECT 1 FROM finance_projects p WHERE p.key = d.project_code))"
            )
        };
        let sql = [
            part("finance", "quotas", "finance_quotas"),
            part("finance", "payments", "finance_payments"),
            part("finance", "targets", "finance_targets"),
            part("finance", "evaluations", "finance_evaluations"),
            part("npc", "budgets", "npc_budgets"),
            part("npc", "execution", "npc_execution"),
            part("audit", "findings", "audit_findings"),
            part("discipline", "referrals", "discipline_referrals"),
        ]
        .join(" UNION ALL ")
            + " ORDER BY 1, 4, 2, 3";
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?)
    }
}

const ALERT_COLUMNS: &str = "id, rule, subject, confidential, severity, state, episode, unit_code, \
     project_code, recipients, finding, finding_hash, as_of, first_seen, changed_at, resolved_at, \
     acked_at, acked_by, ack_note, notified_episode, notified_state, notified_at";

/// The text of what an alert row keeps as JSON: its finding, the
/// finding's sha-256 and its recipients.
fn alert_json(a: &AlertRow) -> Result<(String, String, String), StoreError> {
    let finding = serde_json::to_string(&a.finding).map_err(StoreError::Encode)?;
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(finding.as_bytes()));
    let recipients = serde_json::to_string(a.recipients()).map_err(StoreError::Encode)?;
    Ok((finding, hash, recipients))
}

const OUTBOX_COLUMNS: &str = "id, event_id, alert_id, subscriber, agency, event_type, body, \
     created_at, state, attempts, next_attempt_at, last_error, last_attempt_at, delivered_at";

/// A random salt from the TLS stack's secure random source.
fn new_salt() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| StoreError::Corrupt("no secure random source".into()))?;
    Ok(hex::encode(bytes))
}

#[async_trait]
impl AlertTx for SqlSyncTx {
    async fn salt(&mut self) -> Result<String, StoreError> {
        let existing: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'alert_id_salt'")
                .fetch_optional(&mut *self.tx)
                .await?;
        if let Some(salt) = existing {
            return Ok(salt);
        }
        let salt = new_salt()?;
        sqlx::query("INSERT INTO settings (key, value) VALUES ('alert_id_salt', $1)")
            .bind(&salt)
            .execute(&mut *self.tx)
            .await?;
        Ok(salt)
    }

    async fn active_alerts(&mut self) -> Result<Vec<AlertRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE state <> 'resolved' ORDER BY id"
        )))
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn alert(&mut self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn put_alert(&mut self, a: &AlertRow) -> Result<(), StoreError> {
        let (finding, finding_hash, recipients) = alert_json(a)?;
        let updates: Vec<String> = ALERT_COLUMNS
            .split(", ")
            .skip(1)
            .map(|c| format!("{0} = excluded.{0}", c.trim()))
            .collect();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
             ON CONFLICT (id) DO UPDATE SET {}",
            updates.join(", ")
        )))
        .bind(&a.id)
        .bind(a.rule)
        .bind(&a.subject)
        .bind(a.confidential)
        .bind(a.severity)
        .bind(a.state)
        .bind(a.episode)
        .bind(&a.unit_code)
        .bind(&a.project_code)
        .bind(recipients)
        .bind(finding)
        .bind(finding_hash)
        .bind(a.as_of)
        .bind(a.first_seen)
        .bind(a.changed_at)
        .bind(a.resolved_at)
        .bind(a.acked_at)
        .bind(&a.acked_by)
        .bind(&a.ack_note)
        .bind(a.notified_episode)
        .bind(a.notified_state)
        .bind(a.notified_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn active_silences(&mut self, now: DateTime<Utc>) -> Result<Vec<SilenceRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, scope, value, until, reason, created_by, created_at, lifted_at, agency \
             FROM silences WHERE lifted_at IS NULL AND until > $1 ORDER BY id",
        )
        .bind(now)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    async fn add_events(
        &mut self,
        events: &[NewEvent],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for chunk in events.chunks(rows_per_statement(10)) {
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO outbox (event_id, alert_id, subscriber, agency, event_type, body, \
                 created_at, state, attempts, next_attempt_at) ",
            );
            qb.push_values(chunk, |mut sep, e| {
                sep.push_bind(e.event_id.as_str())
                    .push_bind(e.alert_id.as_str())
                    .push_bind(e.subscriber.as_str())
                    .push_bind(e.agency)
                    .push_bind(e.event_type)
                    .push_bind(e.body.as_str())
                    .push_bind(now)
                    .push_bind("pending")
                    .push_bind(0i64)
                    .push_bind(now);
            });
            qb.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn record_run(
        &mut self,
        as_of: NaiveDate,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
        report: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reconcile_runs (as_of, started_at, finished_at, report) VALUES ($1, $2, $3, $4)",
        )
        .bind(as_of)
        .bind(started)
        .bind(finished)
        .bind(report)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl AlertStore for SqlStore {
    async fn begin_alerts(&self) -> Result<Box<dyn AlertTx>, StoreError> {
        let mut tx = self.write_tx().await?;
        if let Some(lock) = SERIALIZE_EVALUATIONS {
            sqlx::query(lock).execute(&mut *tx.tx).await?;
        }
        Ok(Box::new(tx))
    }

    async fn alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts ORDER BY changed_at DESC, id"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn get_alert(&self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn ack_alert(
        &self,
        id: &str,
        by: &str,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE alerts SET acked_at = $1, acked_by = $2, ack_note = $3 \
             WHERE id = $4 AND state <> 'resolved'",
        )
        .bind(at)
        .bind(by)
        .bind(note)
        .bind(id)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.tx.commit().await?;
        Ok(done == 1)
    }

    async fn add_silence(
        &self,
        scope: SilenceScope,
        value: &str,
        agency: Option<Agency>,
        until: DateTime<Utc>,
        reason: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO silences (scope, value, agency, until, reason, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(scope)
        .bind(value)
        .bind(agency)
        .bind(until)
        .bind(reason)
        .bind(by)
        .bind(at)
        .fetch_one(&mut *tx.tx)
        .await?;
        tx.tx.commit().await?;
        Ok(id)
    }

    async fn lift_silence(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done =
            sqlx::query("UPDATE silences SET lifted_at = $1 WHERE id = $2 AND lifted_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx.tx)
                .await?
                .rows_affected();
        tx.tx.commit().await?;
        Ok(done == 1)
    }

    async fn silences(&self) -> Result<Vec<SilenceRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, scope, value, until, reason, created_by, created_at, lifted_at, agency \
             FROM silences ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut tx = self.write_tx().await?;
        let rows: Vec<OutboxRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox o \
             WHERE o.state = 'pending' AND o.next_attempt_at <= $1 \
               AND (o.claimed_until IS NULL OR o.claimed_until <= $1) \
               AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.alert_id = o.alert_id \
                   AND e.subscriber = o.subscriber AND e.state = 'pending' AND e.id < o.id) \
             ORDER BY o.id LIMIT $2 {CLAIM_LOCK}"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx.tx)
        .await?;
        for chunk in rows.chunks(rows_per_statement(1)) {
            let mut qb = QueryBuilder::<Db>::new("UPDATE outbox SET claimed_until = ");
            qb.push_bind(lease_until);
            qb.push(" WHERE id IN (");
            let mut sep = qb.separated(", ");
            for r in chunk {
                sep.push_bind(r.id);
            }
            qb.push(")");
            qb.build().execute(&mut *tx.tx).await?;
        }
        tx.tx.commit().await?;
        Ok(rows)
    }

    async fn mark_delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE outbox SET state = 'delivered', delivered_at = $1, last_attempt_at = $1, \
             attempts = attempts + 1, claimed_until = NULL, last_error = NULL WHERE id = $2",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *tx.tx)
        .await?;
        tx.tx.commit().await?;
        Ok(())
    }

    async fn mark_failed(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE outbox SET state = $1, last_attempt_at = $2, attempts = attempts + 1, \
             claimed_until = NULL, last_error = $3, next_attempt_at = COALESCE($4, next_attempt_at) \
             WHERE id = $5",
        )
        .bind(if next.is_some() { "pending" } else { "dead" })
        .bind(at)
        .bind(error)
        .bind(next)
        .bind(id)
        .execute(&mut *tx.tx)
        .await?;
        tx.tx.commit().await?;
        Ok(())
    }

    async fn deliveries(
        &self,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1 IS NULL OR state = $1) \
             ORDER BY id DESC LIMIT $2"
        )))
        .bind(state)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn redrive(&self, id: Option<i64>, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE outbox SET state = 'pending', next_attempt_at = $1, claimed_until = NULL \
             WHERE state = 'dead' AND ($2 IS NULL OR id = $2)",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.tx.commit().await?;
        Ok(done)
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let (pending, retrying, delivered, dead): (i64, i64, i64, i64) =
            sqlx::query_as(AssertSqlSafe(format!(
                "SELECT {}, {}, {}, {} FROM outbox",
                sum("CASE WHEN state = 'pending' THEN 1 ELSE 0 END"),
                sum("CASE WHEN state = 'pending' AND attempts > 0 THEN 1 ELSE 0 END"),
                sum("CASE WHEN state = 'delivered' THEN 1 ELSE 0 END"),
                sum("CASE WHEN state = 'dead' THEN 1 ELSE 0 END"),
            )))
            .fetch_one(&self.pool)
            .await?;
        Ok(OutboxCounts {
            pending,
            retrying,
            delivered,
            dead,
        })
    }
}
