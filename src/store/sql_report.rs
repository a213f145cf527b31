// The report's query, shared by both backends.
//
// Like `sql_common.rs`, this file is compiled twice, `include!`d by
// `sqlite.rs` and `postgres.rs` after `sql_common.rs`, whose imports, `sum()`
// and `SIGNED_QUOTA` it uses (it must not import them again: one module).
// The SQL is valid on both backends.

use super::report::{ReportStore, UnitSums};

#[async_trait]
impl ReportStore for SqlStore {
    async fn unit_sums(&self, year: i32, as_of: NaiveDate) -> Result<Vec<UnitSums>, StoreError> {
        // `pp` is one row per live project with quota rows in `Y`: a project
        // without any cannot be active, and its quota adds nothing to the
        // total. Units are the driving table so that a unit without projects
        // still gets its row.
        let active = "pp.category <> 'reserve' AND pp.quota > 0";
        let sql = format!(
            "WITH q AS ( \
               SELECT project_code, {quota} AS quota FROM finance_quotas \
               WHERE deleted = FALSE AND fiscal_year = $1 \
               GROUP BY project_code), \
             pay AS ( \
               SELECT project_code, {exp} AS exp, {alloc} AS alloc FROM finance_payments \
               WHERE deleted = FALSE AND paid_on >= $2 AND paid_on <= $3 \
               GROUP BY project_code), \
             pp AS ( \
               SELECT p.unit_code, p.category, q.quota, \
                 COALESCE(pay.exp, 0) AS exp, COALESCE(pay.alloc, 0) AS alloc \
               FROM finance_projects p \
               JOIN q ON q.project_code = p.key \
               LEFT JOIN pay ON pay.project_code = p.key \
               WHERE p.deleted = FALSE), \
             s AS ( \
               SELECT pp.unit_code, \
                 {active_projects} AS active_projects, \
                 {active_quota} AS active_quota, \
                 {active_exp} AS exp, \
                 {active_alloc} AS alloc, \
                 {reserve_quota} AS reserve_quota, \
                 {total_quota} AS total_quota \
               FROM pp GROUP BY pp.unit_code) \
             SELECT u.key AS unit_code, COALESCE(u.unit_name, '') AS unit_name, \
               COALESCE(s.active_projects, 0) AS active_projects, \
               COALESCE(s.active_quota, 0) AS active_quota, \
               COALESCE(s.exp, 0) AS exp, COALESCE(s.alloc, 0) AS alloc, \
               COALESCE(s.reserve_quota, 0) AS reserve_quota, \
               COALESCE(s.total_quota, 0) AS total_quota \
             FROM finance_units u \
             LEFT JOIN s ON s.unit_code = u.key \
             WHERE u.deleted = FALSE \
             ORDER BY u.key",
            quota = sum(SIGNED_QUOTA),
            exp = sum("CASE WHEN kind = 'expenditure' THEN amount ELSE 0 END"),
            alloc = sum("CASE WHEN kind = 'allocation' THEN amount ELSE 0 END"),
            active_projects = sum(&format!("CASE WHEN {active} THEN 1 ELSE 0 END")),
            active_quota = sum(&format!("CASE WHEN {active} THEN pp.quota ELSE 0 END")),
            active_exp = sum(&format!("CASE WHEN {active} THEN pp.exp ELSE 0 END")),
            active_alloc = sum(&format!("CASE WHEN {active} THEN pp.alloc ELSE 0 END")),
            reserve_quota = sum("CASE WHEN pp.category = 'reserve' THEN pp.quota ELSE 0 END"),
            total_quota = sum("pp.quota"),
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(i64::from(year))
            .bind(NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(as_of))
            .bind(as_of)
            .fetch_all(&self.pool)
            .await?)
    }
}
