-- Witnessed history (issue 15).
--
-- Batch roots become RFC 9162 Merkle tree hashes over their entries, so
-- that an agency can be proved that one record version is in the history.
-- The chain's roots and links of a store made under migrations 0008 to
-- 0010 are re-hashed once, at the first `migrate` after this migration and
-- before any checkpoint exists (each batch checked against its old root
-- first, so an altered history is refused, not laundered).
--
-- `checkpoints` keeps every checkpoint the deployment signed: one number
-- per checkpoint, one sequence for every replica, and one signed text per
-- audience (`all`, sent to discipline; `shared`, without discipline's
-- streams, sent to the other agencies). `body` is the checkpoint as served
-- and delivered (JSON), `issued_at` microseconds since the Unix epoch.
CREATE TABLE checkpoints (
    id BIGINT NOT NULL,
    audience TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (id, audience)
);

INSERT INTO store_upgrades (name) VALUES ('merkle-0011');
