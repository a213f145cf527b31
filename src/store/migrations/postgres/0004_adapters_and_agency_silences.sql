-- Runs are reported per adapter (two adapters may serve one agency).
ALTER TABLE sync_runs ADD COLUMN adapter TEXT;
CREATE INDEX sync_runs_by_adapter ON sync_runs (adapter, id);

-- A silence an agency sets for itself mutes only its own deliveries; one
-- without an agency (an operator's) mutes every recipient.
ALTER TABLE silences ADD COLUMN agency TEXT;
