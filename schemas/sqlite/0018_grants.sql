-- Grants over time: when the patient's grant at the provider ends, when
-- the provider says so (`access_grant_expiration`, a JWT refresh token's
-- `exp`), and the grant end a `link_expiring` exception was raised for, so
-- it is raised once per grant, not at every pull. Both RFC 3339.
ALTER TABLE links ADD COLUMN grant_expires_at TEXT;
ALTER TABLE links ADD COLUMN grant_warned_for TEXT;
