-- 12-digit NDCs (FDA final rule, Federal Register 2026-03-05): an item whose
-- document NDC has a new 6-digit labeler has no NDC-11, so it keeps that
-- NDC's 12 digits here, and reads join the dictionary on
-- COALESCE(ndc11, ndc12) (a package of a new labeler is stored in
-- dict_packages.ndc11 under its 12 digits). A clinician's mapping sets
-- ndc11, which then wins. Append-only: add a later file for later changes.
ALTER TABLE items ADD COLUMN ndc12 TEXT;
