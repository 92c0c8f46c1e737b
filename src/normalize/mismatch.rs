//! Does a record's NDC name the drug its text names? A document that says
//! "Warfarin 5 MG Oral Tablet" over the NDC of Prozac 20 mg must not become
//! "Warfarin 5 mg" with the strength and form of Prozac: `check` compares
//! what the document says of an item (its name, brand, code displays, stated
//! strengths and form) with the dictionary's product for its NDC.
//!
//! The comparison is deliberately tolerant, because a false flag costs a
//! clinician's time on every import: names match when any significant word
//! of the text (salt, form, route and unit words set aside, a few common
//! abbreviations expanded) equals, or is a prefix of at least four letters
//! of, a word of the product's proprietary name, nonproprietary name or
//! substances; a text with no significant word says nothing and never
//! mismatches. Strengths (`strength`) contradict only when the product has
//! one active ingredient, the document states a strength in a unit
//! comparable with it, and none of the document's strengths equals it.
//! The vocabulary is in `words`.
//!
//! A brand given alone ("Zestril 10 mg tablet") over the NDC of another
//! labeler's generic also names the product's substances: the dictionary
//! says which substances a proprietary name stands for
//! (`DrugDictionary::brand_substances`), asked for the first few drug words
//! of each text (`brand_words`, which the importer reads from the store up
//! front), and `words::BRANDS` remains for brands the dictionary lacks. A
//! brand of another drug ("Coumadin" over Prozac) names other substances,
//! and is still a mismatch.
//!
//! Pure: no I/O, no clock; the dictionary it asks is the one in memory.

use super::{Flag, Item};
use crate::dict::{DictEntry, DrugDictionary, Product};
use crate::domain::ExceptionKind;
use crate::parse::MedRecord;
use crate::parse::ParsedDocument;
use strength::strength_contradicts;
use words::{ALIASES, BRANDS, INSULINS, SALTS, STOP};

/// What the document says of a drug, as its records gave it.
#[derive(Debug, Clone, Copy, Default)]
pub struct DocDrug<'a> {
    pub name: Option<&'a str>,
    pub brand: Option<&'a str>,
    /// Other names the document gives the drug (its codes' displays).
    pub displays: &'a [&'a str],
    /// The stated strengths, as `stated_strength` writes them (`10 mg; 12.5 mg`).
    pub strength: Option<&'a str>,
    pub form: Option<&'a str>,
}

/// What the document and the product have to say to each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// They agree, or the document says too little to tell.
    Match,
    /// No significant word of the document's text names the product.
    NameMismatch,
    /// The names agree but the document's stated strength is not the product's.
    StrengthMismatch,
}

/// Compares what the document says with the product of the item's NDC;
/// `dict` says which substances the brands in the text stand for.
pub fn check(doc: &DocDrug<'_>, product: &Product, dict: &dyn DrugDictionary) -> Verdict {
    match names_agree(doc, product, dict) {
        Some(false) => Verdict::NameMismatch,
        // A strength is checked also when no name is given to compare.
        _ if strength_contradicts(doc, product) => Verdict::StrengthMismatch,
        _ => Verdict::Match,
    }
}

/// The clinician's words for a mismatch: what the document says, then what
/// the NDC is (`the document says Warfarin 5 MG Oral Tablet; NDC
/// 0777-3105-02 is PROZAC (fluoxetine hydrochloride) 20 mg capsule`).
pub fn detail(doc: &DocDrug<'_>, entry: &DictEntry, verdict: &Verdict) -> String {
    let mut says = doc
        .name
        .or(doc.brand)
        .or(doc.displays.first().copied())
        .unwrap_or("")
        .trim()
        .to_string();
    let lower = says.to_lowercase();
    if let Some(brand) = doc
        .brand
        .filter(|b| !lower.contains(&b.trim().to_lowercase()))
    {
        says.push_str(&format!(" (brand {})", brand.trim()));
    }
    for extra in [doc.strength, doc.form].into_iter().flatten() {
        if !lower.contains(&extra.trim().to_lowercase()) {
            says.push_str(&format!(" {}", extra.trim()));
        }
    }
    let p = &entry.product;
    let ndc = if entry.package.package_ndc.is_empty() {
        entry.package.ndc.hyphenated()
    } else {
        entry.package.package_ndc.clone()
    };
    let strength: Vec<String> = p
        .ingredients
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i.strength,
                i.unit.strip_suffix("/1").unwrap_or(&i.unit)
            )
        })
        .collect();
    let mut is = p.proprietary_name.to_uppercase();
    if !p.nonproprietary_name.is_empty() {
        is.push_str(&format!(" ({})", p.nonproprietary_name.to_lowercase()));
    }
    for part in [strength.join("; "), p.dosage_form.to_lowercase()] {
        if !part.trim().is_empty() {
            is.push_str(&format!(" {}", part.trim()));
        }
    }
    let why = match verdict {
        Verdict::StrengthMismatch => " (another strength)",
        _ => "",
    };
    format!(
        "the document says {}; NDC {ndc} is {}{why}",
        says.trim(),
        is.trim()
    )
}

