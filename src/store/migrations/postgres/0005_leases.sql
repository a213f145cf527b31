-- Leases: one replica at a time holds a named piece of work (an adapter's
-- run); a holder that dies loses it when it expires.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
