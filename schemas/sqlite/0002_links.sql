-- Links between local patients and their accounts at service providers,
-- with their tokens sealed by the vault (AEAD, the link id and the field
-- name as associated data; the key is never in this file). Append-only:
-- add 0003 for later changes.

CREATE TABLE links (
    id             INTEGER PRIMARY KEY,
    patient_id     TEXT NOT NULL REFERENCES patients(id),
    provider       TEXT NOT NULL,                -- a [[providers]] id
    scheme         TEXT NOT NULL CHECK (scheme IN ('oauth1', 'oauth2')),
    remote_patient TEXT NOT NULL,                -- the patient's id at the provider
    state          TEXT NOT NULL CHECK (state IN ('active', 'needs_relink', 'revoked')),
    state_reason   TEXT,                         -- why needs_relink / revoked (never a secret)
    key_id         TEXT NOT NULL,                -- fingerprint of the vault key that sealed the fields
    token          BLOB,                         -- sealed: OAuth 1.0a token, or OAuth 2.0 access token
    token_secret   BLOB,                         -- sealed: OAuth 1.0a token secret
    refresh_token  BLOB,                         -- sealed: OAuth 2.0 refresh token
    expires_at     TEXT,                         -- OAuth 2.0 access token expiry (RFC 3339), when known
    scope          TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    last_sync_at   TEXT,
    last_outcome   TEXT,                         -- imported | unchanged | failed | needs_relink | retry_later
    last_error     TEXT,
    failures       INTEGER NOT NULL DEFAULT 0,   -- consecutive failed syncs
    next_due_at    TEXT,                         -- the scheduler's next run (NULL: due now)
    lease_holder   TEXT,                         -- who syncs the link now (one sync per link, across processes)
    lease_until    TEXT
);
-- One live link per patient and provider; revoked links stay for the record.
CREATE UNIQUE INDEX links_live ON links (patient_id, provider) WHERE state <> 'revoked';
CREATE INDEX links_due ON links (state, next_due_at);

-- Permanent redirects (301/308 within the provider's origin), remembered per
-- link so the next sync goes straight to the new URL.
CREATE TABLE link_moves (
    link_id   INTEGER NOT NULL REFERENCES links(id),
    from_url  TEXT NOT NULL,
    to_url    TEXT NOT NULL,
    status    INTEGER NOT NULL,
    at        TEXT NOT NULL,
    PRIMARY KEY (link_id, from_url)
);

ALTER TABLE syncs ADD COLUMN link_id INTEGER REFERENCES links(id);
CREATE INDEX syncs_link ON syncs (link_id);
CREATE INDEX exceptions_sync ON exceptions (sync_id);
