-- Leases renewed by a heartbeat (`[sync] lease`, `[sync] heartbeat`): a
-- sync's worker renews its link's lease while the sync runs, so a long
-- sync keeps its link and a worker that stopped (killed, frozen, cut off)
-- loses it at `lease_until`, when another worker takes it over.
--
-- `lease_renewed_at`: when the holder last claimed or renewed the lease
-- (RFC 3339). Meaningful only while `lease_holder` is set; it tells an
-- operator how long ago a holder stopped renewing.
ALTER TABLE links ADD COLUMN lease_renewed_at TEXT;

-- The heartbeat renews, and shutdown and daemon start give back, the
-- leases of one holder: an index over the few leased links.
CREATE INDEX links_leased ON links (lease_holder) WHERE lease_holder IS NOT NULL;
