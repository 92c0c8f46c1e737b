-- Claims as medication evidence (issue 11): what an item knows of its fills.
-- Append only: a new migration changes this, never an edit.
ALTER TABLE items ADD COLUMN evidence TEXT NOT NULL DEFAULT 'record'; -- 'record' | 'claim' (only pharmacy claim lines)
ALTER TABLE items ADD COLUMN days_supply TEXT;                        -- of the latest fill, as the document wrote it
ALTER TABLE items ADD COLUMN quantity TEXT;                           -- of the latest fill
ALTER TABLE items ADD COLUMN dispenser TEXT;                          -- the pharmacy of the latest fill
