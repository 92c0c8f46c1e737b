-- Invitations: a single-use URL a patient opens (without an rxsync account)
-- to link an account at a provider by consent. The token is stored only as
-- its SHA-256: the URL cannot be rebuilt from the database. An invitation
-- works once: opening it sets `opened_at` and the consent flow it started,
-- and the callback of that flow records how it ended.
CREATE TABLE invitations (
    id            TEXT PRIMARY KEY,                 -- random, not a secret
    token_sha256  TEXT NOT NULL UNIQUE,             -- hex SHA-256 of the URL's token
    patient_id    TEXT NOT NULL REFERENCES patients(id),
    provider      TEXT NOT NULL,                    -- a [[providers]] id
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    opened_at     TEXT,                             -- the one time it was opened
    flow_id       TEXT REFERENCES consent_flows(id),-- the consent it started
    outcome       TEXT,                             -- linked | denied | failed (from its flow)
    link_id       INTEGER REFERENCES links(id)
);
CREATE INDEX invitations_flow ON invitations (flow_id);
