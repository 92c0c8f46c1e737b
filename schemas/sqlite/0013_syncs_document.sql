-- The syncs that stored a document, found by the document: a FHIR export
-- names how a regimen's document arrived (a file import or a pull) from its
-- first sync, and without this index that lookup scans every sync row.
CREATE INDEX syncs_document ON syncs (document_id);
