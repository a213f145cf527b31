-- Lookups of the rules: every aggregate a rule asks for is an index range.
CREATE INDEX finance_payments_by_project ON finance_payments (project_code, kind, paid_on);
CREATE INDEX finance_quotas_by_project ON finance_quotas (project_code, fiscal_year);
CREATE INDEX finance_projects_by_unit ON finance_projects (unit_code);
CREATE INDEX finance_targets_by_project ON finance_targets (project_code, fiscal_year);
CREATE INDEX finance_evaluations_by_project ON finance_evaluations (project_code, fiscal_year);
CREATE INDEX finance_rectifications_by_finding ON finance_rectifications (finding_no);
CREATE INDEX npc_budgets_by_project ON npc_budgets (project_code, year);
CREATE INDEX npc_execution_by_year ON npc_execution (year, as_of);

-- Settings the store keeps for itself (the salt of alert ids).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per alert identity (a hash of its subject); episodes reuse the row.
-- `finding` is the JSON of the newest finding, confidential parts included:
-- views per recipient are made from it when events are written.
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    subject TEXT NOT NULL,
    confidential BOOLEAN NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    episode INTEGER NOT NULL,
    unit_code TEXT,
    project_code TEXT,
    recipients TEXT NOT NULL,
    finding TEXT NOT NULL,
    finding_hash TEXT NOT NULL,
    as_of DATE NOT NULL,
    first_seen TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    resolved_at TEXT,
    acked_at TEXT,
    acked_by TEXT,
    ack_note TEXT,
    notified_episode INTEGER,
    notified_state TEXT,
    notified_at TEXT
);
CREATE INDEX alerts_by_state ON alerts (state, rule);

-- Silences by rule, unit or project until a time, with a reason.
CREATE TABLE silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    value TEXT NOT NULL,
    until TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    lifted_at TEXT
);

-- The durable outbox: one row per event and subscriber, written in the same
-- transaction as the alert change. `body` is the exact JSON that is signed
-- and sent; `event_id` is the webhook-id, the same on every retry.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    alert_id TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    agency TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    last_attempt_at TEXT,
    delivered_at TEXT,
    claimed_until TEXT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_order ON outbox (alert_id, subscriber, id);

-- One row per reconciliation.
CREATE TABLE reconcile_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    as_of DATE NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    report TEXT
);
