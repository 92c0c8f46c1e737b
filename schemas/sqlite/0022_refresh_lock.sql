-- One refresh per link across all workers (issue 13): a sync takes its
-- link's refresh lock before it sends the refresh token and gives it back
-- in the transaction that commits the rotated pair (or when the refresh
-- failed). A lock whose holder stopped (killed mid-refresh) is free again
-- at `refresh_until`. The holder is the worker (`lease_holder`'s form).
ALTER TABLE links ADD COLUMN refresh_holder TEXT;
ALTER TABLE links ADD COLUMN refresh_until TEXT;
