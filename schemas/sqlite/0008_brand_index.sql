-- Brands: which substances a proprietary name stands for, so that a
-- document giving a brand alone ("Zestril 10 mg tablet") over another
-- labeler's generic NDC is not flagged ndc_name_mismatch. brand_key is the
-- proprietary name normalized by dict::brand_key (lower case, punctuation
-- folded to single spaces), NULL when the name is no brand (its first word
-- names one of its own substances, or it has none). The importer asks for
-- a word's brands as the index range [word, word || '!'): the key itself
-- and every key that starts with it and a space. The store fills the
-- column of a dictionary loaded before this migration right after it runs
-- (store::dictionary::fill_brand_keys), and on every load since.
-- Append-only: add a later file for later changes.
ALTER TABLE dict_products ADD COLUMN brand_key TEXT;
CREATE INDEX dict_products_brand_key ON dict_products (brand_key);
