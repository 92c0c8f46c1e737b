-- Many workers on one database (issue 13): what every worker must see.
--
-- `links.lease_taken_from`: when a batch claim (`Store::claim_due_batch`)
-- takes over an expired lease, the holder it took it from, until the
-- sync's own claim reads it (and counts the takeover).
ALTER TABLE links ADD COLUMN lease_taken_from TEXT;

-- A provider's `max_in_flight` across all workers: one row per sync in
-- flight at the provider, taken before the first request and given back
-- when the sync ends (`Store::take_provider_slot`). A slot whose holder
-- stopped renewing it (the link's heartbeat renews both) is free again at
-- `until`.
CREATE TABLE provider_slots (
    provider  TEXT NOT NULL,
    slot      INTEGER NOT NULL,
    holder    TEXT,
    link_id   INTEGER,
    until     TEXT,
    PRIMARY KEY (provider, slot)
);

-- A provider's circuit breaker across all workers: failed syncs in a row
-- (any worker's) and, once they reach `[sync] breaker_failures`, the time
-- the pause ends. Every worker skips a paused provider's links.
CREATE TABLE provider_breakers (
    provider      TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL DEFAULT 0,
    paused_until  TEXT
);
