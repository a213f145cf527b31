-- Quarantined rows get a lifecycle (open, resolved, dropped) and the key of
-- the record they are about; a snapshot's held deletions are kept with the
-- stream's state (issue: no source may cost a record).

-- The record the row is about, when its key fields could be read.
ALTER TABLE quarantine ADD COLUMN key TEXT;
-- What identifies the row between sightings: its key, or a digest of the
-- raw row when it names none.
ALTER TABLE quarantine ADD COLUMN ident TEXT NOT NULL DEFAULT '';
-- open | resolved | dropped
ALTER TABLE quarantine ADD COLUMN state TEXT NOT NULL DEFAULT 'open';
-- Whether it holds its incremental stream's high-water mark back, and from
-- where the stream must be pulled again to bring it (microseconds since the
-- Unix epoch; NULL with holds: from the start).
ALTER TABLE quarantine ADD COLUMN holds BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE quarantine ADD COLUMN hold_from BIGINT;
ALTER TABLE quarantine ADD COLUMN last_run BIGINT;
ALTER TABLE quarantine ADD COLUMN sightings BIGINT NOT NULL DEFAULT 1;
ALTER TABLE quarantine ADD COLUMN kept_version BIGINT;
ALTER TABLE quarantine ADD COLUMN closed_at TIMESTAMPTZ;
-- Rows quarantined before the lifecycle: each its own, holding nothing.
UPDATE quarantine SET ident = 'row:' || id, last_run = run;
CREATE INDEX quarantine_open ON quarantine (stream, state, ident);

ALTER TABLE stream_state ADD COLUMN held_deletions BIGINT;
ALTER TABLE stream_state ADD COLUMN held_since TIMESTAMPTZ;
