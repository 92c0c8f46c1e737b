//! The drug dictionary tables: replaced whole by an import, read by NDC.
//!
//! `dict_packages.ndc11` holds a package's 11-digit NDC, the key items and
//! mappings join on; a new 6-digit labeler's package, which has no 11-digit
//! form, is kept under its 12 digits in the same column (no 11-digit key can
//! be 12 characters long, so the two never collide). `key_text` is the one
//! place that rule lives.

use super::{Store, StoreError, now};
use crate::dict::{DictEntry, Ingredient, Package, Product};
use crate::domain::{Ndc11, Ndc12};
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
        tx.execute_batch(
            "DELETE FROM dict_packages; DELETE FROM dict_products; DELETE FROM dict_meta;",
        )?;
        {
            let mut ins = tx.prepare(
                "INSERT OR REPLACE INTO dict_products (product_id, product_ndc, product_type, proprietary_name,
                 nonproprietary_name, dosage_form, route, labeler, ingredients, excluded, epc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for p in products {
                let ingredients: Vec<IngredientJson> = p
                    .ingredients
                    .iter()
                    .map(|i| IngredientJson {
                        name: i.name.clone(),
                        strength: i.strength.clone(),
                        unit: i.unit.clone(),
                    })
                    .collect();
                ins.execute(params![
                    p.product_id,
                    p.product_ndc,
                    p.product_type,
                    p.proprietary_name,
                    p.nonproprietary_name,
                    p.dosage_form,
                    p.route,
                    p.labeler,
                    serde_json::to_string(&ingredients).unwrap_or_else(|_| "[]".into()),
                    p.excluded,
                    serde_json::to_string(&p.epc).unwrap_or_else(|_| "[]".into())
                ])?;
            }
            // A package whose product is missing from product.txt cannot be
            // described; it is left out (and counted by the caller).
            let mut ins = tx.prepare(
                "INSERT OR REPLACE INTO dict_packages (ndc11, package_ndc, product_id, description)
                 SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM dict_products WHERE product_id = ?3)",
            )?;
            for k in packages {
                ins.execute(params![
                    key_text(&k.ndc),
                    k.package_ndc,
                    k.product_id,
                    k.description
                ])?;
            }
        }
        let (np, nk): (usize, usize) = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM dict_products), (SELECT COUNT(*) FROM dict_packages)",
            [],
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
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let meta: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT loaded_from, loaded_at FROM dict_meta WHERE id = 1",
                [],
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

    /// The label of the dictionary's snapshot (`dict::snapshot_label`):
    /// where it was loaded from and when; None before any load. One row,
    /// so an import can ask it each time.
    pub fn dictionary_snapshot(&self) -> Result<Option<String>, StoreError> {
        Store::snapshot_in(&self.conn)
    }

    pub(super) fn snapshot_in(conn: &rusqlite::Connection) -> Result<Option<String>, StoreError> {
        let mut stmt =
            conn.prepare_cached("SELECT loaded_from, loaded_at FROM dict_meta WHERE id = 1")?;
        let meta: Option<(String, String)> = stmt
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(meta.map(|(from, at)| crate::dict::snapshot_label(&from, &at)))
    }

    /// The dictionary entry of an NDC, by its 12-digit form (excluded
    /// products included).
    pub fn dict_entry(&self, ndc: &Ndc12) -> Result<Option<DictEntry>, StoreError> {
        Store::entry_in(&self.conn, ndc)
    }

    pub(super) fn entry_in(
        conn: &rusqlite::Connection,
        ndc: &Ndc12,
    ) -> Result<Option<DictEntry>, StoreError> {
        let mut stmt = conn.prepare_cached(&format!("{SELECT_ENTRY} WHERE k.ndc11 = ?1"))?;
        Ok(stmt.query_row([key_text(ndc)], row_to_entry).optional()?)
    }

    /// Entries whose brand or generic name contains `text` (case-insensitive).
    pub fn dict_search(&self, text: &str, limit: usize) -> Result<Vec<DictEntry>, StoreError> {
        let pattern = format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let mut stmt = self.conn.prepare_cached(&format!(
            "{SELECT_ENTRY} WHERE p.proprietary_name LIKE ?1 ESCAPE '\\' OR p.nonproprietary_name LIKE ?1 ESCAPE '\\'
             ORDER BY p.excluded, p.proprietary_name, k.ndc11 LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![pattern, limit as i64], row_to_entry)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

const SELECT_ENTRY: &str = "SELECT k.ndc11, k.package_ndc, k.product_id, k.description,
    p.product_ndc, p.product_type, p.proprietary_name, p.nonproprietary_name, p.dosage_form, p.route,
    p.labeler, p.ingredients, p.excluded, p.epc
    FROM dict_packages k JOIN dict_products p ON p.product_id = k.product_id";

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

fn row_to_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<DictEntry> {
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
