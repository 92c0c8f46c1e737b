//! Strengths as a document writes them and as the FDA lists them, and
//! when the two contradict each other: only when the product has one
//! active ingredient, the document states a strength in a unit comparable
//! with it, and none of the document's strengths equals it. Mass units are
//! converted (g, mg, mcg/µg, ng); concentrations per mL or per g are
//! compared as concentrations; `%` against w/w or w/v concentrations; a
//! per-dose amount never contradicts a concentration.

use super::DocDrug;
use crate::dict::Product;

/// What a strength measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    /// In micrograms.
    Mass,
    Units,
    MilliEq,
    Percent,
}

/// What a strength is per.
#[derive(Debug, Clone, PartialEq)]
enum Per {
    /// Per dose unit (`mg/1`, or no denominator).
    One,
    /// Per this many mL.
    Volume(f64),
    /// Per this many g.
    Weight(f64),
    /// Per anything else (`h`, `actuat`), normalised.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Amount {
    value: f64,
    dim: Dim,
    per: Per,
}

impl Amount {
    /// `value` in `unit` (`mg`, `mg/5 mL`, `[iU]/mL`, `%`); None when the
    /// unit measures nothing comparable (mL alone, homeopathic dilutions).
    fn parse(value: &str, unit: &str) -> Option<Amount> {
        let value = value.trim();
        let value: f64 = match leading_number(value) {
            (digits, used) if used == value.len() => digits.parse().ok()?,
            _ => value.parse().ok()?,
        };
        let unit: String = unit
            .to_lowercase()
            .chars()
            .filter(|c| !matches!(c, ' ' | '[' | ']' | '\'' | '{' | '}'))
            .collect();
        let (num, den) = match unit.split_once('/') {
            Some((n, d)) => (n, Some(d)),
            None => (unit.as_str(), None),
        };
        let (factor, dim) = match num {
            "g" | "gm" | "gram" | "grams" => (1e6, Dim::Mass),
            "mg" | "milligram" | "milligrams" => (1e3, Dim::Mass),
            "mcg" | "ug" | "µg" | "μg" | "microgram" | "micrograms" => (1.0, Dim::Mass),
            "ng" => (1e-3, Dim::Mass),
            "u" | "unit" | "units" | "iu" | "uspu" | "usp" => (1.0, Dim::Units),
            "meq" => (1.0, Dim::MilliEq),
            "%" => (1.0, Dim::Percent),
            _ => return None,
        };
        let per = match den {
            None | Some("1") | Some("") => Per::One,
            Some(d) => {
                let digits: String = d
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                let n: f64 = if digits.is_empty() {
                    1.0
                } else {
                    digits.parse().ok()?
                };
                match &d[digits.len()..] {
                    "ml" => Per::Volume(n),
                    "l" => Per::Volume(n * 1000.0),
                    "g" => Per::Weight(n),
                    "mg" => Per::Weight(n / 1000.0),
                    "hr" | "h" | "hour" => Per::Other("h".to_string()),
                    other => Per::Other(other.to_string()),
                }
            }
        };
        Some(Amount {
            value: value * factor,
            dim,
            per,
        })
    }

    /// Per mL or per g, when it is a concentration.
    fn concentration(&self) -> Option<f64> {
        match self.per {
            Per::Volume(n) | Per::Weight(n) if n > 0.0 => Some(self.value / n),
            _ => None,
        }
    }

    /// As a percentage (g per 100 mL or 100 g), when it can be one.
    fn percent(&self) -> Option<f64> {
        match self.dim {
            Dim::Percent => Some(self.value),
            Dim::Mass => self.concentration().map(|c| c / 1e6 * 100.0),
            _ => None,
        }
    }

    fn equals(&self, other: &Amount) -> bool {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9_f64.max(a.abs().max(b.abs()) * 1e-6);
        if self.dim == other.dim && close(self.value, other.value) {
            return true;
        }
        let pair = (self.concentration(), other.concentration());
        if self.dim == other.dim && matches!(pair, (Some(a), Some(b)) if close(a, b)) {
            return true;
        }
        let either_percent = self.dim == Dim::Percent || other.dim == Dim::Percent;
        either_percent
            && matches!((self.percent(), other.percent()), (Some(a), Some(b)) if close(a, b))
    }

