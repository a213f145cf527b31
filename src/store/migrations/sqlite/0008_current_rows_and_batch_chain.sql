-- The store at the engine's speed (issue 11): bytes per record.
--
-- A record's current version now lives in its own row (its canonical
-- content and 32-byte entry hash beside the typed columns); `superseded`
-- keeps every earlier version; `chain` holds one link per batch of versions
-- a write added to a stream, and `streams` each stream's head and length.
-- No per-row "seen" mark, no hex digests: an unchanged record is compared by
-- its content bytes and not written at all. Times of the new layout are
-- microseconds since the Unix epoch. The view `versions` shows every
-- version of every stream, as the history was laid out before.
--
-- The old history is kept as `legacy_versions` until the store's first
-- open after this migration re-hashes it into the new chain (in one
-- transaction) and drops it.
--
-- On SQLite each record table becomes an ordinary rowid table with a
-- unique key: a new record's row, content and all, is appended at the end
-- of the table whatever its key, and only the narrow key index takes
-- inserts in key order. (A WITHOUT ROWID table keyed by the record's key
-- put every fat row where its key falls: sources that send keys out of
-- key order, as finance does by update time, then touched a random page
-- of the table per record once it outgrew the page cache.)

CREATE TABLE streams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- How many batches and versions the chain holds, and its last link.
    batches INTEGER NOT NULL DEFAULT 0,
    versions INTEGER NOT NULL DEFAULT 0,
    head BLOB
);
INSERT INTO streams (name) VALUES
    ('finance.units'),
    ('finance.projects'),
    ('finance.quotas'),
    ('finance.payments'),
    ('finance.targets'),
    ('finance.evaluations'),
    ('finance.rectifications'),
    ('npc.budgets'),
    ('npc.execution'),
    ('audit.findings'),
    ('discipline.referrals'),
    ('orgdept.evaluations');

CREATE TABLE chain (
    stream_id INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    versions INTEGER NOT NULL,
    root BLOB NOT NULL,
    link BLOB NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (stream_id, batch)
) WITHOUT ROWID;

CREATE TABLE superseded (
    stream_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    content TEXT,
    entry BLOB NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (stream_id, key, version)
) WITHOUT ROWID;

ALTER TABLE versions RENAME TO legacy_versions;
CREATE TABLE new_finance_units (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    unit_code TEXT,
    unit_name TEXT,
    name_norm TEXT,
    parent_code TEXT
);
INSERT INTO new_finance_units (key, version, deleted, first_seen, last_seen, unit_code, unit_name, name_norm, parent_code)
SELECT key, version, deleted,
    CAST(ROUND(unixepoch(first_seen, 'subsec') * 1000000) AS INTEGER),
    CAST(ROUND(unixepoch(last_seen, 'subsec') * 1000000) AS INTEGER), unit_code, unit_name, name_norm, parent_code
FROM finance_units ORDER BY key;
DROP TABLE finance_units;
ALTER TABLE new_finance_units RENAME TO finance_units;
CREATE INDEX finance_units_by_name ON finance_units (name_norm);

CREATE TABLE new_finance_projects (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    project_code TEXT,
    unit_code TEXT,
    project_name TEXT,
    category TEXT,
    full_year BOOLEAN,
    start_year INTEGER,
    end_year INTEGER
);
INSERT INTO new_finance_projects (key, version, deleted, first_seen, last_seen, project_code, unit_code, project_name, category, full_year, start_year, end_year)
SELECT key, version, deleted,
    CAST(ROUND(unixepoch(first_seen, 'subsec') * 1000000) AS INTEGER),
    CAST(ROUND(unixepoch(last_seen, 'subsec') * 1000000) AS INTEGER), project_code, unit_code, project_name, category, full_year, start_year, end_year
FROM finance_projects ORDER BY key;
DROP TABLE finance_projects;
ALTER TABLE new_finance_projects RENAME TO finance_projects;
CREATE INDEX finance_projects_by_unit ON finance_projects (unit_code);

CREATE TABLE new_finance_quotas (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    project_code TEXT,
    fiscal_year INTEGER,
    kind TEXT,
    amount INTEGER,
    approved_on DATE
);
INSERT INTO new_finance_quotas (key, version, deleted, first_seen, last_seen, project_code, fiscal_year, kind, amount, approved_on)
SELECT key, version, deleted,
    CAST(ROUND(unixepoch(first_seen, 'subsec') * 1000000) AS INTEGER),
    CAST(ROUND(unixepoch(last_seen, 'subsec') * 1000000) AS INTEGER), project_code, fiscal_year, kind, amount, approved_on
