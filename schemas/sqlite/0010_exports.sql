-- FHIR Bulk Data exports (issue 12): one row per `$export` run, one per file
-- of its manifest. Append only: a new migration changes this, never an edit.
CREATE TABLE exports (
    id                INTEGER PRIMARY KEY,
    provider          TEXT NOT NULL,
    level             TEXT NOT NULL,               -- 'system' | 'group' | 'patient'
    group_id          TEXT,                        -- level = 'group'
    kickoff_url       TEXT NOT NULL,               -- as sent, without secrets
    since             TEXT,                        -- the _since sent, if any
    status_url        TEXT,                        -- Content-Location of the 202; NULL until kicked off
    requested_at      TEXT NOT NULL,
    transaction_time  TEXT,                        -- from the manifest
    requires_token    INTEGER,                     -- manifest requiresAccessToken (0/1)
    manifest          TEXT,                        -- the manifest as rxsync read it (JSON)
    state             TEXT NOT NULL,               -- 'starting' | 'in_progress' | 'downloading' | 'completed' | 'failed' | 'cancelled'
    progress          TEXT,                        -- the last X-Progress
    error             TEXT,                        -- why the last run stopped
    deleted_at        TEXT,                        -- when the status URL was DELETEd
    completed_at      TEXT
);
CREATE INDEX exports_provider ON exports (provider, id);
-- One export at a time per provider: a second unfinished one is refused.
CREATE UNIQUE INDEX exports_one_open ON exports (provider)
    WHERE state IN ('starting', 'in_progress', 'downloading');

CREATE TABLE export_files (
    export_id     INTEGER NOT NULL REFERENCES exports (id),
    n             INTEGER NOT NULL,                -- position: outputs first, then errors
    kind          TEXT NOT NULL,                   -- 'output' | 'error'
    type          TEXT NOT NULL,                   -- the manifest's resource type
    url           TEXT NOT NULL,
    path          TEXT NOT NULL,                   -- where it is (to be) downloaded
    bytes         INTEGER,
    downloaded_at TEXT,
    imported_at   TEXT,                            -- the sink imported it: never again
    import_note   TEXT,                            -- what the sink said
    error         TEXT,                            -- download/import failure, or an error file's issues
    PRIMARY KEY (export_id, n)
);