/// The words of a text that can name a drug: lower-cased, split at every
/// non-alphanumeric character, abbreviations expanded; without words that
/// hold a digit, short words and stop words.
fn words_of(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut words: Vec<String> = Vec::new();
    for raw in lower.split(|c: char| !c.is_alphanumeric()) {
        match ALIASES.iter().find(|(short, _)| *short == raw) {
            Some((_, long)) => words.extend(long.iter().map(|w| w.to_string())),
            None => words.push(raw.to_string()),
        }
    }
    words.retain(|w| {
        w.chars().count() >= 3
            && !w.chars().any(|c| c.is_ascii_digit())
            && !STOP.contains(&w.as_str())
    });
    words
}

/// The words of a text that can name a drug, as (drug words, salt words),
/// brands of `words::BRANDS` followed by their ingredients.
fn significant(text: &str) -> (Vec<String>, Vec<String>) {
    let mut words = Vec::new();
    for w in words_of(text) {
        // A brand also names its active ingredients, so that a brand in the
        // text matches a generic product's NDC.
        if let Some((_, generic)) = BRANDS.iter().find(|(brand, _)| *brand == w) {
            words.extend(generic.iter().map(|g| g.to_string()));
        }
        words.push(w);
    }
    words
        .into_iter()
        .partition(|w| !SALTS.contains(&w.as_str()))
}

/// How many words of one text are asked whether they are a brand: a
/// brand comes first or early ("Zestril 10 MG Oral Tablet", "Tylenol
/// Extra Strength"), and the importer's reads stay bounded.
const BRAND_WORDS_PER_TEXT: usize = 4;

/// The words of a text that may be a brand: its first few drug words, and
/// its first two words together (`brand_key`), for a brand whose first
/// word is a salt or stop word ("Sodium Citrate Blood-Pack Units", "Oral-B").
fn brand_candidates(text: &str) -> impl Iterator<Item = String> {
    let key = crate::dict::brand_key(text);
    let leading: Vec<&str> = key
        .split(' ')
        .take_while(|w| !w.chars().any(|c| c.is_ascii_digit()))
        .take(2)
        .collect();
    let leading = (leading.len() == 2).then(|| leading.join(" "));
    words_of(text)
        .into_iter()
        .filter(|w| !SALTS.contains(&w.as_str()))
        .take(BRAND_WORDS_PER_TEXT)
        .chain(leading)
}

/// Every word or name `check` may ask `DrugDictionary::brand_substances` about for
/// `doc`: the brand candidates of each record's name, brand and code
/// displays. Sorted, without repeats. The importer reads exactly these
/// brands from the store before normalizing, so this rule and `check` must
/// agree: they live side by side.
pub fn brand_words(doc: &ParsedDocument) -> Vec<String> {
    let mut words: Vec<String> = doc
        .records
        .iter()
        .flat_map(record_texts)
        .flat_map(brand_candidates)
        .collect();
    words.sort();
    words.dedup();
    words
}

/// Whether the document's words name the product. Its drug words are
/// compared with the product's (each product name's salt words stand in
/// for drug words it lacks: potassium chloride is a drug). Salt words in
/// common never make a match on their own — losartan potassium is not
/// potassium chloride — unless the text names no other drug, or it names
/// every salt of a salt-only product (`KCl 20 mEq packet`). A brand the
/// dictionary knows adds the words of its substances.
fn names_agree(doc: &DocDrug<'_>, product: &Product, dict: &dyn DrugDictionary) -> Option<bool> {
    let texts = doc.name.iter().chain(&doc.brand).chain(doc.displays);
    let (mut drugs, mut salts) = (Vec::new(), Vec::new());
    for text in texts {
        let (d, s) = significant(text);
        drugs.extend(d);
        salts.extend(s);
        let substances = brand_candidates(text).flat_map(|w| dict.brand_substances(&w));
        for substance in substances.flatten() {
            let (d, s) = significant(&substance);
            drugs.extend(d);
            salts.extend(s);
        }
    }
    let names = [&product.proprietary_name, &product.nonproprietary_name];
    let fields: Vec<(Vec<String>, Vec<String>)> = names
        .into_iter()
        .chain(product.ingredients.iter().map(|i| &i.name))
        .map(|t| significant(t))
        .collect();
    let product_words: Vec<&String> = fields
        .iter()
        .flat_map(|(d, s)| if d.is_empty() { s } else { d })
        .collect();
    if (drugs.is_empty() && salts.is_empty()) || product_words.is_empty() {
        return None;
    }
    let ours = if drugs.is_empty() { &salts } else { &drugs };
    let named = any_in_common(ours, &product_words);
    let all_salts = fields
        .iter()
        .any(|(d, s)| d.is_empty() && !s.is_empty() && s.iter().all(|x| salts.contains(x)));
    Some(named || all_salts)
}

