-- The document section an item's records were listed in, when the format
-- has sections (C-CDA: Medications, Medications Administered, Discharge
-- Medications, Admission Medications), so a reviewer sees that a drug was
-- given during a stay or listed at discharge rather than taken at home.
ALTER TABLE items ADD COLUMN section TEXT;
