-- An `unreadable_record` exception names one record of a readable document
-- that could not be read. It has no item; its excerpt is re-derived from the
-- stored document by this position in the parse's list of unreadable
-- records (the raw document is the record: no source text is copied).
ALTER TABLE exceptions ADD COLUMN unreadable_record INTEGER;
