-- liankong store, initial schema (sqlite).
-- One table per canonical collection: bookkeeping columns, then the typed
-- columns the rules query (money in fen, dates as dates). The canonical
-- content lives in `versions`, one hash chain per stream.

CREATE TABLE finance_units (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
    unit_code TEXT,
    unit_name TEXT,
    name_norm TEXT,
    parent_code TEXT
) WITHOUT ROWID;

CREATE TABLE finance_projects (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
    project_code TEXT,
    unit_code TEXT,
    project_name TEXT,
    category TEXT,
    full_year BOOLEAN,
    start_year INTEGER,
    end_year INTEGER
) WITHOUT ROWID;

CREATE TABLE finance_quotas (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
    project_code TEXT,
    fiscal_year INTEGER,
    kind TEXT,
    amount INTEGER,
    approved_on DATE
) WITHOUT ROWID;

CREATE TABLE finance_payments (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
    project_code TEXT,
    kind TEXT,
    amount INTEGER,
    paid_on DATE
) WITHOUT ROWID;

CREATE TABLE finance_targets (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
    project_code TEXT,
    fiscal_year INTEGER,
    indicator TEXT
) WITHOUT ROWID;

CREATE TABLE finance_evaluations (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
    project_code TEXT,
    fiscal_year INTEGER,
    score INTEGER,
    grade TEXT
) WITHOUT ROWID;

CREATE TABLE finance_rectifications (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
    finding_no TEXT,
    status TEXT,
    reported_on DATE
) WITHOUT ROWID;

CREATE TABLE npc_budgets (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
    project_code TEXT,
    year INTEGER,
    approved INTEGER,
    adjustment INTEGER,
    approved_on DATE
) WITHOUT ROWID;

CREATE TABLE npc_execution (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
    project_code TEXT,
    year INTEGER,
    as_of DATE,
    cumulative INTEGER
) WITHOUT ROWID;

CREATE TABLE audit_findings (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
    unit_name TEXT,
    unit_name_norm TEXT,
    project_code TEXT,
    category TEXT,
    amount INTEGER,
    status TEXT,
    deadline DATE,
    found_on DATE,
    unit_code TEXT
) WITHOUT ROWID;

CREATE TABLE discipline_referrals (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
    unit_code TEXT,
    project_code TEXT,
    received_on DATE,
    status TEXT,
    frozen BOOLEAN,
    freeze_from DATE,
    origin TEXT
) WITHOUT ROWID;

CREATE TABLE orgdept_evaluations (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    seen_run INTEGER,
    unit_code TEXT,
    year INTEGER,
    quarter INTEGER,
    reported_rate INTEGER,
    score INTEGER,
    grade TEXT
) WITHOUT ROWID;

-- The history: every version of every record, in one hash chain per stream
-- (`agency.collection`). A deletion has no content and an empty content hash.
CREATE TABLE versions (
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    content TEXT,
    content_hash TEXT NOT NULL,
    link TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX versions_by_key ON versions (stream, key, version);

-- Per-stream sync bookkeeping, written in the same transaction as the batch.
CREATE TABLE stream_state (
    stream TEXT PRIMARY KEY,
    cursor TEXT,
    last_complete TEXT,
    run INTEGER,
    updated_at TEXT NOT NULL
);

-- One row per adapter run.
CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agency TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    ok BOOLEAN,
    report TEXT
);

-- Source rows that could not become canonical records, with the reason.
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    run INTEGER,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX quarantine_by_stream ON quarantine (stream, id);
