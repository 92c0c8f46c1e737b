//! One NDJSON line: what it says of itself (type, id, patient, drug
//! reference) read without reading the resource, so that an export is
//! filed by patient cheaply. Everything but JSON syntax is read leniently:
//! a field of the wrong type only means it names nothing here, and the FHIR
//! reader reports it when the patient's Bundle is read.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The resource types an `$export` writes that rxsync reads.
pub const READ: [&str; 8] = [
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "MedicationAdministration",
    "MedicationOrder",
    "ExplanationOfBenefit",
    "Medication",
    "Patient",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields<'a> {
    #[serde(borrow, default)]
    resource_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    subject: Option<&'a RawValue>,
    #[serde(borrow, default)]
    patient: Option<&'a RawValue>,
    /// Coverage-style resources name their patient so.
    #[serde(borrow, default)]
    beneficiary: Option<&'a RawValue>,
    #[serde(borrow, default)]
    medication_reference: Option<&'a RawValue>,
    /// R5 `CodeableReference`.
    #[serde(borrow, default)]
    medication: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Reference<'a> {
    #[serde(borrow, default)]
    reference: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct CodeableReference<'a> {
    #[serde(borrow, default)]
    reference: Option<&'a RawValue>,
}

/// What a line says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// None: the line is a JSON object without a `resourceType` string.
    pub kind: Option<String>,
    pub id: Option<String>,
    /// The patient's id at the provider: a Patient's own id, else the id in
    /// `subject`, `patient` or `beneficiary` (`Patient/123`, absolute too).
    pub patient: Option<String>,
    /// The id of the Medication a `medicationReference` names.
    pub medication: Option<String>,
}

/// Reads a line's head; `Err` says why the line is not a JSON object.
pub fn read(line: &str) -> Result<Head, String> {
    if !line.trim_start().starts_with('{') {
        // serde would read a struct from an array too: judge the syntax first.
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(line) {
            Err(e) => format!("malformed JSON: {e}"),
            Ok(_) => "not a FHIR resource: JSON that is not an object".to_string(),
        });
    }
    let f: Fields = serde_json::from_str(line).map_err(|e| {
        let m = e.to_string();
        if e.classify() == serde_json::error::Category::Data {
            format!("not a FHIR resource: {m}")
        } else {
            format!("malformed JSON: {m}")
        }
    })?;
    let kind = f.resource_type.and_then(string);
    let id = f.id.and_then(string);
    let patient = if kind.as_deref() == Some("Patient") {
        id.clone()
    } else {
        [f.subject, f.patient, f.beneficiary]
            .into_iter()
            .flatten()
            .find_map(|r| reference(r).and_then(|r| id_of(&r, "Patient")))
    };
    let medication = f
        .medication_reference
        .and_then(reference)
        .or_else(|| {
            f.medication
                .and_then(|m| serde_json::from_str::<CodeableReference>(m.get()).ok())
                .and_then(|c| c.reference)
                .and_then(reference)
        })
        .and_then(|r| id_of(&r, "Medication"));
    Ok(Head {
        kind,
        id,
        patient,
        medication,
    })
}

fn string(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<Cow<str>>(raw.get())
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn reference(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<Reference>(raw.get())
        .ok()?
        .reference
        .map(|r| r.trim().to_string())
}

/// The id in a reference to `kind` (`Patient/123`,
/// `https://h/fhir/Patient/123/_history/2`); None for `urn:uuid:` and
/// contained references, which name no server id.
pub fn id_of(reference: &str, kind: &str) -> Option<String> {
    let marker = format!("{kind}/");
    let at = reference.rfind(&marker)?;
    let before = &reference[..at];
    if !(before.is_empty() || before.ends_with('/')) {
        return None;
    }
    reference[at + marker.len()..]
        .split('/')
        .next()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_read_for_its_type_id_patient_and_drug() {
        // (line, kind, id, patient, medication)
        type Row<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let rows: &[Row] = &[
            (
                r#"{"resourceType":"MedicationRequest","id":"r1","subject":{"reference":"Patient/p1"},"medicationReference":{"reference":"Medication/m1"}}"#,
                Some("MedicationRequest"),
                Some("r1"),
                Some("p1"),
                Some("m1"),
            ),
            (
                r#"{"resourceType":"ExplanationOfBenefit","id":"e","patient":{"reference":"https://h/fhir/Patient/p2"}}"#,
                Some("ExplanationOfBenefit"),
                Some("e"),
                Some("p2"),
                None,
            ),
            (
                r#"{"resourceType":"Patient","id":"p3"}"#,
                Some("Patient"),
                Some("p3"),
                Some("p3"),
                None,
            ),
            (
                r#"{"resourceType":"MedicationStatement","subject":{"reference":"Patient/p4"},"medication":{"reference":{"reference":"Medication/m4"}}}"#,
                Some("MedicationStatement"),
                None,
                Some("p4"),
                Some("m4"),
            ),
            // A wrong type names nothing: the FHIR reader will say so.
            (
                r#"{"resourceType":"MedicationRequest","subject":5,"id":7}"#,
                Some("MedicationRequest"),
                None,
                None,
                None,
            ),
            (
                r#"{"id":"x","subject":{"reference":"Patient/p5"}}"#,
                None,
                Some("x"),
                Some("p5"),
                None,
            ),
            (
                r##"{"resourceType":"MedicationRequest","subject":{"reference":"urn:uuid:1"},"medicationReference":{"reference":"#c"}}"##,
                Some("MedicationRequest"),
                None,
                None,
                None,
            ),
        ];
        for (line, kind, id, patient, medication) in rows {
            let h = read(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(h.kind.as_deref(), *kind, "{line}");
            assert_eq!(h.id.as_deref(), *id, "{line}");
            assert_eq!(h.patient.as_deref(), *patient, "{line}");
            assert_eq!(h.medication.as_deref(), *medication, "{line}");
        }
    }

    #[test]
    fn a_line_that_is_not_a_json_object_is_refused_with_the_reason() {
        for (line, starts) in [
            ("{\"resourceType\":", "malformed JSON"),
            ("not json", "malformed JSON"),
            ("[1,2]", "not a FHIR resource"),
            ("{\"a\":1} trailing", "malformed JSON"),
        ] {
            let e = read(line).expect_err(line);
            assert!(e.starts_with(starts), "{line}: {e}");
        }
    }
}