/// Equal words, one a prefix (of four letters or more) of the other, or
/// the same stem before an acid's `-ic` / a salt's `-ate` (clavulanic,
/// clavulanate).
fn same_word(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short == long || (short.chars().count() >= 4 && long.starts_with(short)) {
        return true;
    }
    let stem = |w: &'_ str| -> String {
        match w.strip_suffix("ic").or_else(|| w.strip_suffix("ate")) {
            Some(s) if s.chars().count() >= 5 => s.to_string(),
            _ => w.to_string(),
        }
    };
    stem(a) == stem(b)
}

/// The significant drug words of a record's own texts (its name, brand and
/// code displays), or its salt words when it names no other drug: what two
/// records are compared by before a reference may fold them.
pub(super) fn record_words(record: &MedRecord) -> Vec<String> {
    let (mut drugs, mut salts) = (Vec::new(), Vec::new());
    for text in record_texts(record) {
        let (d, s) = significant(text);
        drugs.extend(d);
        salts.extend(s);
    }
    if drugs.is_empty() { salts } else { drugs }
}

/// Whether two records' drug words (`record_words`) name one drug: None
/// when either says nothing, else whether any word of one is a word of the
/// other (brands stand for their ingredients on both sides).
pub(super) fn words_agree(a: &[String], b: &[String]) -> Option<bool> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    Some(any_in_common(a, b))
}

/// Whether any word of `a` is a word of `b` (`same_word`); "insulin" counts
/// only when not both sides name a kind of insulin (`words::INSULINS`):
/// insulin lispro is not insulin glargine.
fn any_in_common<A: AsRef<str>, B: AsRef<str>>(a: &[A], b: &[B]) -> bool {
    let kind = |w: &str| INSULINS.contains(&w);
    let both_kinds = a.iter().any(|w| kind(w.as_ref())) && b.iter().any(|w| kind(w.as_ref()));
    a.iter().any(|x| {
        let x = x.as_ref();
        (x != "insulin" || !both_kinds) && b.iter().any(|y| same_word(x, y.as_ref()))
    })
}

/// Whether a record's own texts name a product (None: they say nothing).
/// Without the dictionary's brands: a brand alone does not prove it, so
/// two records are then kept apart (and flagged), never folded on a guess.
pub(super) fn record_names_product(record: &MedRecord, product: &Product) -> Option<bool> {
    let displays = record_displays(record);
    names_agree(
        &record_doc(record, &displays),
        product,
        &crate::dict::MemoryDictionary::default(),
    )
}

fn record_texts(record: &MedRecord) -> impl Iterator<Item = &str> {
    record
        .name
        .as_deref()
        .into_iter()
        .chain(record.brand.as_deref())
        .chain(record.codes.iter().filter_map(|c| c.display.as_deref()))
}

fn record_displays(record: &MedRecord) -> Vec<&str> {
    record
        .codes
        .iter()
        .filter_map(|c| c.display.as_deref())
        .collect()
}

/// What one record says of its drug by name (strength and form are the
/// item's to check: a record may state them apart from its name).
fn record_doc<'a>(record: &'a MedRecord, displays: &'a [&'a str]) -> DocDrug<'a> {
    DocDrug {
        name: record.name.as_deref(),
        brand: record.brand.as_deref(),
        displays,
        strength: None,
        form: None,
    }
}

/// The `ndc_name_mismatch` flag for item `index`, if its document
/// contradicts its product. Items without a product, and items whose NDC a
/// clinician chose (a remembered mapping), are not checked. Each of the
/// item's `records` is checked on its own first: one record's text naming
/// the product must not vouch for another record's text that does not
/// (a claim for Glucophage folded into a request for Lisinopril).
pub(super) fn flag(
    index: usize,
    item: &Item,
    records: &[&MedRecord],
    dict: &dyn DrugDictionary,
) -> Option<Flag> {
    let entry = item.product.as_deref()?;
    if item.mapping.is_some() {
        return None;
    }
    // One record's words are the item's: the item's check below says it
    // with the stated strength and form.
    for record in records.iter().filter(|_| records.len() > 1) {
        let displays = record_displays(record);
        let doc = record_doc(record, &displays);
        if names_agree(&doc, &entry.product, dict) == Some(false) {
            return Some(Flag {
                kind: ExceptionKind::NdcNameMismatch,
                item: Some(index),
                related: None,
                record: None,
                detail: detail(&doc, entry, &Verdict::NameMismatch),
            });
        }
    }
    let displays: Vec<&str> = item
        .codes
        .iter()
        .filter_map(|c| c.display.as_deref())
        .collect();
    let doc = DocDrug {
        name: item.name.as_deref(),
        brand: item.brand.as_deref(),
        displays: &displays,
        strength: item.strength.as_deref(),
        form: item.form.as_deref(),
    };
    let verdict = check(&doc, &entry.product, dict);
    (verdict != Verdict::Match).then(|| Flag {
        kind: ExceptionKind::NdcNameMismatch,
        item: Some(index),
        related: None,
        record: None,
        detail: detail(&doc, entry, &verdict),
    })
}

mod strength;
mod words;

#[cfg(test)]
mod brand_tests;
#[cfg(test)]
mod tests;