FROM finance_quotas ORDER BY key;
DROP TABLE finance_quotas;
ALTER TABLE new_finance_quotas RENAME TO finance_quotas;
CREATE INDEX finance_quotas_by_project ON finance_quotas (project_code, fiscal_year);

CREATE TABLE new_finance_payments (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    project_code TEXT,
    kind TEXT,
    amount INTEGER,
    paid_on DATE
);
INSERT INTO new_finance_payments (key, version, deleted, first_seen, last_seen, project_code, kind, amount, paid_on)
SELECT key, version, deleted,
    CAST(ROUND(unixepoch(first_seen, 'subsec') * 1000000) AS INTEGER),
    CAST(ROUND(unixepoch(last_seen, 'subsec') * 1000000) AS INTEGER), project_code, kind, amount, paid_on
FROM finance_payments ORDER BY key;
DROP TABLE finance_payments;
ALTER TABLE new_finance_payments RENAME TO finance_payments;
CREATE INDEX finance_payments_by_project ON finance_payments (project_code, kind, paid_on, deleted, amount);

CREATE TABLE new_finance_targets (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    project_code TEXT,
    fiscal_year INTEGER,
    indicator TEXT
);
INSERT INTO new_finance_targets (key, version, deleted, first_seen, last_seen, project_code, fiscal_year, indicator)
SELECT key, version, deleted,
    CAST(ROUND(unixepoch(first_seen, 'subsec') * 1000000) AS INTEGER),
    CAST(ROUND(unixepoch(last_seen, 'subsec') * 1000000) AS INTEGER), project_code, fiscal_year, indicator
FROM finance_targets ORDER BY key;
DROP TABLE finance_targets;
ALTER TABLE new_finance_targets RENAME TO finance_targets;
CREATE INDEX finance_targets_by_project ON finance_targets (project_code, fiscal_year);

CREATE TABLE new_finance_evaluations (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    project_code TEXT,
    fiscal_year INTEGER,
    score INTEGER,
    grade TEXT
);
INSERT INTO new_finance_evaluations (key, version, deleted, first_seen, last_seen, project_code, fiscal_year, score, grade)
SELECT key, version, deleted,
    CAST(ROUND(unixepoch(first_seen, 'subsec') * 1000000) AS INTEGER),
    CAST(ROUND(unixepoch(last_seen, 'subsec') * 1000000) AS INTEGER), project_code, fiscal_year, score, grade
FROM finance_evaluations ORDER BY key;
DROP TABLE finance_evaluations;
ALTER TABLE new_finance_evaluations RENAME TO finance_evaluations;
CREATE INDEX finance_evaluations_by_project ON finance_evaluations (project_code, fiscal_year);

CREATE TABLE new_finance_rectifications (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    finding_no TEXT,
    status TEXT,
    reported_on DATE
);
INSERT INTO new_finance_rectifications (key, version, deleted, first_seen, last_seen, finding_no, status, reported_on)
SELECT key, version, deleted,
    CAST(ROUND(unixepoch(first_seen, 'subsec') * 1000000) AS INTEGER),
    CAST(ROUND(unixepoch(last_seen, 'subsec') * 1000000) AS INTEGER), finding_no, status, reported_on
FROM finance_rectifications ORDER BY key;
DROP TABLE finance_rectifications;
ALTER TABLE new_finance_rectifications RENAME TO finance_rectifications;
CREATE INDEX finance_rectifications_by_finding ON finance_rectifications (finding_no);

CREATE TABLE new_npc_budgets (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    project_code TEXT,
    year INTEGER,
    approved INTEGER,
    adjustment INTEGER,
    approved_on DATE
);
INSERT INTO new_npc_budgets (key, version, deleted, first_seen, last_seen, project_code, year, approved, adjustment, approved_on)
SELECT key, version, deleted,
    CAST(ROUND(unixepoch(first_seen, 'subsec') * 1000000) AS INTEGER),
    CAST(ROUND(unixepoch(last_seen, 'subsec') * 1000000) AS INTEGER), project_code, year, approved, adjustment, approved_on
