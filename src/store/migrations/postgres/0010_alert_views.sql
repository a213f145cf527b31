-- Every view of a confidential alert (DESIGN.md § The console): who opened
-- it (the agency and the name of its personal token), through what (the
-- console or the API), and when. Listed for discipline alone.
CREATE TABLE alert_views (
    id BIGSERIAL PRIMARY KEY,
    alert_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    agency TEXT NOT NULL,
    token TEXT NOT NULL,
    channel TEXT NOT NULL,
    viewed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX alert_views_by_time ON alert_views (viewed_at);

-- One agency's outbox, newest first (the console's and the API's listing).
CREATE INDEX outbox_by_agency ON outbox (agency, id);
