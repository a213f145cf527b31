-- Actions (RULES.md § Actions): what agencies take through liankong, kept
-- like any source record under the pseudo-source `liankong` (stream
-- `liankong.actions`): a versioned, hash-chained history like every
-- stream's (migration 0008's layout: the current version in this table,
-- earlier ones in `superseded`, one chain link per batch), with every field
-- of an action as a typed column. Append-only: a withdrawal is an action
-- of its own, nothing here is updated in place.
CREATE TABLE liankong_actions (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    action_id TEXT,
    kind TEXT,
    agency TEXT,
    token TEXT,
    by_name TEXT,
    recorded_at TEXT,
    taken_on DATE,
    project_code TEXT,
    year INTEGER,
    alert_id TEXT,
    deadline DATE,
    effective_on DATE,
    amount INTEGER,
    from_ids TEXT,
    withdraws TEXT,
    reason TEXT
);
CREATE INDEX liankong_actions_by_project ON liankong_actions (year, project_code, kind);

-- The answers of POST /v1/actions by Idempotency-Key: the same key from the
-- same agency within 24 hours gets the first answer again. Written in the
-- action's own transaction; only recorded actions are remembered.
CREATE TABLE action_requests (
    agency TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    action_id TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (agency, idempotency_key)
);

-- The actions' stream, and every version of it in the view of all versions.
INSERT INTO streams (name) VALUES ('liankong.actions');
DROP VIEW versions;
CREATE VIEW versions AS
    SELECT s.name AS stream, v.key, v.version, v.batch, v.deleted, v.content, v.entry, v.recorded_at
    FROM superseded v JOIN streams s ON s.id = v.stream_id
UNION ALL
    SELECT 'finance.units', key, version, batch, deleted, content, entry, last_seen FROM finance_units
UNION ALL
    SELECT 'finance.projects', key, version, batch, deleted, content, entry, last_seen FROM finance_projects
UNION ALL
    SELECT 'finance.quotas', key, version, batch, deleted, content, entry, last_seen FROM finance_quotas
UNION ALL
    SELECT 'finance.payments', key, version, batch, deleted, content, entry, last_seen FROM finance_payments
UNION ALL
    SELECT 'finance.targets', key, version, batch, deleted, content, entry, last_seen FROM finance_targets
UNION ALL
    SELECT 'finance.evaluations', key, version, batch, deleted, content, entry, last_seen FROM finance_evaluations
UNION ALL
    SELECT 'finance.rectifications', key, version, batch, deleted, content, entry, last_seen FROM finance_rectifications
UNION ALL
    SELECT 'npc.budgets', key, version, batch, deleted, content, entry, last_seen FROM npc_budgets
UNION ALL
    SELECT 'npc.execution', key, version, batch, deleted, content, entry, last_seen FROM npc_execution
UNION ALL
    SELECT 'audit.findings', key, version, batch, deleted, content, entry, last_seen FROM audit_findings
UNION ALL
    SELECT 'discipline.referrals', key, version, batch, deleted, content, entry, last_seen FROM discipline_referrals
UNION ALL
    SELECT 'orgdept.evaluations', key, version, batch, deleted, content, entry, last_seen FROM orgdept_evaluations
UNION ALL
    SELECT 'liankong.actions', key, version, batch, deleted, content, entry, last_seen FROM liankong_actions;
