-- Consent flows: one row per authorization request rxsync started (OAuth 2.0
-- authorization code + PKCE). The `state` is stored only as its SHA-256;
-- the PKCE verifier and the OpenID nonce are sealed with the vault key
-- (associated data: the flow id and the field). A flow is used once:
-- `used_at` is set by the first callback that names it, whatever follows.
CREATE TABLE consent_flows (
    id             TEXT PRIMARY KEY,                 -- random, not a secret
    provider       TEXT NOT NULL,                    -- a [[providers]] id
    patient_id     TEXT NOT NULL REFERENCES patients(id),
    state_sha256   TEXT NOT NULL UNIQUE,             -- hex SHA-256 of the state sent
    key_id         TEXT NOT NULL,                    -- the vault key that sealed the fields
    pkce_verifier  BLOB NOT NULL,                    -- sealed
    nonce          BLOB,                             -- sealed; when openid is in scope
    redirect_uri   TEXT NOT NULL,                    -- sent in the request, repeated at the exchange
    relink_of      INTEGER REFERENCES links(id),     -- a needs_relink link this consent renews
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    used_at        TEXT,                             -- the callback that took it
    outcome        TEXT,                             -- linked | denied | failed | expired | abandoned
    link_id        INTEGER REFERENCES links(id)      -- the link made
);
CREATE INDEX consent_flows_expires ON consent_flows (expires_at) WHERE used_at IS NULL;
