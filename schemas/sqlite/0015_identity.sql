-- The wrong-patient guard (issue 10): who the patient is at the provider,
-- as last read, and the identity a clinician accepted for a held link.
-- Migration 0014 also lets `links.state` be 'held' (identity not confirmed:
-- nothing is written from the link). SQLite cannot alter a CHECK
-- constraint; the store widens it in the same transaction by editing the
-- table's definition (store::mod.rs, `allow_held_links`), which leaves
-- every column, index and foreign key of the table as it is.

-- JSON: {"subject", "identifiers": {where: value}, "name", "family_name",
-- "birth_date"} as read at the provider; never a token.
ALTER TABLE links ADD COLUMN remote_identity TEXT;
-- When it was read (RFC 3339).
ALTER TABLE links ADD COLUMN identity_read_at TEXT;
-- The remote identity (same JSON, without when) that a clinician confirmed
-- for this link: the same identity read again does not hold the link again.
ALTER TABLE links ADD COLUMN identity_accepted TEXT;
