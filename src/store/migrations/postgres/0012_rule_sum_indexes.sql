-- Narrow indexes for the rules' sums on PostgreSQL (issue 11).
--
-- The npc mirror sums each project's expenditure up to every month-end
-- the congress reported, in a subquery run once per mirror row (about
-- 280,000 times at a quarter of a province): each run is now a short scan
-- of the project's expenditures alone, amounts included. The tranche and
-- quarter rules read allocations the same way. Measured at scale 0.25 with
-- EXPLAIN ANALYZE: the mirror 1.35 s to 0.77 s, the unit quarters 0.34 s
-- to 0.16 s, the tranches 0.25 s to 0.12 s, after a VACUUM of the loaded
-- tables. SQLite plans these sums on its covering index as fast already;
-- it gets none of them.
CREATE INDEX finance_payments_expenditure_by_project ON finance_payments (project_code, paid_on)
    INCLUDE (amount) WHERE kind = 'expenditure' AND deleted = FALSE;
CREATE INDEX finance_payments_allocation_by_project ON finance_payments (project_code, paid_on)
    INCLUDE (amount, key) WHERE kind = 'allocation' AND deleted = FALSE;
CREATE INDEX npc_execution_by_project ON npc_execution (project_code);
