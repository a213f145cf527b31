-- liankong store, initial schema (postgres).
-- One table per canonical collection: bookkeeping columns, then the typed
-- columns the rules query (money in fen, dates as dates). The canonical
-- content lives in `versions`, one hash chain per stream.

CREATE TABLE finance_units (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    seen_run BIGINT,
    unit_code TEXT,
    unit_name TEXT,
    name_norm TEXT,
    parent_code TEXT
);

CREATE TABLE finance_projects (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    seen_run BIGINT,
    project_code TEXT,
    unit_code TEXT,
    project_name TEXT,
    category TEXT,
    full_year BOOLEAN,
    start_year BIGINT,
    end_year BIGINT
);

CREATE TABLE finance_quotas (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    seen_run BIGINT,
    project_code TEXT,
    fiscal_year BIGINT,
    kind TEXT,
    amount BIGINT,
    approved_on DATE
);

CREATE TABLE finance_payments (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    seen_run BIGINT,
    project_code TEXT,
    kind TEXT,
    amount BIGINT,
    paid_on DATE
);

CREATE TABLE finance_targets (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    seen_run BIGINT,
    project_code TEXT,
    fiscal_year BIGINT,
    indicator TEXT
);

CREATE TABLE finance_evaluations (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    seen_run BIGINT,
    project_code TEXT,
    fiscal_year BIGINT,
    score BIGINT,
    grade TEXT
);

CREATE TABLE finance_rectifications (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    seen_run BIGINT,
    finding_no TEXT,
    status TEXT,
    reported_on DATE
);

CREATE TABLE npc_budgets (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    seen_run BIGINT,
    project_code TEXT,
    year BIGINT,
    approved BIGINT,
    adjustment BIGINT,
    approved_on DATE
);

CREATE TABLE npc_execution (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    seen_run BIGINT,
    project_code TEXT,
    year BIGINT,
    as_of DATE,
    cumulative BIGINT
);

CREATE TABLE audit_findings (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    seen_run BIGINT,
    unit_name TEXT,
    unit_name_norm TEXT,
    project_code TEXT,
    category TEXT,
    amount BIGINT,
    status TEXT,
    deadline DATE,
    found_on DATE,
    unit_code TEXT
);

CREATE TABLE discipline_referrals (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    seen_run BIGINT,
    unit_code TEXT,
    project_code TEXT,
    received_on DATE,
    status TEXT,
    frozen BOOLEAN,
    freeze_from DATE,
    origin TEXT
);

CREATE TABLE orgdept_evaluations (
    key TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    seen_run BIGINT,
    unit_code TEXT,
    year BIGINT,
    quarter BIGINT,
    reported_rate BIGINT,
    score BIGINT,
    grade TEXT
);

-- The history: every version of every record, in one hash chain per stream
-- (`agency.collection`). A deletion has no content and an empty content hash.
CREATE TABLE versions (
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    key TEXT NOT NULL,
    version BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    content TEXT,
    content_hash TEXT NOT NULL,
    link TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (stream, seq)
);
CREATE UNIQUE INDEX versions_by_key ON versions (stream, key, version);

-- Per-stream sync bookkeeping, written in the same transaction as the batch.
CREATE TABLE stream_state (
    stream TEXT PRIMARY KEY,
    cursor TEXT,
    last_complete TIMESTAMPTZ,
    run BIGINT,
    updated_at TIMESTAMPTZ NOT NULL
);

-- One row per adapter run.
CREATE TABLE sync_runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agency TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    ok BOOLEAN,
    report TEXT
);

-- Source rows that could not become canonical records, with the reason.
CREATE TABLE quarantine (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream TEXT NOT NULL,
    run BIGINT,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX quarantine_by_stream ON quarantine (stream, id);
