-- Twin of SQLite 0020_leases: leases renewed by a heartbeat (`[sync]
-- lease`, `[sync] heartbeat`).
--
-- `lease_renewed_at`: when the holder last claimed or renewed the lease.
-- Meaningful only while `lease_holder` is set.
ALTER TABLE links ADD COLUMN lease_renewed_at timestamptz;

-- The heartbeat renews, and shutdown and daemon start give back, the
-- leases of one holder: an index over the few leased links.
CREATE INDEX links_leased ON links (lease_holder) WHERE lease_holder IS NOT NULL;