    /// Whether the two measure the same thing, so that a difference is a
    /// contradiction and not two ways of writing one drug.
    fn comparable(&self, other: &Amount) -> bool {
        let percent = |a: &Amount, b: &Amount| a.dim == Dim::Percent && b.percent().is_some();
        if percent(self, other) || percent(other, self) {
            return true;
        }
        self.dim == other.dim
            && match (&self.per, &other.per) {
                (Per::One, Per::One) => true,
                (Per::Other(a), Per::Other(b)) => a == b,
                (Per::Volume(_), Per::Volume(_)) | (Per::Weight(_), Per::Weight(_)) => true,
                _ => false,
            }
    }
}

/// Strengths written in a text (`Warfarin 5 MG Oral Tablet`, `250mg/5 mL`,
/// `1%`): a number followed by a unit, in one word or the next.
fn strengths_in(text: &str) -> Vec<Amount> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let (number, used) = leading_number(word);
        if !number.chars().any(|c| c.is_ascii_digit()) {
            continue;
        }
        let (mut unit, mut at) = (unit_prefix(&word[used..]), i);
        if unit.is_empty() {
            at = i + 1;
            unit = words.get(at).map(|w| unit_prefix(w)).unwrap_or_default();
        }
        // "mg/5 mL": the denominator's unit is the next word.
        if unit.ends_with(|c: char| c.is_ascii_digit() || c == '/')
            && let Some(next) = words.get(at + 1)
        {
            unit.push_str(&unit_prefix(next));
        }
        if let Some(a) = Amount::parse(&number, &unit) {
            out.push(a);
        }
    }
    out
}

/// The number a word starts with, without its thousands separators, and
/// how many bytes it takes: digits and points, and a comma followed by
/// exactly three digits (`1,000 mg` is a thousand milligrams; `1,5` stays
/// `1`, a comma we cannot read for sure).
fn leading_number(word: &str) -> (String, usize) {
    let b = word.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || c == b'.' {
            out.push(char::from(c));
            i += 1;
        } else if c == b','
            && i > 0
            && b[i - 1].is_ascii_digit()
            && !out.contains('.')
            && b.len() >= i + 4
            && b[i + 1..i + 4].iter().all(u8::is_ascii_digit)
            && b.get(i + 4).is_none_or(|d| !d.is_ascii_digit())
        {
            i += 1;
        } else {
            break;
        }
    }
    (out, i)
}

/// The leading unit of a word: letters, µ, %, and a `/` with what follows.
fn unit_prefix(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let after_slash = out.contains('/');
        if c.is_alphabetic()
            || c == '%'
            || c == '/'
            || (after_slash && (c.is_ascii_digit() || c == '.'))
        {
            out.push(c);
        } else {
            break;
        }
    }
    out
}

/// The stated strengths (`10 mg; 12.5 mg`) and those written in the names.
fn stated_amounts(doc: &DocDrug<'_>) -> Vec<Amount> {
    let mut out: Vec<Amount> = doc
        .strength
        .unwrap_or("")
        .split(';')
        .filter_map(|part| {
            let part = part.trim();
            let (value, unit) = part.split_once(' ').unwrap_or((part, ""));
            Amount::parse(value, unit)
        })
        .collect();
    let texts = doc.name.iter().chain(&doc.brand).chain(doc.displays);
    out.extend(texts.flat_map(|t| strengths_in(t)));
    out
}

pub(super) fn strength_contradicts(doc: &DocDrug<'_>, product: &Product) -> bool {
    let [ingredient] = product.ingredients.as_slice() else {
        return false;
    };
    let Some(theirs) = Amount::parse(&ingredient.strength, &ingredient.unit) else {
        return false;
    };
    let ours = stated_amounts(doc);
    ours.iter().any(|a| a.comparable(&theirs)) && !ours.iter().any(|a| a.equals(&theirs))
}
