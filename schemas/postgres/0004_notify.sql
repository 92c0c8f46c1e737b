-- PostgreSQL only (SQLite has no LISTEN/NOTIFY; its daemon sleeps until the
-- next due time): wake the workers when a link becomes due now — a new
-- link, a re-link, a link whose schedule was moved to now (`import
-- --patient`, `link sync`) — so a worker asleep until its next due time
-- syncs it at once. The channel carries the link's id; a sync's own
-- update (its next due time moves into the future) sends nothing.
CREATE FUNCTION rxsync_link_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'active' AND (NEW.next_due_at IS NULL OR NEW.next_due_at <= now())
       AND (NEW.lease_until IS NULL OR NEW.lease_until <= now()) THEN
        PERFORM pg_notify('rxsync_links_due', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER links_due_insert AFTER INSERT ON links
    FOR EACH ROW EXECUTE FUNCTION rxsync_link_due();
CREATE TRIGGER links_due_update AFTER UPDATE OF state, next_due_at, lease_until ON links
    FOR EACH ROW EXECUTE FUNCTION rxsync_link_due();
