//! The drug dictionary tables: replaced whole by an import, read by NDC.
//!
//! `dict_products.brand_key` holds a brand's normalized proprietary name
//! (`Product::brand_key`), indexed, so that an import can ask which
//! substances the brands its texts name stand for (`dict_brands_of`).
//!
//! `dict_packages.ndc11` holds a package's 11-digit NDC, the key items and
//! mappings join on; a new 6-digit labeler's package, which has no 11-digit
//! form, is kept under its 12 digits in the same column (no 11-digit key can
//! be 12 characters long, so the two never collide). `key_text` is the one
//! place that rule lives.

use super::db::{Conn, Row};
use super::{Store, StoreError, now};
use crate::dict::{DictEntry, Ingredient, Package, Product};
use crate::domain::{Ndc11, Ndc12};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// What the dictionary holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DictStats {
    pub products: usize,
    pub packages: usize,
    pub excluded_products: usize,
    pub loaded_from: Option<String>,
    pub loaded_at: Option<String>,
}

#[derive(Serialize, serde::Deserialize)]
struct IngredientJson {
    name: String,
    strength: String,
    unit: String,
}

impl Store {
    /// Replaces the whole dictionary in one transaction; on any error the
    /// previous dictionary stays.
    pub fn replace_dictionary(
        &mut self,
        products: &[Product],
        packages: &[Package],
        loaded_from: &str,
        actor: &str,
    ) -> Result<DictStats, StoreError> {
        let tx = self.tx()?;
        // On PostgreSQL each deleted product checks the packages' foreign
        // key by a scan of dict_packages (no index on product_id): a whole
        // directory took minutes. TRUNCATE (transactional there) does not;
        // it holds lookups of the dictionary until the import commits.
        tx.execute_batch(tx.dialect(
            "DELETE FROM dict_packages; DELETE FROM dict_products; DELETE FROM dict_meta;",
            "TRUNCATE dict_packages, dict_products, dict_meta",
        ))?;
        if tx.engine() == super::db::Engine::Postgres {
            // One round trip per row is most of an import's time on
            // PostgreSQL (a whole FDA directory: 370,000 rows): there the
            // rows go in chunks of multi-row INSERTs.
            insert_products_in_chunks(&tx, products)?;
            insert_packages_in_chunks(&tx, packages)?;
        } else {
            let mut ins = tx.prepare(
                "INSERT INTO dict_products (product_id, product_ndc, product_type, proprietary_name,
                 nonproprietary_name, dosage_form, route, labeler, ingredients, excluded, epc, brand_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (product_id) DO UPDATE SET product_ndc = excluded.product_ndc,
                   product_type = excluded.product_type, proprietary_name = excluded.proprietary_name,
                   nonproprietary_name = excluded.nonproprietary_name, dosage_form = excluded.dosage_form,
                   route = excluded.route, labeler = excluded.labeler, ingredients = excluded.ingredients,
                   excluded = excluded.excluded, epc = excluded.epc, brand_key = excluded.brand_key",
            )?;
            for p in products {
                ins.execute(&product_values(p))?;
            }
            // A package whose product is missing from product.txt cannot be
            // described; it is left out (and counted by the caller).
            let mut ins = tx.prepare(
                "INSERT INTO dict_packages (ndc11, package_ndc, product_id, description)
                 SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM dict_products WHERE product_id = ?3)
                 ON CONFLICT (ndc11) DO UPDATE SET package_ndc = excluded.package_ndc,
                   product_id = excluded.product_id, description = excluded.description",
            )?;
            for k in packages {
                ins.execute(&package_values(k))?;
            }
        }
        let (np, nk): (usize, usize) = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM dict_products), (SELECT COUNT(*) FROM dict_packages)",
            (),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            "INSERT INTO dict_meta (id, loaded_from, loaded_at, products, packages) VALUES (1, ?1, ?2, ?3, ?4)",
            params![loaded_from, now(), np, nk],
        )?;
        super::audit::append(
            &tx,
            actor,
            "dictionary.import",
            None,
            Some(loaded_from),
            &serde_json::json!({"products": np, "packages": nk}),
        )?;
        tx.commit()?;
        self.dictionary_stats()
    }

    /// How many products and packages the dictionary holds.
    pub fn dictionary_stats(&self) -> Result<DictStats, StoreError> {
        let (products, packages, excluded_products): (usize, usize, usize) = self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM dict_products), (SELECT COUNT(*) FROM dict_packages),
                    (SELECT COUNT(*) FROM dict_products WHERE excluded)",
            (),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let meta: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT loaded_from, loaded_at FROM dict_meta WHERE id = 1",
                (),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(DictStats {
            products,
            packages,
            excluded_products,
            loaded_from: meta.as_ref().map(|m| m.0.clone()),
            loaded_at: meta.map(|m| m.1),
        })
    }

    /// When the dictionary is the repository's sample: that it is partial
    /// and how to load the whole directory (`dict::sample_note`), for a
    /// lookup or a mapping it cannot answer.
    pub fn dictionary_sample_note(&self) -> Result<Option<String>, StoreError> {
        Store::sample_note_in(&self.conn)
    }

    pub(super) fn sample_note_in(conn: &Conn) -> Result<Option<String>, StoreError> {
        let meta: Option<(String, usize)> = conn
            .query_row(
                "SELECT loaded_from, products FROM dict_meta WHERE id = 1",
                (),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(meta.and_then(|(from, products)| crate::dict::sample_note(Some(&from), products)))
    }

    /// The label of the dictionary's snapshot (`dict::snapshot_label`):
    /// where it was loaded from and when; None before any load. One row,
    /// so an import can ask it each time.
    pub fn dictionary_snapshot(&self) -> Result<Option<String>, StoreError> {
        Store::snapshot_in(&self.conn)
    }

    pub(super) fn snapshot_in(conn: &Conn) -> Result<Option<String>, StoreError> {
        let mut stmt =
            conn.prepare_cached("SELECT loaded_from, loaded_at FROM dict_meta WHERE id = 1")?;
        let meta: Option<(String, String)> = stmt
            .query_row((), |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(meta.map(|(from, at)| crate::dict::snapshot_label(&from, &at)))
    }

    /// The dictionary entry of an NDC, by its 12-digit form (excluded
    /// products included).
    pub fn dict_entry(&self, ndc: &Ndc12) -> Result<Option<DictEntry>, StoreError> {
        Store::entry_in(&self.conn, ndc)
    }

    pub(super) fn entry_in(conn: &Conn, ndc: &Ndc12) -> Result<Option<DictEntry>, StoreError> {
        let mut stmt = conn.prepare_cached(&format!("{SELECT_ENTRY} WHERE k.ndc11 = ?1"))?;
        Ok(stmt.query_row([key_text(ndc)], row_to_entry).optional()?)
    }

    /// The dictionary entries of several NDCs at once (those it has), in
    /// one statement: an import asks for every code of its document, and on
    /// PostgreSQL each statement is a round trip inside the write.
    pub fn dict_entries(&self, ndcs: &[Ndc12]) -> Result<Vec<DictEntry>, StoreError> {
        if ndcs.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ndcs.iter().map(key_text).collect();
        let keys = serde_json::to_string(&keys)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SELECT_ENTRY} WHERE k.ndc11 IN ({})",
            self.conn.dialect(
                "SELECT value FROM json_each(?1)",
                "SELECT jsonb_array_elements_text(?1::jsonb)"
            )
        ))?;
        let rows = stmt.query_map([keys], row_to_entry)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The brands whose key (`dict::brand_key`) is one of `words`' or starts
    /// with it and a space, each with its products' substances, for every
    /// word (or name) at once: one statement, one index range per word
    /// (`dict::brand::upper_bound`). A key several products share comes once
    /// per product, and a brand two words' ranges both hold comes twice;
    /// `MemoryDictionary::insert_brand` unites them.
    pub fn dict_brands_of(
        &self,
        words: &[String],
    ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let ranges: Vec<[String; 2]> = words
            .iter()
            .map(|w| crate::dict::brand_key(w))
            .filter(|k| !k.is_empty())
            .map(|k| {
                let upper = crate::dict::brand::upper_bound(&k);
                [k, upper]
            })
            .collect();
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let ranges = serde_json::to_string(&ranges)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let mut stmt = self
            .conn
            .prepare_cached(self.conn.dialect(BRANDS_OF_SQLITE, BRANDS_OF_PG))?;
        let rows = stmt
            .query_map([ranges], |r| {
                let brand: String = r.get(0)?;
                let ingredients: String = r.get(1)?;
                Ok((brand, ingredients))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(brand, ingredients)| Ok((brand, substances_of(&ingredients)?)))
            .collect()
    }

    /// Entries whose brand or generic name contains `text` (case-insensitive).
    pub fn dict_search(&self, text: &str, limit: usize) -> Result<Vec<DictEntry>, StoreError> {
        let pattern = format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        // SQLite's LIKE ignores case (ASCII); PostgreSQL's ILIKE does.
        let like = self.conn.dialect("LIKE", "ILIKE");
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SELECT_ENTRY} WHERE p.proprietary_name {like} ?1 ESCAPE '\\' OR p.nonproprietary_name {like} ?1 ESCAPE '\\'
             ORDER BY p.excluded, p.proprietary_name, k.ndc11 LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![pattern, limit as i64], row_to_entry)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

