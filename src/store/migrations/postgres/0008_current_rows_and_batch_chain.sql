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
CREATE TABLE streams (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- How many batches and versions the chain holds, and its last link.
    batches BIGINT NOT NULL DEFAULT 0,
    versions BIGINT NOT NULL DEFAULT 0,
    head BYTEA
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
    stream_id BIGINT NOT NULL,
    batch BIGINT NOT NULL,
    versions BIGINT NOT NULL,
    root BYTEA NOT NULL,
    link BYTEA NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (stream_id, batch)
);

CREATE TABLE superseded (
    stream_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    version BIGINT NOT NULL,
    batch BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    content TEXT,
    entry BYTEA NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (stream_id, key, version)
);

ALTER TABLE versions RENAME TO legacy_versions;
ALTER TABLE finance_units DROP COLUMN hash, DROP COLUMN seen_run,
    ADD COLUMN batch BIGINT, ADD COLUMN entry BYTEA, ADD COLUMN content TEXT,
    ALTER COLUMN first_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM first_seen) * 1000000)::BIGINT,
    ALTER COLUMN last_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM last_seen) * 1000000)::BIGINT;
ALTER TABLE finance_projects DROP COLUMN hash, DROP COLUMN seen_run,
    ADD COLUMN batch BIGINT, ADD COLUMN entry BYTEA, ADD COLUMN content TEXT,
    ALTER COLUMN first_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM first_seen) * 1000000)::BIGINT,
    ALTER COLUMN last_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM last_seen) * 1000000)::BIGINT;
ALTER TABLE finance_quotas DROP COLUMN hash, DROP COLUMN seen_run,
    ADD COLUMN batch BIGINT, ADD COLUMN entry BYTEA, ADD COLUMN content TEXT,
    ALTER COLUMN first_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM first_seen) * 1000000)::BIGINT,
    ALTER COLUMN last_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM last_seen) * 1000000)::BIGINT;
ALTER TABLE finance_payments DROP COLUMN hash, DROP COLUMN seen_run,
    ADD COLUMN batch BIGINT, ADD COLUMN entry BYTEA, ADD COLUMN content TEXT,
    ALTER COLUMN first_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM first_seen) * 1000000)::BIGINT,
    ALTER COLUMN last_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM last_seen) * 1000000)::BIGINT;
ALTER TABLE finance_targets DROP COLUMN hash, DROP COLUMN seen_run,
    ADD COLUMN batch BIGINT, ADD COLUMN entry BYTEA, ADD COLUMN content TEXT,
    ALTER COLUMN first_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM first_seen) * 1000000)::BIGINT,
    ALTER COLUMN last_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM last_seen) * 1000000)::BIGINT;
ALTER TABLE finance_evaluations DROP COLUMN hash, DROP COLUMN seen_run,
    ADD COLUMN batch BIGINT, ADD COLUMN entry BYTEA, ADD COLUMN content TEXT,
    ALTER COLUMN first_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM first_seen) * 1000000)::BIGINT,
    ALTER COLUMN last_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM last_seen) * 1000000)::BIGINT;
ALTER TABLE finance_rectifications DROP COLUMN hash, DROP COLUMN seen_run,
    ADD COLUMN batch BIGINT, ADD COLUMN entry BYTEA, ADD COLUMN content TEXT,
    ALTER COLUMN first_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM first_seen) * 1000000)::BIGINT,
    ALTER COLUMN last_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM last_seen) * 1000000)::BIGINT;
ALTER TABLE npc_budgets DROP COLUMN hash, DROP COLUMN seen_run,
    ADD COLUMN batch BIGINT, ADD COLUMN entry BYTEA, ADD COLUMN content TEXT,
    ALTER COLUMN first_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM first_seen) * 1000000)::BIGINT,
    ALTER COLUMN last_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM last_seen) * 1000000)::BIGINT;
ALTER TABLE npc_execution DROP COLUMN hash, DROP COLUMN seen_run,
    ADD COLUMN batch BIGINT, ADD COLUMN entry BYTEA, ADD COLUMN content TEXT,
    ALTER COLUMN first_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM first_seen) * 1000000)::BIGINT,
    ALTER COLUMN last_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM last_seen) * 1000000)::BIGINT;
ALTER TABLE audit_findings DROP COLUMN hash, DROP COLUMN seen_run,
    ADD COLUMN batch BIGINT, ADD COLUMN entry BYTEA, ADD COLUMN content TEXT,
    ALTER COLUMN first_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM first_seen) * 1000000)::BIGINT,
    ALTER COLUMN last_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM last_seen) * 1000000)::BIGINT;
ALTER TABLE discipline_referrals DROP COLUMN hash, DROP COLUMN seen_run,
    ADD COLUMN batch BIGINT, ADD COLUMN entry BYTEA, ADD COLUMN content TEXT,
    ALTER COLUMN first_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM first_seen) * 1000000)::BIGINT,
    ALTER COLUMN last_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM last_seen) * 1000000)::BIGINT;
ALTER TABLE orgdept_evaluations DROP COLUMN hash, DROP COLUMN seen_run,
    ADD COLUMN batch BIGINT, ADD COLUMN entry BYTEA, ADD COLUMN content TEXT,
    ALTER COLUMN first_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM first_seen) * 1000000)::BIGINT,
    ALTER COLUMN last_seen TYPE BIGINT USING (EXTRACT(EPOCH FROM last_seen) * 1000000)::BIGINT;

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
