//! The structured parts of a FHIR R4 `Dosage` that rxsync can state
//! honestly from an item's texts: a dose quantity ("1 tablet"), a timing
//! ("twice daily", "every 8 hours", "at bedtime"), a route with its SNOMED CT
//! code for the common ones. What is not recognised stays text only: a guess
//! would put words in the prescriber's mouth.

use serde_json::{Map, Value, json};

/// SNOMED CT's system URI.
const SNOMED: &str = "http://snomed.info/sct";

/// `Dosage` of an item: `text` is the sig, and each structured part is
/// added only when its text is read without guessing.
pub fn dosage(
    sig: Option<&str>,
    dose: Option<&str>,
    frequency: Option<&str>,
    route: Option<&str>,
) -> Option<Value> {
    let mut d = Map::new();
    if let Some(sig) = text(sig) {
        d.insert("text".into(), json!(sig));
    }
    if let Some(freq) = text(frequency) {
        let mut timing = Map::new();
        if let Some(repeat) = repeat(freq) {
            timing.insert("repeat".into(), repeat);
        }
        timing.insert("code".into(), json!({ "text": freq }));
        d.insert("timing".into(), Value::Object(timing));
    }
    if let Some(route) = text(route) {
        let mut concept = Map::new();
        if let Some((code, display)) = route_code(route) {
            concept.insert(
                "coding".into(),
                json!([{ "system": SNOMED, "code": code, "display": display }]),
            );
        }
        concept.insert("text".into(), json!(route));
        d.insert("route".into(), Value::Object(concept));
    }
    if let Some(quantity) = text(dose).and_then(dose_quantity) {
        d.insert("doseAndRate".into(), json!([{ "doseQuantity": quantity }]));
    }
    (!d.is_empty()).then_some(Value::Object(d))
}

fn text(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|t| !t.is_empty())
}

/// "1 tablet", "2.5 mL", "10 mg" → `{value, unit}`; anything else (a range,
/// "as directed", a fraction) → None.
pub fn dose_quantity(dose: &str) -> Option<Value> {
    let (number, unit) = dose.trim().split_once(char::is_whitespace)?;
    let unit = unit.trim();
    let plain = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.chars().filter(|c| *c == '.').count() <= 1
        && !number.starts_with('.')
        && !number.ends_with('.');
    let unit_ok = !unit.is_empty()
        && unit.len() <= 40
        && unit
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '/');
    if !plain || !unit_ok {
        return None;
    }
    // A FHIR decimal is written as a JSON number, digits as the source
    // wrote them (no float rounding).
    let value: serde_json::Number = serde_json::from_str(number).ok()?;
    Some(json!({ "value": value, "unit": unit }))
}

/// `Timing.repeat` for the frequency phrases people write most, in words
/// or Latin abbreviations.
pub fn repeat(frequency: &str) -> Option<Value> {
    let key: String = frequency
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ')
        .collect();
    let key = key.split_whitespace().collect::<Vec<_>>().join(" ");
    let per = |n: u32, period: u32, unit: &str| json!({ "frequency": n, "period": period, "periodUnit": unit });
    Some(match key.as_str() {
        "once daily" | "daily" | "once a day" | "every day" | "qd" | "1 time daily" => {
            per(1, 1, "d")
        }
        "twice daily" | "twice a day" | "bid" | "2 times daily" | "two times daily" => {
            per(2, 1, "d")
        }
        "three times daily" | "three times a day" | "tid" | "3 times daily" => per(3, 1, "d"),
        "four times daily" | "four times a day" | "qid" | "4 times daily" => per(4, 1, "d"),
        "every other day" | "qod" => per(1, 2, "d"),
        "weekly" | "once weekly" | "once a week" | "every week" => per(1, 1, "wk"),
        "at bedtime" | "nightly at bedtime" | "qhs" | "hs" => {
            json!({ "frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"] })
        }
        other => {
            let hours = other
                .strip_prefix("every ")
                .and_then(|r| r.strip_suffix(" hours"))
                .or_else(|| other.strip_prefix('q').and_then(|r| r.strip_suffix('h')))?;
            let n: u32 = hours.parse().ok().filter(|n| (1..=72).contains(n))?;
            per(1, n, "h")
        }
    })
}

