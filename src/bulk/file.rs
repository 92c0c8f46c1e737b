//! One patient's records out of an NDJSON file handed to `import --file`:
//! the file is small (it was read whole, within `max_document_bytes`), so it
//! is grouped in memory. Other patients' resources are not imported, and
//! the caller is told about them.

use super::collection;
use super::line::{self, READ};
use super::source::{Line, Lines};
use crate::store::BadLine;
use std::collections::BTreeMap;
use std::io::{BufReader, Read};

/// The chosen patient's Bundle and what else the file held.
#[derive(Debug)]
pub struct OnePatient {
    /// The Bundle of the patient's lines and the Medications they reference.
    pub bytes: Vec<u8>,
    /// The patient's id at the provider, as the file names it.
    pub remote_patient: String,
    /// Other patients the file holds resources of (not imported).
    pub other_patients: Vec<String>,
    /// How many resources of those other patients were left out.
    pub other_resources: u64,
    /// Lines that are not FHIR resources, or name no patient.
    pub bad_lines: Vec<BadLine>,
}

/// Why no patient's records could be taken from the file.
#[derive(Debug, thiserror::Error)]
pub enum OnePatientError {
    #[error("the file holds no resource that names a patient")]
    NoPatient,
    #[error(
        "the file holds the resources of {count} patients ({}), and none or several of them is the patient's (the local id or a link's remote id): import it with --bulk --provider",
        shown.join(", ")
    )]
    Several { count: usize, shown: Vec<String> },
    #[error("line {line}: {source}")]
    Read { line: u64, source: std::io::Error },
    #[error("the file is over {limit} bytes once decompressed")]
    TooLarge { limit: u64 },
}

/// Does a file name say NDJSON (`.ndjson`, `.ndjson.gz`)?
pub fn is_ndjson_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".ndjson") || lower.ends_with(".ndjson.gz")
}

/// The records of one patient of an NDJSON file (gzip or not). The patient
/// is the file's only one, else the one whose id is among `candidates`.
pub fn one_patient(
    bytes: &[u8],
    limit: u64,
    candidates: &[String],
) -> Result<OnePatient, OnePatientError> {
    let gzip = bytes.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn std::io::BufRead + '_> = if gzip {
        Box::new(BufReader::new(
            flate2::read::MultiGzDecoder::new(bytes).take(limit.saturating_add(1)),
        ))
    } else {
        Box::new(bytes)
    };
    let mut lines = Lines::from_reader(reader, gzip, usize::try_from(limit).unwrap_or(usize::MAX));
    let mut patients: BTreeMap<String, Vec<(Option<String>, String)>> = BTreeMap::new();
    let mut drugs: BTreeMap<String, String> = BTreeMap::new();
    let mut bad_lines = Vec::new();
    let mut buf = Vec::new();
    loop {
        let line = lines
            .next(&mut buf)
            .map_err(|source| OnePatientError::Read {
                line: lines.number + 1,
                source,
            })?;
        let Some(line) = line else { break };
        let at = lines.number;
        let mut bad = |reason: String| {
            bad_lines.push(BadLine {
                file: String::new(),
                line: at,
                reason,
            })
        };
        let text = match line {
            Line::TooLong => {
                bad("the line is too long".into());
                continue;
            }
            Line::Text(t) => match std::str::from_utf8(t) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => text,
                Err(_) => {
                    bad("not UTF-8 text".into());
                    continue;
                }
            },
        };
        let head = match line::read(text) {
            Ok(h) => h,
            Err(reason) => {
                bad(reason);
                continue;
            }
        };
        match (head.kind.as_deref(), head.patient) {
            (Some("Medication"), _) => {
                if let Some(id) = head.id {
                    drugs.entry(id).or_insert_with(|| text.to_string());
                }
            }
            (Some("Patient"), _) => {}
            (Some(kind), _) if !READ.contains(&kind) => {}
            (kind, Some(p)) => {
                if kind.is_none() {
                    bad("the resource has no resourceType".into());
                }
                patients
                    .entry(p)
                    .or_default()
                    .push((head.medication, text.to_string()));
            }
            (_, None) => bad("the resource names no patient".into()),
        }
    }
    if gzip && lines.bytes > limit {
        return Err(OnePatientError::TooLarge { limit });
    }
    let chosen = match patients.len() {
        0 => return Err(OnePatientError::NoPatient),
        1 => patients.keys().next().cloned(),
        _ => {
            let mut hits = patients.keys().filter(|k| candidates.contains(k));
            match (hits.next(), hits.next()) {
                (Some(one), None) => Some(one.clone()),
                _ => None,
            }
        }
    };
    let Some(chosen) = chosen else {
        return Err(OnePatientError::Several {
            count: patients.len(),
            shown: patients.keys().take(10).cloned().collect(),
        });
    };
    let rows = patients.remove(&chosen).unwrap_or_default();
    let mut referenced: Vec<&str> = rows.iter().filter_map(|(m, _)| m.as_deref()).collect();
    referenced.sort_unstable();
    referenced.dedup();
    let mut resources: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    resources.extend(
        referenced
            .iter()
            .filter_map(|id| drugs.get(*id).map(String::as_str)),
    );
    Ok(OnePatient {
        bytes: collection(&resources),
        remote_patient: chosen,
        other_resources: patients.values().map(|v| v.len() as u64).sum(),
        other_patients: patients.into_keys().collect(),
        bad_lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = concat!(
        r#"{"resourceType":"MedicationRequest","id":"a","subject":{"reference":"Patient/p1"},"medicationReference":{"reference":"Medication/m"}}"#,
        "\n",
        r#"{"resourceType":"Medication","id":"m"}"#,
        "\n",
        r#"{"resourceType":"MedicationRequest","id":"b","subject":{"reference":"Patient/p2"}}"#,
        "\n",
        "not json\n"
    );

    #[test]
    fn the_candidate_patient_is_taken_and_the_others_named() {
        let one = one_patient(FILE.as_bytes(), 1 << 20, &["p1".to_string()]).expect("p1");
        assert_eq!(one.remote_patient, "p1");
        assert_eq!(one.other_patients, vec!["p2".to_string()]);
        assert_eq!(one.other_resources, 1);
        assert_eq!(one.bad_lines.len(), 1);
        assert_eq!(one.bad_lines[0].line, 4);
        let v: serde_json::Value = serde_json::from_slice(&one.bytes).expect("JSON");
        assert_eq!(
            v["entry"].as_array().map(Vec::len),
            Some(2),
            "the request and its drug"
        );
    }

    #[test]
    fn several_patients_and_no_candidate_is_refused() {
        let e = one_patient(FILE.as_bytes(), 1 << 20, &[]).expect_err("two patients");
        assert!(e.to_string().contains("p1, p2"), "{e}");
    }
}