/// A product's row, in `dict_products`' column order.
fn product_values(p: &Product) -> Vec<Value> {
    let ingredients: Vec<IngredientJson> = p
        .ingredients
        .iter()
        .map(|i| IngredientJson {
            name: i.name.clone(),
            strength: i.strength.clone(),
            unit: i.unit.clone(),
        })
        .collect();
    let text = |t: &str| Value::Text(t.to_string());
    vec![
        text(&p.product_id),
        text(&p.product_ndc),
        text(&p.product_type),
        text(&p.proprietary_name),
        text(&p.nonproprietary_name),
        text(&p.dosage_form),
        text(&p.route),
        text(&p.labeler),
        Value::Text(serde_json::to_string(&ingredients).unwrap_or_else(|_| "[]".into())),
        Value::Integer(i64::from(p.excluded)),
        Value::Text(serde_json::to_string(&p.epc).unwrap_or_else(|_| "[]".into())),
        p.brand_key().map_or(Value::Null, Value::Text),
    ]
}

/// A package's row: key, package NDC, product, description.
fn package_values(k: &Package) -> Vec<Value> {
    vec![
        Value::Text(key_text(&k.ndc)),
        Value::Text(k.package_ndc.clone()),
        Value::Text(k.product_id.clone()),
        Value::Text(k.description.clone()),
    ]
}

