-- Each pull asks whether some link's grant ends soon (`link_expiring`):
-- an index over the links that have a grant end, so the question is a
-- range probe instead of a scan of every link.
CREATE INDEX links_grant_ends ON links (grant_expires_at) WHERE grant_expires_at IS NOT NULL;
