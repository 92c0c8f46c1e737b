-- Twin of SQLite 0021_workers: many workers on one database.
ALTER TABLE links ADD COLUMN lease_taken_from text;

CREATE TABLE provider_slots (
    provider  text NOT NULL,
    slot      integer NOT NULL,
    holder    text,
    link_id   bigint,
    until     timestamptz,
    PRIMARY KEY (provider, slot)
);

CREATE TABLE provider_breakers (
    provider      text PRIMARY KEY,
    failures      bigint NOT NULL DEFAULT 0,
    paused_until  timestamptz
);