/// Rows per multi-row INSERT (PostgreSQL takes at most 65,535 parameters).
const CHUNK_ROWS: usize = 1000;

/// The rows to insert, the last of each key only: what row-by-row upserts
/// leave, and what one multi-row `ON CONFLICT DO UPDATE` requires (it
/// refuses to touch a row twice).
fn last_per_key(rows: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    let mut last = std::collections::HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        if let Some(Value::Text(key)) = row.first() {
            last.insert(key.clone(), i);
        }
    }
    rows.into_iter()
        .enumerate()
        .filter(|(i, row)| match row.first() {
            Some(Value::Text(key)) => last.get(key) == Some(i),
            _ => true,
        })
        .map(|(_, row)| row)
        .collect()
}

/// `(?, ?, …), (?, ?, …)`: `rows` groups of `columns` placeholders.
fn value_groups(rows: usize, columns: usize) -> String {
    let group = format!("({})", vec!["?"; columns].join(", "));
    vec![group; rows].join(", ")
}

/// The products, in chunks of multi-row upserts (PostgreSQL).
fn insert_products_in_chunks(conn: &Conn, products: &[Product]) -> Result<(), StoreError> {
    let rows = last_per_key(products.iter().map(product_values).collect());
    for chunk in rows.chunks(CHUNK_ROWS) {
        let sql = format!(
            "INSERT INTO dict_products (product_id, product_ndc, product_type, proprietary_name,
             nonproprietary_name, dosage_form, route, labeler, ingredients, excluded, epc, brand_key)
             VALUES {}
             ON CONFLICT (product_id) DO UPDATE SET product_ndc = excluded.product_ndc,
               product_type = excluded.product_type, proprietary_name = excluded.proprietary_name,
               nonproprietary_name = excluded.nonproprietary_name, dosage_form = excluded.dosage_form,
               route = excluded.route, labeler = excluded.labeler, ingredients = excluded.ingredients,
               excluded = excluded.excluded, epc = excluded.epc, brand_key = excluded.brand_key",
            value_groups(chunk.len(), 12)
        );
        conn.execute(&sql, &chunk.concat())?;
    }
    Ok(())
}

