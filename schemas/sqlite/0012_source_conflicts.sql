-- Cross-source conflicts (issue 14): a `source_conflict` exception names
-- the pair of facts it is about (the aspect and, for each of the two
-- sources, its drug and what it says), so a clinician's decision on it is
-- remembered across pulls, and an open one is closed when the sources
-- come to agree. NULL for every other kind. Append only.
ALTER TABLE exceptions ADD COLUMN conflict_key TEXT;
CREATE INDEX exceptions_conflict ON exceptions (patient_id, conflict_key) WHERE conflict_key IS NOT NULL;
