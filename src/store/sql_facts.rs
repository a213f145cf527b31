// Rule facts: the sums and rows the rules judge (`FactStore`). `include!`d
// after `sql_common.rs` by both backends.

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

/// One argument of a rule query.
enum Arg {
    Int(i64),
    Date(NaiveDate),
    Text(String),
}

/// A rule query: its SQL and its arguments, run for its rows or explained
/// on the backend it runs on (`liankong bench --explain`). One builder per
/// query below serves both, so the plan shown is the plan of the query run.
struct FactSql {
    name: &'static str,
    sql: String,
    args: Vec<Arg>,
}

type Args = <Db as sqlx::Database>::Arguments;

impl FactSql {
    fn new(name: &'static str, sql: impl Into<String>) -> FactSql {
        FactSql {
            name,
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    fn int(mut self, v: i64) -> FactSql {
        self.args.push(Arg::Int(v));
        self
    }

    fn date(mut self, d: NaiveDate) -> FactSql {
        self.args.push(Arg::Date(d));
        self
    }

    /// The ends `range` has, in the order of [`range_condition`].
    fn range(mut self, range: &ProjectRange) -> FactSql {
        for end in [&range.after, &range.up_to].into_iter().flatten() {
            self.args.push(Arg::Text(end.clone()));
        }
        self
    }

    /// The arguments, bound in order.
    fn arguments(&self) -> Result<Args, StoreError> {
        use sqlx::Arguments;
        let mut args = Args::default();
        for arg in &self.args {
            match arg {
                Arg::Int(v) => args.add(*v),
                Arg::Date(d) => args.add(*d),
                Arg::Text(t) => args.add(t.clone()),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(args)
    }

    /// `sql` (the query, or its EXPLAIN) with the query's arguments.
    fn query_with<'q>(&self, sql: &'q str) -> Result<sqlx::query::Query<'q, Db, Args>, StoreError> {
        Ok(sqlx::query_with(AssertSqlSafe(sql), self.arguments()?))
    }

    fn query_as<O>(&self) -> Result<sqlx::query::QueryAs<'_, Db, O, Args>, StoreError>
    where
        O: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row>,
    {
        Ok(sqlx::query_as_with(
            AssertSqlSafe(self.sql.as_str()),
            self.arguments()?,
        ))
    }

    /// The backend's plan of the query, with the same arguments: one line
    /// per step, indented by depth on SQLite (`EXPLAIN QUERY PLAN`), as
    /// PostgreSQL's `EXPLAIN` writes it there.
    async fn plan(&self, pool: &Pool<Db>) -> Result<String, StoreError> {
        let sql = format!("{EXPLAIN_PREFIX}{}", self.sql);
        let rows = self.query_with(&sql)?.fetch_all(pool).await?;
        plan_text(&rows)
    }
}

/// The rule queries, each with its name and the arguments a reconciliation
/// as of `q` would give it (every project at once; the mirror tolerance 0;
/// the quarter ends of `Y` up to `D`).
fn fact_queries(q: &FactsQuery) -> Vec<FactSql> {
    let all = ProjectRange::default();
    let quarter_ends: Vec<NaiveDate> = [(3, 31), (6, 30), (9, 30), (12, 31)]
        .into_iter()
        .filter_map(|(m, d)| NaiveDate::from_ymd_opt(q.year, m, d))
        .filter(|e| *e <= q.as_of)
        .collect();
    let mut queries = vec![
        project_slices_sql(1000),
        project_facts_sql(q, &all),
        mirror_mismatches_sql(q, Fen(0)),
        unsettled_tranches_sql(q, q.as_of, &all),
        audit_findings_sql(),
        rectifications_sql(),
        freeze_breaches_sql(q.as_of),
        orgdept_rows_sql(q.year),
        unknown_projects_sql(),
    ];
    queries.extend(unit_quarters_sql(q.year, &quarter_ends));
    queries
}

fn project_slices_sql(size: usize) -> FactSql {
    // Every size-th live project code bounds a slice; the codes beyond the
    // last bound (and those finance does not hold) fall in the open ends.
    FactSql::new(
        "project slices",
        "SELECT key FROM ( \
           SELECT key, ROW_NUMBER() OVER (ORDER BY key) AS n \
           FROM finance_projects WHERE deleted = FALSE) numbered \
         WHERE n % $1 = 0 ORDER BY key",
    )
    .int(i64::try_from(size.max(1)).unwrap_or(i64::MAX))
}

#[async_trait]
impl FactStore for SqlStore {
    async fn project_slices(&self, size: usize) -> Result<Vec<ProjectRange>, StoreError> {
        let bounds: Vec<(String,)> = project_slices_sql(size)
            .query_as()?
            .fetch_all(&self.pool)
            .await?;
        Ok(ProjectRange::between(
            bounds.into_iter().map(|(k,)| k).collect(),
        ))
    }

    async fn explain(&self, q: &FactsQuery) -> Result<Vec<(String, String)>, StoreError> {
        let mut plans = Vec::new();
        for query in fact_queries(q) {
            plans.push((query.name.to_owned(), query.plan(&self.pool).await?));
        }
        Ok(plans)
    }

    async fn project_facts(
        &self,
        q: &FactsQuery,
        range: &ProjectRange,
    ) -> Result<Vec<ProjectFacts>, StoreError> {
        Ok(project_facts_sql(q, range)
            .query_as()?
            .fetch_all(&self.pool)
            .await?)
    }

    async fn mirror_mismatches(
        &self,
        q: &FactsQuery,
        tolerance: Fen,
    ) -> Result<Vec<MirrorFact>, StoreError> {
        Ok(mirror_mismatches_sql(q, tolerance)
            .query_as()?
            .fetch_all(&self.pool)
            .await?)
    }

    async fn unsettled_tranches(
        &self,
        q: &FactsQuery,
        paid_on_or_before: NaiveDate,
        range: &ProjectRange,
    ) -> Result<Vec<TrancheFact>, StoreError> {
        Ok(unsettled_tranches_sql(q, paid_on_or_before, range)
            .query_as()?
            .fetch_all(&self.pool)
            .await?)
    }

    async fn audit_findings(&self) -> Result<Vec<FindingFact>, StoreError> {
        Ok(audit_findings_sql()
            .query_as()?
            .fetch_all(&self.pool)
            .await?)
    }

    async fn rectifications(&self) -> Result<Vec<RectificationFact>, StoreError> {
        Ok(rectifications_sql()
            .query_as()?
            .fetch_all(&self.pool)
            .await?)
    }

    async fn freeze_breaches(&self, as_of: NaiveDate) -> Result<Vec<FreezeFact>, StoreError> {
        Ok(freeze_breaches_sql(as_of)
            .query_as()?
            .fetch_all(&self.pool)
            .await?)
    }

    async fn unit_quarters(
        &self,
        year: i32,
        quarter_ends: &[NaiveDate],
    ) -> Result<Vec<Vec<UnitQuarterFact>>, StoreError> {
        let Some(query) = unit_quarters_sql(year, quarter_ends) else {
            return Ok(Vec::new());
        };
        let rows = query.query_with(&query.sql)?.fetch_all(&self.pool).await?;
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
        Ok(orgdept_rows_sql(year)
            .query_as()?
            .fetch_all(&self.pool)
            .await?)
    }

    async fn unknown_projects(&self) -> Result<Vec<UnknownProjectFact>, StoreError> {
        Ok(unknown_projects_sql()
            .query_as()?
            .fetch_all(&self.pool)
            .await?)
    }
}

fn project_facts_sql(q: &FactsQuery, range: &ProjectRange) -> FactSql {
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
    FactSql::new("project facts", sql)
        .int(i64::from(q.year))
        .int(i64::from(q.year) - 1)
        .date(q.year_start())
        .date(q.as_of)
        .date(q.lookback)
        .range(range)
}

fn mirror_mismatches_sql(q: &FactsQuery, tolerance: Fen) -> FactSql {
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
    FactSql::new("npc mirror mismatches", sql)
        .date(q.year_start())
        .date(q.as_of)
        .int(i64::from(q.year))
        .int(tolerance.0)
}

fn unsettled_tranches_sql(
    q: &FactsQuery,
    paid_on_or_before: NaiveDate,
    range: &ProjectRange,
) -> FactSql {
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
    FactSql::new("unsettled tranches", sql)
        .date(q.year_start())
        .date(q.as_of)
        .date(paid_on_or_before)
        .range(range)
}

fn audit_findings_sql() -> FactSql {
    FactSql::new(
        "audit findings",
        "SELECT key AS finding_no, unit_name, unit_code, project_code, status, amount, \
         deadline, found_on FROM audit_findings WHERE deleted = FALSE ORDER BY key",
    )
}

fn rectifications_sql() -> FactSql {
    FactSql::new(
        "rectifications",
        "SELECT key AS report_id, finding_no, status, reported_on FROM finance_rectifications \
         WHERE deleted = FALSE ORDER BY finding_no, reported_on, key",
    )
}

fn freeze_breaches_sql(as_of: NaiveDate) -> FactSql {
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
    FactSql::new("freeze breaches", sql).date(as_of)
}

/// `None` without quarter ends.
fn unit_quarters_sql(year: i32, quarter_ends: &[NaiveDate]) -> Option<FactSql> {
    let last = quarter_ends.iter().max().copied()?;
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
    let mut query = FactSql::new("unit quarters", sql)
        .int(i64::from(year))
        .date(NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(last))
        .date(last);
    for end in quarter_ends {
        query = query.date(*end);
    }
    Some(query)
}

fn orgdept_rows_sql(year: i32) -> FactSql {
    FactSql::new(
        "orgdept rows",
        "SELECT key, unit_code, quarter, reported_rate FROM orgdept_evaluations \
         WHERE deleted = FALSE AND year = $1 ORDER BY key",
    )
    .int(i64::from(year))
}

fn unknown_projects_sql() -> FactSql {
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
    FactSql::new("unknown projects", sql)
}