/// The packages whose product is known, in chunks of multi-row upserts
/// (PostgreSQL).
fn insert_packages_in_chunks(conn: &Conn, packages: &[Package]) -> Result<(), StoreError> {
    let rows = last_per_key(packages.iter().map(package_values).collect());
    for chunk in rows.chunks(CHUNK_ROWS) {
        let sql = format!(
            "INSERT INTO dict_packages (ndc11, package_ndc, product_id, description)
             SELECT v.ndc11, v.package_ndc, v.product_id, v.description
             FROM (VALUES {}) AS v (ndc11, package_ndc, product_id, description)
             WHERE EXISTS (SELECT 1 FROM dict_products p WHERE p.product_id = v.product_id)
             ON CONFLICT (ndc11) DO UPDATE SET package_ndc = excluded.package_ndc,
               product_id = excluded.product_id, description = excluded.description",
            value_groups(chunk.len(), 4)
        );
        conn.execute(&sql, &chunk.concat())?;
    }
    Ok(())
}

/// Fills `brand_key` for a dictionary loaded before migration
/// `0008_brand_index`, inside that migration's transaction.
pub(super) fn fill_brand_keys(conn: &Conn) -> Result<(), StoreError> {
    let mut read =
        conn.prepare("SELECT product_id, proprietary_name, ingredients FROM dict_products")?;
    let rows = read
        .query_map((), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut write =
        conn.prepare("UPDATE dict_products SET brand_key = ?2 WHERE product_id = ?1")?;
    for (id, proprietary, ingredients) in rows {
        // An unreadable ingredient list was never written by this store;
        // such a product is simply no brand.
        let ingredients: Vec<IngredientJson> =
            serde_json::from_str(&ingredients).unwrap_or_default();
        let substances: Vec<&str> = ingredients.iter().map(|i| i.name.as_str()).collect();
        if let Some(key) = crate::dict::brand::brand_of(&proprietary, &substances) {
            write.execute(params![id, key])?;
        }
    }
    Ok(())
}

/// `dict_brands_of`' statement: one `dict_products_brand_key` range per
/// word, the words a JSON array of `[from, to)` pairs.
const BRANDS_OF_SQLITE: &str = "SELECT p.brand_key, p.ingredients FROM json_each(?1) w
     JOIN dict_products p ON p.brand_key >= json_extract(w.value, '$[0]')
                         AND p.brand_key < json_extract(w.value, '$[1]')";
const BRANDS_OF_PG: &str =
    "SELECT p.brand_key, p.ingredients FROM jsonb_array_elements(?1::jsonb) w
     JOIN dict_products p ON p.brand_key >= (w ->> 0) AND p.brand_key < (w ->> 1)";

const SELECT_ENTRY: &str = "SELECT k.ndc11, k.package_ndc, k.product_id, k.description,
    p.product_ndc, p.product_type, p.proprietary_name, p.nonproprietary_name, p.dosage_form, p.route,
    p.labeler, p.ingredients, p.excluded, p.epc
    FROM dict_packages k JOIN dict_products p ON p.product_id = k.product_id";

/// The substances' names of a product's stored `ingredients` (JSON).
fn substances_of(ingredients: &str) -> Result<Vec<String>, StoreError> {
    let ingredients: Vec<IngredientJson> = serde_json::from_str(ingredients).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(ingredients.into_iter().map(|i| i.name).collect())
}

/// The text a package is stored under: its 11 digits when it has an
/// 11-digit form, else its 12.
fn key_text(ndc: &Ndc12) -> String {
    match ndc.to_ndc11() {
        Some(n) => n.as_str().to_string(),
        None => ndc.as_str().to_string(),
    }
}

/// The inverse of `key_text`.
fn key_from_text(text: &str) -> Result<Ndc12, crate::domain::NdcError> {
    match text.len() {
        11 => Ndc11::from_digits(text).map(|n| n.to_ndc12()),
        _ => Ndc12::from_digits(text).and_then(|n| match n.to_ndc11() {
            // A 12-digit key with an 11-digit form was never written.
            Some(_) => Err(crate::domain::NdcError::NotElevenDigits(text.to_string())),
            None => Ok(n),
        }),
    }
}

fn row_to_entry(r: &Row<'_>) -> rusqlite::Result<DictEntry> {
    let ndc_text: String = r.get(0)?;
    let ndc = key_from_text(&ndc_text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let ingredients: String = r.get(11)?;
    let ingredients: Vec<IngredientJson> = serde_json::from_str(&ingredients).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(11, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let epc: String = r.get(13)?;
    let epc: Vec<String> = serde_json::from_str(&epc).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(13, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let product_id: String = r.get(2)?;
    Ok(DictEntry {
        package: Package {
            ndc,
            package_ndc: r.get(1)?,
            product_id: product_id.clone(),
            description: r.get(3)?,
        },
        product: Product {
            product_id,
            product_ndc: r.get(4)?,
            product_type: r.get(5)?,
            proprietary_name: r.get(6)?,
            nonproprietary_name: r.get(7)?,
            dosage_form: r.get(8)?,
            route: r.get(9)?,
            labeler: r.get(10)?,
            ingredients: ingredients
                .into_iter()
                .map(|i| Ingredient {
                    name: i.name,
                    strength: i.strength,
                    unit: i.unit,
                })
                .collect(),
            excluded: r.get(12)?,
            epc,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: &str, proprietary: &str, substances: &[&str]) -> Product {
        Product {
            product_id: id.to_string(),
            product_ndc: "0000-0000".to_string(),
            product_type: "HUMAN PRESCRIPTION DRUG".to_string(),
            proprietary_name: proprietary.to_string(),
            nonproprietary_name: proprietary.to_lowercase(),
            dosage_form: "TABLET".to_string(),
            route: "ORAL".to_string(),
            labeler: "L".to_string(),
            ingredients: substances
                .iter()
                .map(|s| Ingredient {
                    name: s.to_string(),
                    strength: "10".to_string(),
                    unit: "mg/1".to_string(),
                })
                .collect(),
            excluded: false,
            epc: Vec::new(),
        }
    }

    fn brands(store: &Store, word: &str) -> Vec<(String, Vec<String>)> {
        let mut found = store
            .dict_brands_of(&[word.to_string()])
            .expect("reads brands");
        found.sort();
        found
    }

    fn assert_brands(store: &Store) {
        let lisinopril = vec!["LISINOPRIL".to_string()];
        let bactrim = vec!["SULFAMETHOXAZOLE".to_string(), "TRIMETHOPRIM".to_string()];
        assert_eq!(
            brands(store, "Zestril"),
            [("zestril".to_string(), lisinopril)]
        );
        assert_eq!(
            brands(store, "bactrim"),
            [("bactrim ds".to_string(), bactrim.clone())]
        );
        assert_eq!(
            brands(store, "BACTRIM-DS"),
            [("bactrim ds".to_string(), bactrim)]
        );
        // A generic's proprietary name is no brand; a longer word is no prefix.
        assert_eq!(brands(store, "lisinopril"), []);
        assert_eq!(brands(store, "zest"), []);
        assert_eq!(brands(store, "12"), []);
        // Several words in one statement; a word with no key is left out.
        let words = ["Zestril", "", "bactrim", "Zestril"].map(String::from);
        let mut found = store.dict_brands_of(&words).expect("reads brands");
        found.sort();
        found.dedup();
        assert_eq!(
            found.iter().map(|(b, _)| b.as_str()).collect::<Vec<_>>(),
            ["bactrim ds", "zestril"]
        );
        assert_eq!(store.dict_brands_of(&[]).expect("reads"), []);
    }

    #[test]
    fn brands_are_read_by_word_or_name_through_the_index_and_filled_by_the_migration() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let mut store = Store::open(&path).expect("opens");
        let products = [
            product("Z", "Zestril", &["LISINOPRIL"]),
            product("G", "Lisinopril", &["LISINOPRIL"]),
            product("B", "Bactrim DS", &["SULFAMETHOXAZOLE", "TRIMETHOPRIM"]),
        ];
        store
            .replace_dictionary(&products, &[], "test", "tester")
            .expect("loads");
        assert_brands(&store);
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {BRANDS_OF_SQLITE}"))
            .expect("plans")
            .query_map([r#"[["zestril", "zestril!"]]"#], |r| r.get::<_, String>(3))
            .expect("plans")
            .collect::<Result<_, _>>()
            .expect("plans");
        assert!(
            plan.iter().any(|p| p.contains("dict_products_brand_key")),
            "{plan:?}"
        );

        // A dictionary loaded before migration 0008 has no brand keys: the
        // migration fills them (`fill_brand_keys`, which `migrate` runs
        // right after 0008's SQL, in its transaction).
        store
            .conn
            .execute_batch("UPDATE dict_products SET brand_key = NULL")
            .expect("forgets the keys");
        super::fill_brand_keys(&store.conn).expect("fills");
        drop(store);
        let store = Store::open(&path).expect("reopens");
        assert_brands(&store);
    }
}