/// The SNOMED CT route concept of the routes rxsync's documents name most
/// (FHIR R4's example route value set draws on the same concepts).
pub fn route_code(route: &str) -> Option<(&'static str, &'static str)> {
    Some(match route.trim().to_lowercase().as_str() {
        "oral" | "by mouth" | "po" => ("26643006", "Oral route"),
        "sublingual" | "sl" => ("37839007", "Sublingual route"),
        "intravenous" | "iv" => ("47625008", "Intravenous route"),
        "intramuscular" | "im" => ("78421000", "Intramuscular route"),
        "subcutaneous" | "sc" | "subq" => ("34206005", "Subcutaneous route"),
        "topical" => ("6064005", "Topical route"),
        "transdermal" => ("45890007", "Transdermal route"),
        "rectal" | "pr" => ("37161004", "Rectal route"),
        "nasal" | "intranasal" => ("46713006", "Nasal route"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dose_texts_read_as_quantities_only_when_plain() {
        let rows = [
            ("1 tablet", Some(json!({"value": 1, "unit": "tablet"}))),
            ("2.5 mL", Some(json!({"value": 2.5, "unit": "mL"}))),
            ("10 mg", Some(json!({"value": 10, "unit": "mg"}))),
            ("1-2 tablets", None),
            ("as directed", None),
            ("1/2 tablet", None),
            ("tablet", None),
            (".5 mL", None),
        ];
        for (text, want) in rows {
            assert_eq!(dose_quantity(text), want, "dose {text:?}");
        }
    }

    #[test]
    fn frequencies_read_as_timing_only_when_known() {
        let rows = [
            (
                "once daily",
                Some(json!({"frequency": 1, "period": 1, "periodUnit": "d"})),
            ),
            (
                "BID",
                Some(json!({"frequency": 2, "period": 1, "periodUnit": "d"})),
            ),
            (
                "Three times a day",
                Some(json!({"frequency": 3, "period": 1, "periodUnit": "d"})),
            ),
            (
                "every 8 hours",
                Some(json!({"frequency": 1, "period": 8, "periodUnit": "h"})),
            ),
            (
                "q6h",
                Some(json!({"frequency": 1, "period": 6, "periodUnit": "h"})),
            ),
            (
                "every other day",
                Some(json!({"frequency": 1, "period": 2, "periodUnit": "d"})),
            ),
            (
                "at bedtime",
                Some(json!({"frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"]})),
            ),
            ("as needed", None),
            ("every 0 hours", None),
        ];
        for (text, want) in rows {
            assert_eq!(repeat(text), want, "frequency {text:?}");
        }
    }

    #[test]
    fn a_dosage_keeps_every_text_and_adds_what_it_can_read() {
        let d = dosage(
            Some("Take 1 tablet by mouth once daily"),
            Some("1 tablet"),
            Some("once daily"),
            Some("Oral"),
        )
        .expect("a dosage");
        assert_eq!(d["text"], "Take 1 tablet by mouth once daily");
        assert_eq!(d["route"]["coding"][0]["code"], "26643006");
        assert_eq!(d["route"]["text"], "Oral");
        assert_eq!(d["timing"]["code"]["text"], "once daily");
        assert_eq!(d["timing"]["repeat"]["frequency"], 1);
        assert_eq!(d["doseAndRate"][0]["doseQuantity"]["unit"], "tablet");
        let unknown =
            dosage(None, Some("as directed"), Some("as needed"), Some("buccal")).expect("a dosage");
        assert_eq!(unknown["route"], json!({"text": "buccal"}));
        assert_eq!(unknown["timing"], json!({"code": {"text": "as needed"}}));
        assert!(unknown.get("doseAndRate").is_none());
        assert_eq!(dosage(None, None, None, Some("  ")), None);
    }
}