FROM npc_budgets ORDER BY key;
DROP TABLE npc_budgets;
ALTER TABLE new_npc_budgets RENAME TO npc_budgets;
CREATE INDEX npc_budgets_by_project ON npc_budgets (project_code, year);

CREATE TABLE new_npc_execution (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    project_code TEXT,
    year INTEGER,
    as_of DATE,
    cumulative INTEGER
);
INSERT INTO new_npc_execution (key, version, deleted, first_seen, last_seen, project_code, year, as_of, cumulative)
SELECT key, version, deleted,
    CAST(ROUND(unixepoch(first_seen, 'subsec') * 1000000) AS INTEGER),
    CAST(ROUND(unixepoch(last_seen, 'subsec') * 1000000) AS INTEGER), project_code, year, as_of, cumulative
FROM npc_execution ORDER BY key;
DROP TABLE npc_execution;
ALTER TABLE new_npc_execution RENAME TO npc_execution;
CREATE INDEX npc_execution_by_year ON npc_execution (year, as_of);

CREATE TABLE new_audit_findings (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    unit_name TEXT,
    unit_name_norm TEXT,
    project_code TEXT,
    category TEXT,
    amount INTEGER,
    status TEXT,
    deadline DATE,
    found_on DATE,
    unit_code TEXT
);
INSERT INTO new_audit_findings (key, version, deleted, first_seen, last_seen, unit_name, unit_name_norm, project_code, category, amount, status, deadline, found_on, unit_code)
SELECT key, version, deleted,
    CAST(ROUND(unixepoch(first_seen, 'subsec') * 1000000) AS INTEGER),
    CAST(ROUND(unixepoch(last_seen, 'subsec') * 1000000) AS INTEGER), unit_name, unit_name_norm, project_code, category, amount, status, deadline, found_on, unit_code
FROM audit_findings ORDER BY key;
DROP TABLE audit_findings;
ALTER TABLE new_audit_findings RENAME TO audit_findings;
CREATE INDEX audit_findings_by_name ON audit_findings (unit_name_norm);

CREATE TABLE new_discipline_referrals (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    unit_code TEXT,
    project_code TEXT,
    received_on DATE,
    status TEXT,
    frozen BOOLEAN,
    freeze_from DATE,
    origin TEXT
);
INSERT INTO new_discipline_referrals (key, version, deleted, first_seen, last_seen, unit_code, project_code, received_on, status, frozen, freeze_from, origin)
SELECT key, version, deleted,
    CAST(ROUND(unixepoch(first_seen, 'subsec') * 1000000) AS INTEGER),
    CAST(ROUND(unixepoch(last_seen, 'subsec') * 1000000) AS INTEGER), unit_code, project_code, received_on, status, frozen, freeze_from, origin
FROM discipline_referrals ORDER BY key;
DROP TABLE discipline_referrals;
ALTER TABLE new_discipline_referrals RENAME TO discipline_referrals;

CREATE TABLE new_orgdept_evaluations (
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    deleted BOOLEAN NOT NULL,
    batch INTEGER,
    entry BLOB,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    content TEXT,
    unit_code TEXT,
    year INTEGER,
    quarter INTEGER,
    reported_rate INTEGER,
    score INTEGER,
    grade TEXT
);
INSERT INTO new_orgdept_evaluations (key, version, deleted, first_seen, last_seen, unit_code, year, quarter, reported_rate, score, grade)
SELECT key, version, deleted,
    CAST(ROUND(unixepoch(first_seen, 'subsec') * 1000000) AS INTEGER),
    CAST(ROUND(unixepoch(last_seen, 'subsec') * 1000000) AS INTEGER), unit_code, year, quarter, reported_rate, score, grade
FROM orgdept_evaluations ORDER BY key;
DROP TABLE orgdept_evaluations;
ALTER TABLE new_orgdept_evaluations RENAME TO orgdept_evaluations;

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
    SELECT 'orgdept.evaluations', key, version, batch, deleted, content, entry, last_seen FROM orgdept_evaluations;

-- Work a migration leaves to the program (the re-hash, in Rust).
CREATE TABLE store_upgrades (name TEXT PRIMARY KEY);
INSERT INTO store_upgrades (name) VALUES ('rehash-0008');
