-- rxsync core schema. Migrations are append-only: never edit one that has
-- landed; add the next numbered file instead. Times are RFC 3339 UTC text.

CREATE TABLE patients (
    id          TEXT PRIMARY KEY,               -- local patient id (PatientId)
    mrn         TEXT,
    name        TEXT,
    birth_date  TEXT,                            -- YYYY-MM-DD
    created_at  TEXT NOT NULL
);

-- Every document rxsync accepted, byte for byte, so every regimen can be re-derived.
CREATE TABLE documents (
    id          INTEGER PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    source      TEXT NOT NULL,                   -- provider id or import source name
    format      TEXT NOT NULL,                   -- ccr | fhir-json | fhir-xml | unknown
    media_type  TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    bytes       BLOB NOT NULL,
    origin      TEXT,                            -- file path or URL (never with secrets)
    received_at TEXT NOT NULL,
    UNIQUE (patient_id, source, sha256)
);

-- One attempt to import a file or pull a link, with its outcome.
CREATE TABLE syncs (
    id          INTEGER PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    source      TEXT NOT NULL,
    trigger     TEXT NOT NULL,                   -- file | pull | schedule
    started_at  TEXT NOT NULL,
    ended_at    TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('imported', 'unchanged', 'failed')),
    document_id INTEGER REFERENCES documents(id),
    regimen_id  INTEGER,
    error       TEXT,
    http_trail  TEXT                             -- JSON array of hops (pulls)
);

-- A versioned, normalized medication list of one patient from one source.
CREATE TABLE regimens (
    id          INTEGER PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    source      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    document_id INTEGER NOT NULL REFERENCES documents(id),
    status      TEXT NOT NULL CHECK (status IN ('needs_review', 'reviewed')),
    created_at  TEXT NOT NULL,
    reviewed_at TEXT,
    UNIQUE (patient_id, source, version)
);
CREATE INDEX regimens_document ON regimens (document_id);

CREATE TABLE items (
    id              INTEGER PRIMARY KEY,
    regimen_id      INTEGER NOT NULL REFERENCES regimens(id),
    position        INTEGER NOT NULL,
    ndc11           TEXT,                        -- 11 digits, when known
    ndc_original    TEXT,                        -- the NDC as the document wrote it
    ndc_inferred    INTEGER NOT NULL DEFAULT 0,  -- 1: a bare 10-digit code placed by the dictionary
    mapping         TEXT,                        -- JSON provenance when a clinician's mapping applied
    name            TEXT,
    brand           TEXT,
    codes           TEXT NOT NULL,               -- JSON [{system, code, system_original, display}]
    ingredient_codes TEXT NOT NULL,              -- JSON, the same shape: codes of a compound's ingredients
    strength        TEXT,
    form            TEXT,
    route           TEXT,
    dose            TEXT,
    frequency       TEXT,
    sig             TEXT,
    status          TEXT NOT NULL,               -- normalized
    status_original TEXT,
    start_date      TEXT,
    stop_date       TEXT,
    prescribed_date TEXT,
    prescriber      TEXT,
    sources         TEXT NOT NULL,               -- JSON [{kind, id}] of folded source records
    records         TEXT NOT NULL,               -- JSON [n]: their positions in the parse of the document
                                                 -- (re-parsing the stored document gives the excerpt back)
    removed_at      TEXT,                        -- set when a clinician removes the item
    removed_by      TEXT,
    UNIQUE (regimen_id, position)
);
CREATE INDEX items_ndc11 ON items (ndc11);

CREATE TABLE exceptions (
    id              INTEGER PRIMARY KEY,
    patient_id      TEXT NOT NULL REFERENCES patients(id),
    regimen_id      INTEGER REFERENCES regimens(id),
    item_id         INTEGER REFERENCES items(id),
    related_item_id INTEGER REFERENCES items(id),
    sync_id         INTEGER REFERENCES syncs(id),
    document_id     INTEGER REFERENCES documents(id),
    source          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL CHECK (severity IN ('error', 'warning', 'info')),
    state           TEXT NOT NULL CHECK (state IN ('open', 'resolved', 'dismissed')),
    detail          TEXT NOT NULL,
    resolution      TEXT,                        -- map | remove | keep | accept
    resolution_ndc  TEXT,
    resolved_by     TEXT,
    resolved_at     TEXT,
    note            TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX exceptions_state_kind ON exceptions (state, kind);
CREATE INDEX exceptions_regimen ON exceptions (regimen_id);
CREATE INDEX exceptions_item ON exceptions (item_id);
CREATE INDEX exceptions_related_item ON exceptions (related_item_id);
CREATE INDEX exceptions_document ON exceptions (document_id);

-- A clinician's decision for a provider's code, applied to later imports.
CREATE TABLE code_mappings (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    system       TEXT NOT NULL,
    code         TEXT NOT NULL,
    ndc11        TEXT NOT NULL,
    decided_by   TEXT NOT NULL,
    decided_at   TEXT NOT NULL,
    exception_id INTEGER REFERENCES exceptions(id),
    note         TEXT,
    UNIQUE (source, system, code)
);

-- Append-only: every provider access and every clinician action.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    patient_id TEXT,
    subject    TEXT,
    detail     TEXT                              -- JSON
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

-- The drug dictionary (FDA NDC directory), replaced whole by `dict import`.
CREATE TABLE dict_products (
    product_id          TEXT PRIMARY KEY,
    product_ndc         TEXT NOT NULL,
    product_type        TEXT NOT NULL,
    proprietary_name    TEXT NOT NULL,
    nonproprietary_name TEXT NOT NULL,
    dosage_form         TEXT NOT NULL,
    route               TEXT NOT NULL,
    labeler             TEXT NOT NULL,
    ingredients         TEXT NOT NULL,           -- JSON [{name, strength, unit}]
    excluded            INTEGER NOT NULL         -- NDC_EXCLUDE_FLAG = E
);
CREATE TABLE dict_packages (
    ndc11       TEXT PRIMARY KEY,
    package_ndc TEXT NOT NULL,
    product_id  TEXT NOT NULL REFERENCES dict_products(product_id),
    description TEXT NOT NULL
);
CREATE TABLE dict_meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    loaded_from TEXT NOT NULL,
    loaded_at   TEXT NOT NULL,
    products    INTEGER NOT NULL,
    packages    INTEGER NOT NULL
);
