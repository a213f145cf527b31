-- Actions (RULES.md § Actions): what agencies take through liankong, kept
-- like any source record under the pseudo-source `liankong` (stream
-- `liankong.actions`): a versioned, hash-chained history in `versions`,
-- and this table in the layout of every collection table, with every field
-- of an action as a typed column. Append-only: a withdrawal is an action
-- of its own, nothing here is updated in place.
CREATE TABLE liankong_actions (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
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
) WITHOUT ROWID;
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
