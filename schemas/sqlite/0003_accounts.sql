-- Accounts of the review web application (users, sessions, API tokens,
-- login attempts), and the record that lets a clinician's decision be
-- reversed until its regimen is reviewed. Append-only: add 0004 for later
-- changes. No secret is stored: passwords as argon2id PHC strings, session
-- ids and API tokens as SHA-256 hashes of what the client holds.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('clinician', 'admin')),
    password_hash TEXT NOT NULL,                 -- argon2id, PHC string format
    created_at    TEXT NOT NULL,
    disabled_at   TEXT                           -- set by `user disable`: no login, sessions and tokens stop working
);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,                 -- hex SHA-256 of the cookie value
    user_id    INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ended_at   TEXT                              -- logout
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    token_hash TEXT NOT NULL UNIQUE,             -- hex SHA-256 of the token
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- Recent login attempts, for rate limiting (pruned after a day; the audit
-- log keeps the record).
CREATE TABLE login_attempts (
    id     INTEGER PRIMARY KEY,
    at     TEXT NOT NULL,
    name   TEXT NOT NULL,
    remote TEXT,                                 -- the client's IP address, when known
    ok     INTEGER NOT NULL
);
CREATE INDEX login_attempts_name ON login_attempts (name, at);
CREATE INDEX login_attempts_remote ON login_attempts (remote, at);

-- Every clinician decision on an exception, with what reversing it restores.
CREATE TABLE decisions (
    id            INTEGER PRIMARY KEY,
    exception_id  INTEGER NOT NULL REFERENCES exceptions(id),
    action        TEXT NOT NULL,                 -- map | remove | keep | accept | dismiss
    decided_by    TEXT NOT NULL,
    decided_at    TEXT NOT NULL,
    undo          TEXT NOT NULL,                 -- JSON: the item, mappings and exceptions to restore
    reversed_by   TEXT,
    reversed_at   TEXT,
    reversal_note TEXT
);
CREATE INDEX decisions_exception ON decisions (exception_id);

-- The Patient page reads a patient's audit trail.
CREATE INDEX audit_patient ON audit (patient_id, id);
