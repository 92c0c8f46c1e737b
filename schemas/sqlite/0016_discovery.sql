-- Discovery and dynamic client registration (issue 10).
--
-- provider_discovery: what a provider's discovery documents said (the
-- parsed `discovery::Discovered` as JSON: public endpoints, no secret), read
-- for a provider with `discover = true` when first needed and used until
-- expires_at (the answer's Cache-Control max-age, else 24 hours). A
-- changed base_url makes the row stale.
CREATE TABLE provider_discovery (
    provider      TEXT PRIMARY KEY,          -- a [[providers]] id
    base_url      TEXT NOT NULL,             -- the base the documents were read under
    document_url  TEXT NOT NULL,             -- the document the endpoints came from
    discovered    TEXT NOT NULL,             -- discovery::Discovered as JSON
    fetched_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);

-- client_registrations: the client rxsync registered itself at a provider
-- (RFC 7591). Every field the server issued is sealed by the vault (AEAD
-- bound to the provider and the field; the key is never in this file).
-- One current registration per provider; a new one replaces it.
CREATE TABLE client_registrations (
    provider                  TEXT PRIMARY KEY,   -- a [[providers]] id
    registration_url          TEXT NOT NULL,      -- the endpoint that issued it
    key_id                    TEXT NOT NULL,      -- fingerprint of the vault key that sealed the fields
    client_id                 BLOB NOT NULL,      -- sealed
    client_secret             BLOB,               -- sealed (none for a public or private_key_jwt client)
    registration_access_token BLOB,               -- sealed (RFC 7592), when issued
    registration_client_uri   BLOB,               -- sealed (RFC 7592), when issued
    auth_method               TEXT NOT NULL,      -- token_endpoint_auth_method as registered
    client_secret_expires_at  TEXT,               -- RFC 3339; NULL: never (0) or not said
    created_at                TEXT NOT NULL
);
