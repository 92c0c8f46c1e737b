-- Twin of SQLite 0022_refresh_lock: one refresh per link across all workers.
ALTER TABLE links ADD COLUMN refresh_holder text;
ALTER TABLE links ADD COLUMN refresh_until timestamptz;
