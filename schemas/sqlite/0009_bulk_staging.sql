-- FHIR Bulk Data ($export NDJSON) staging: each line of an export, filed
-- under its patient, while `rxsync import --bulk` groups the lines by
-- patient. Rows of a run are deleted when the run ends; nothing here is
-- the record (each patient's assembled Bundle is stored as a document).
-- Append-only: add a later migration for changes.

CREATE TABLE bulk_staging (
    run          TEXT NOT NULL,              -- one `import --bulk` invocation
    patient_ref  TEXT NOT NULL,              -- the patient's id at the provider; '' for Medications (shared)
    file         INTEGER NOT NULL,           -- the file's place in the run's sorted file list
    line         INTEGER NOT NULL,           -- 1-based line number in that file
    kind         TEXT,                       -- resourceType; NULL for a line without one
    resource_id  TEXT,
    medication   TEXT,                       -- the Medication id a record's medicationReference names
    body         TEXT NOT NULL,              -- the line, as written
    PRIMARY KEY (run, patient_ref, file, line)
);
CREATE INDEX bulk_staging_drugs ON bulk_staging (run, resource_id) WHERE patient_ref = '';

-- A bulk run asks, per remote patient, for the link at the provider and
-- (with `[providers.bulk] match = "mrn"`) for the local patient of an MRN.
CREATE INDEX links_remote ON links (provider, remote_patient);
CREATE INDEX patients_mrn ON patients (mrn);
