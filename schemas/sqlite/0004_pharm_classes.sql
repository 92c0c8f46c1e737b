-- Each product's Established Pharmacologic Classes: the [EPC] entries of
-- the FDA's PHARM_CLASSES column, as a JSON array of strings in file order
-- (["HMG-CoA Reductase Inhibitor [EPC]"]). A dictionary loaded before this
-- migration reads as having no classes until it is imported again.
-- Append-only: add 0005 for later changes.
ALTER TABLE dict_products ADD COLUMN epc TEXT NOT NULL DEFAULT '[]';
