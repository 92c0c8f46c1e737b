//! One table per rule of the C-CDA reader; fixtures under `samples/ccda/`
//! (listed in its README) and small documents built around one section.

use super::*;
use crate::domain::CodeSystem;
use crate::parse::{MedRecord, ParseOptions, sniff};

fn sample(name: &str) -> Vec<u8> {
    let path = format!("{}/samples/ccda/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn read(name: &str) -> ParsedDocument {
    parse(&sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A CCD around one section's XML (elements in the v3 default namespace).
fn ccd(section: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<code code="34133-9" codeSystem="2.16.840.1.113883.6.1"/><title>T</title>
<recordTarget><patientRole><id root="1.2.3" extension="p1"/></patientRole></recordTarget>
<component><structuredBody><component>{section}</component></structuredBody></component>
</ClinicalDocument>"#
    )
}

/// A Medications section with one entry holding `activity`.
fn meds(narrative: &str, activity: &str) -> String {
    ccd(&format!(
        r#"<section><templateId root="2.16.840.1.113883.10.20.22.2.1.1"/><code code="10160-0"/>
<text>{narrative}</text><entry>{activity}</entry></section>"#
    ))
}

/// A Medication Activity with `inner` elements and a drug coded `code`.
fn activity(attrs: &str, inner: &str, code: &str) -> String {
    format!(
        r#"<substanceAdministration classCode="SBADM" {attrs}><id root="1.2" extension="a"/>{inner}
<consumable><manufacturedProduct><manufacturedMaterial>{code}</manufacturedMaterial></manufacturedProduct></consumable>
</substanceAdministration>"#
    )
}

const LISINOPRIL: &str = r#"<code code="104377" codeSystem="2.16.840.1.113883.6.88" displayName="lisinopril 10 MG Oral Tablet"/>"#;

fn one(xml: &str) -> MedRecord {
    let doc = parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(doc.records.len(), 1, "{xml}\n{doc:#?}");
    doc.records.into_iter().next().unwrap_or_default()
}

#[test]
fn every_sample_yields_its_records_left_outs_and_unreadables() {
    // (file, records, left out, unreadable)
    let rows = [
        ("r21-ccd.xml", 4, 1, 0),
        ("r11-ccd.xml", 2, 0, 0),
        ("r21-discharge-summary.xml", 2, 0, 0),
        ("no-known-medications.xml", 0, 1, 0),
        ("section-null-flavor.xml", 0, 1, 0),
        ("no-medications-section.xml", 0, 1, 0),
        ("narrative-only.xml", 0, 0, 1),
    ];
    for (file, records, left_out, unreadable) in rows {
        let doc = read(file);
        assert_eq!(doc.format, DocFormat::Ccda, "{file}");
        assert_eq!(doc.records.len(), records, "{file}: {doc:#?}");
        assert_eq!(doc.left_out.len(), left_out, "{file}: {:#?}", doc.left_out);
        assert_eq!(doc.unreadable.len(), unreadable, "{file}");
        assert!(doc.problems.is_empty(), "{file}: {:?}", doc.problems);
    }
}

#[test]
fn records_carry_what_the_activity_states() {
    type Check = fn(&MedRecord) -> bool;
    // (file, record id, what is checked, check)
    let rows: &[(&str, &str, &str, Check)] = &[
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-1",
            "name from the referenced originalText",
            |r| r.name.as_deref() == Some("Prinivil 10 mg tablet"),
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-1",
            "RxNorm code then NDC translation, by OID",
            |r| {
                r.codes
                    .iter()
                    .map(|c| (c.system.clone(), c.value.as_str()))
                    .collect::<Vec<_>>()
                    == vec![
                        (CodeSystem::RxNorm, "104377"),
                        (CodeSystem::Ndc, "00006-0106-54"),
                    ]
            },
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-1",
            "brand from manufacturedMaterial/name",
            |r| r.brand.as_deref() == Some("Prinivil"),
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-1",
            "section label",
            |r| r.section.as_deref() == Some("Medications"),
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-1",
            "dose with the administration unit",
            |r| r.dose.as_deref() == Some("1 Tablet"),
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-1",
            "route display name",
            |r| r.route.as_deref() == Some("Oral Route of Administration"),
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-1",
            "PIVL_TS frequency",
            |r| r.frequency.as_deref() == Some("every 24 h"),
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-1",
            "IVL_TS start, nullFlavored high",
            |r| r.start.as_deref() == Some("20230115") && r.stop.is_none(),
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-1",
            "free text sig, not the whole row",
            |r| r.directions == ["Take 1 tablet by mouth once daily"],
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-1",
            "supply order: prescriber, date, quantity",
            |r| {
                r.prescriber.as_deref() == Some("Dr. Henry Seven")
                    && r.prescribed.as_deref() == Some("20230114")
                    && r.quantity.as_deref() == Some("90 {tbl}")
            },
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-1",
            "dispense: pharmacy",
            |r| r.dispenser.as_deref() == Some("Corner Pharmacy"),
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-2",
            "INT: NDC first, author as prescriber",
            |r| {
                r.codes[0].system == CodeSystem::Ndc
                    && r.prescriber.as_deref() == Some("Henry Seven MD")
                    && r.status.as_deref() == Some("active")
            },
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-2",
            "EIVL_TS event and PRN",
            |r| r.frequency.as_deref() == Some("ACM (before breakfast), as needed"),
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-2",
            "text referencing a sig cell is a direction",
            |r| r.directions == ["1 tablet before breakfast, as needed for high sugars"],
        ),
        (
            "r21-ccd.xml",
            "1.2.840.113619.21.1.1^med-act-4",
            "completed course: start, stop, status",
            |r| {
                r.start.as_deref() == Some("20231101")
                    && r.stop.as_deref() == Some("20231110")
                    && r.status.as_deref() == Some("completed")
            },
        ),
        (
            "r21-ccd.xml",
            "10160-0 entry 5",
            "no id: named by position; nullFlavored code keeps its text",
            |r| {
                r.codes.is_empty()
                    && r.name.as_deref() == Some("Fish oil 1000 mg capsule")
                    && r.dose.is_none()
                    && r.route.is_none()
                    && r.problems.is_empty()
            },
        ),
        (
            "r11-ccd.xml",
            "a1b2c3d4-0000-4000-8000-000000000001",
            "prefixed elements; NDC code, RxNorm translation",
            |r| {
                r.codes.iter().map(|c| c.system.clone()).collect::<Vec<_>>()
                    == vec![CodeSystem::Ndc, CodeSystem::RxNorm]
                    && r.name.as_deref() == Some("Norvasc 5 mg tablet")
            },
        ),
        (
            "r11-ccd.xml",
            "a1b2c3d4-0000-4000-8000-000000000001",
            "institution-specified period",
            |r| r.frequency.as_deref() == Some("every 12 h (institution specified)"),
        ),
        (
            "r11-ccd.xml",
            "a1b2c3d4-0000-4000-8000-000000000001",
            "a list item reference is a row, not a sig",
            |r| r.directions.is_empty(),
        ),
        (
            "r11-ccd.xml",
            "a1b2c3d4-0000-4000-8000-000000000002",
            "codeSystemName alone; other OIDs kept",
            |r| {
                r.codes[0].system == CodeSystem::Ndc
                    && r.codes[1].system_original == "2.16.840.1.113883.6.314"
            },
        ),
        (
            "r11-ccd.xml",
            "a1b2c3d4-0000-4000-8000-000000000002",
            "aborted is stopped; dose range",
            |r| r.status.as_deref() == Some("stopped") && r.dose.as_deref() == Some("1 - 2"),
        ),
        (
            "r21-discharge-summary.xml",
            "5c0b1a3e-0000-4000-8000-00000000dm01",
            "inside a Discharge Medication act",
            |r| {
                r.section.as_deref() == Some("Discharge Medications")
                    && r.frequency.as_deref() == Some("every 1 d")
                    && r.codes.len() == 2
            },
        ),
        (
            "r21-discharge-summary.xml",
            "5c0b1a3e-0000-4000-8000-00000000ma01",
            "administered once: TS start",
            |r| {
                r.section.as_deref() == Some("Medications Administered")
                    && r.start.as_deref() == Some("202403020800-0500")
                    && r.dose.as_deref() == Some("1 g")
            },
        ),
    ];
    for (file, id, what, check) in rows {
        let doc = read(file);
        let record = doc
            .records
            .iter()
            .find(|r| r.source.as_ref().and_then(|s| s.id.as_deref()) == Some(*id))
            .unwrap_or_else(|| panic!("{file}: no record {id}"));
        assert!(check(record), "{file} {id}: {what}\n{record:#?}");
    }
}

#[test]
fn what_yields_no_record_says_why() {
    // (file, source kind or none, words of the reason)
    let rows = [
        (
            "r21-ccd.xml",
            Some("substanceAdministration"),
            "negated: the document says the patient does not take Ibuprofen 200 mg tablet",
        ),
        (
            "no-known-medications.xml",
            None,
            "negated: the document says the patient takes no medications",
        ),
        ("section-null-flavor.xml", None, "nullFlavor NI"),
        (
            "no-medications-section.xml",
            None,
            "has no medications section",
        ),
    ];
    for (file, kind, words) in rows {
        let doc = read(file);
        let out = &doc.left_out[0];
        assert_eq!(out.source.as_ref().map(|s| s.kind.as_str()), kind, "{file}");
        assert!(out.reason.contains(words), "{file}: {}", out.reason);
    }
    let narrative = read("narrative-only.xml");
    assert!(
        narrative.unreadable[0]
            .reason
            .contains("no structured entries")
    );
    assert!(
        narrative.unreadable[0]
            .excerpt
            .contains("Warfarin 5 mg tablet")
    );
}

#[test]
fn activity_rules() {
    type Check = fn(&MedRecord) -> bool;
    // (rule, the activity's attributes, its inner elements, its drug code, check)
    let rows: &[(&str, &str, &str, &str, Check)] = &[
        (
            "held is on-hold",
            r#"moodCode="EVN""#,
            r#"<statusCode code="held"/>"#,
            LISINOPRIL,
            |r| r.status.as_deref() == Some("on-hold"),
        ),
        (
            "nullified is entered-in-error",
            r#"moodCode="EVN""#,
            r#"<statusCode code="nullified"/>"#,
            LISINOPRIL,
            |r| r.status.as_deref() == Some("entered-in-error"),
        ),
        (
            "suspended is on-hold",
            r#"moodCode="INT""#,
            r#"<statusCode code="suspended"/>"#,
            LISINOPRIL,
            |r| r.status.as_deref() == Some("on-hold"),
        ),
        ("no moodCode reads as EVN", "", "", LISINOPRIL, |r| {
            r.codes.len() == 1
        }),
        (
            "negationInd false is taken",
            r#"moodCode="EVN" negationInd="false""#,
            "",
            LISINOPRIL,
            |r| r.codes.len() == 1,
        ),
        (
            "period range",
            r#"moodCode="EVN""#,
            r#"<effectiveTime xsi:type="PIVL_TS"><period><low value="4" unit="h"/><high value="6" unit="h"/></period></effectiveTime>"#,
            LISINOPRIL,
            |r| r.frequency.as_deref() == Some("every 4-6 h"),
        ),
        (
            "bedtime",
            r#"moodCode="EVN""#,
            r#"<effectiveTime xsi:type="EIVL_TS"><event code="HS"/></effectiveTime>"#,
            LISINOPRIL,
            |r| r.frequency.as_deref() == Some("HS (at bedtime)"),
        ),
        (
            "center of an interval is the start",
            r#"moodCode="EVN""#,
            r#"<effectiveTime xsi:type="IVL_TS"><center value="20200101"/></effectiveTime>"#,
            LISINOPRIL,
            |r| r.start.as_deref() == Some("20200101"),
        ),
        (
            "a dose with a unit ignores the unit code",
            r#"moodCode="EVN""#,
            r#"<doseQuantity value="10" unit="mg"/><administrationUnitCode displayName="Tablet"/>"#,
            LISINOPRIL,
            |r| r.dose.as_deref() == Some("10 mg"),
        ),
        (
            "display name when there is no original text",
            r#"moodCode="EVN""#,
            "",
            LISINOPRIL,
            |r| r.name.as_deref() == Some("lisinopril 10 MG Oral Tablet"),
        ),
        (
            "inline original text",
            r#"moodCode="EVN""#,
            "",
            r#"<code code="1" codeSystem="2.16.840.1.113883.6.88"><originalText>Zestril 10</originalText></code>"#,
            |r| r.name.as_deref() == Some("Zestril 10"),
        ),
        (
            "material name alone",
            r#"moodCode="EVN""#,
            "",
            "<name>Aspirin 81 mg</name>",
            |r| r.name.as_deref() == Some("Aspirin 81 mg") && r.codes.is_empty(),
        ),
        (
            "nullFlavored translation is no code",
            r#"moodCode="EVN""#,
            "",
            r#"<code code="104377" codeSystem="2.16.840.1.113883.6.88"><translation nullFlavor="UNK" codeSystem="2.16.840.1.113883.6.69"/></code>"#,
            |r| r.codes.len() == 1,
        ),
        (
            "no drug at all is a problem",
            r#"moodCode="EVN""#,
            "",
            r#"<code nullFlavor="UNK"/>"#,
            |r| r.problems.iter().any(|p| p.kind == ProblemKind::NoDrug),
        ),
        (
            "a dangling reference is a problem",
            r#"moodCode="EVN""#,
            "",
            r##"<code code="1" codeSystem="2.16.840.1.113883.6.88"><originalText><reference value="#nowhere"/></originalText></code>"##,
            |r| {
                r.problems.iter().any(|p| {
                    p.kind == ProblemKind::UnresolvedReference && p.detail.contains("#nowhere")
                })
            },
        ),
        (
            "inline sig text",
            r#"moodCode="EVN""#,
            "<text>Take two at night</text>",
            LISINOPRIL,
            |r| r.directions == ["Take two at night"],
        ),
        (
            "an empty material names no drug",
            r#"moodCode="EVN""#,
            "",
            "",
            |r| r.problems.iter().any(|p| p.kind == ProblemKind::NoDrug),
        ),
    ];
    for (rule, attrs, inner, code, check) in rows {
        let record = one(&meds("", &activity(attrs, inner, code)));
        assert!(check(&record), "{rule}\n{record:#?}");
    }
}

#[test]
fn negated_and_other_moods_are_left_out() {
    // (rule, attributes, drug code, reason words, named)
    let rows = [
        (
            "negated drug",
            r#"moodCode="EVN" negationInd="true""#,
            LISINOPRIL,
            "does not take lisinopril 10 MG Oral Tablet",
            true,
        ),
        (
            "negated INT",
            r#"moodCode="INT" negationInd="TRUE""#,
            LISINOPRIL,
            "does not take",
            true,
        ),
        (
            "negated, no code, 'no medications' text",
            r#"moodCode="EVN" negationInd="true""#,
            r#"<code nullFlavor="NI"><originalText>No current medications</originalText></code>"#,
            "takes no medications",
            false,
        ),
        (
            "a request mood",
            r#"moodCode="RQO""#,
            LISINOPRIL,
            "moodCode RQO",
            true,
        ),
    ];
    for (rule, attrs, code, words, named) in rows {
        let doc = parse(meds("", &activity(attrs, "", code)).as_bytes())
            .unwrap_or_else(|e| panic!("{rule}: {e}"));
        assert!(doc.records.is_empty(), "{rule}");
        assert_eq!(doc.left_out.len(), 1, "{rule}");
        assert!(
            doc.left_out[0].reason.contains(words),
            "{rule}: {}",
            doc.left_out[0].reason
        );
        assert_eq!(doc.left_out[0].source.is_some(), named, "{rule}");
    }
}

#[test]
fn sections_are_found_by_template_or_code() {
    let act = activity(r#"moodCode="EVN""#, "", LISINOPRIL);
    // (rule, section open tag and identification, label or none)
    let rows = [
        (
            "R2.1 template",
            r#"<templateId root="2.16.840.1.113883.10.20.22.2.1.1" extension="2014-06-09"/>"#,
            Some("Medications"),
        ),
        (
            "code alone",
            r#"<code code="10160-0"/>"#,
            Some("Medications"),
        ),
        (
            "admission medications",
            r#"<code code="42346-7"/>"#,
            Some("Admission Medications"),
        ),
        (
            "R2.1 discharge code",
            r#"<code code="75311-1"/>"#,
            Some("Discharge Medications"),
        ),
        (
            "administered template",
            r#"<templateId root="2.16.840.1.113883.10.20.22.2.38"/>"#,
            Some("Medications Administered"),
        ),
        (
            "immunizations are not medications",
            r#"<code code="11369-6"/>"#,
            None,
        ),
        (
            "plan of treatment is not read",
            r#"<code code="18776-5"/>"#,
            None,
        ),
    ];
    for (rule, id, label) in rows {
        let xml = ccd(&format!(
            "<section>{id}<text/><entry>{act}</entry></section>"
        ));
        let doc = parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{rule}: {e}"));
        assert_eq!(
            doc.records.first().and_then(|r| r.section.as_deref()),
            label,
            "{rule}"
        );
    }
    // A section titled "Medications" under another code is not read, and
    // the document does not pass for one that lists none.
    let loose = ccd(&format!(
        r#"<section><code code="99999-9"/><title>Current Medications</title><entry>{act}</entry></section>"#
    ));
    let doc = parse(loose.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert!(doc.records.is_empty());
    assert_eq!(doc.unreadable.len(), 1);
    assert!(doc.unreadable[0].reason.contains("not coded as one"));
}

#[test]
fn empty_sections_say_none_only_when_their_text_does() {
    // (narrative, unreadable?)
    let rows = [
        ("", false),
        ("No known medications.", false),
        ("Patient is not taking any medications", false),
        ("None", false),
        ("<table><tr><td>Aspirin 81 mg daily</td></tr></table>", true),
        ("No known medication allergies", true),
    ];
    for (text, unreadable) in rows {
        let xml = ccd(&format!(
            r#"<section><code code="10160-0"/><text>{text}</text></section>"#
        ));
        let doc = parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(!doc.unreadable.is_empty(), unreadable, "{text:?}");
        assert_eq!(doc.left_out.len(), usize::from(!unreadable), "{text:?}");
    }
}

#[test]
fn the_excerpt_is_the_activity_pretty_printed_with_its_narrative_row() {
    let doc = read("r21-ccd.xml");
    let excerpt = &doc.records[0].excerpt;
    assert!(
        excerpt.starts_with(
            "<substanceAdministration classCode=\"SBADM\" moodCode=\"EVN\">\n  <templateId"
        ),
        "{excerpt}"
    );
    assert!(
        excerpt.contains("<effectiveTime xsi:type=\"IVL_TS\">\n    <low value=\"20230115\"/>"),
        "{excerpt}"
    );
    assert!(!excerpt.contains("<!-- 1."), "comments are left out");
    assert!(
        excerpt.contains("<!-- the narrative it references -->\n<tr ID=\"med-1\">"),
        "{excerpt}"
    );
    assert!(excerpt.ends_with("</tr>\n"));
    // A prefixed document prints unprefixed v3 names; a list item is the row.
    let r11 = read("r11-ccd.xml");
    assert!(
        r11.records[0].excerpt.contains("<item ID=\"m1\">"),
        "{}",
        r11.records[0].excerpt
    );
    // Without excerpts, nothing else changes.
    let bytes = sample("r21-ccd.xml");
    let without =
        parse_with(&bytes, ParseOptions { excerpts: false }).unwrap_or_else(|e| panic!("{e}"));
    assert!(without.records.iter().all(|r| r.excerpt.is_empty()));
    let mut with = doc.clone();
    with.records.iter_mut().for_each(|r| r.excerpt.clear());
    assert_eq!(with, without);
}

#[test]
fn bad_documents_are_refused_with_their_position() {
    let deep = format!(
        r#"<ClinicalDocument xmlns="urn:hl7-org:v3">{}{}</ClinicalDocument>"#,
        "<a>".repeat(300),
        "</a>".repeat(300)
    );
    // (rule, bytes, variant, line)
    let rows: Vec<(&str, Vec<u8>, &str, Option<usize>)> = vec![
        ("a DTD", sample("dtd.xml"), "Dtd", Some(2)),
        (
            "mismatched tags",
            sample("malformed.xml"),
            "Malformed",
            Some(5),
        ),
        (
            "unstructured",
            sample("unstructured.xml"),
            "NoStructuredBody",
            Some(3),
        ),
        (
            "another v3 root",
            b"<?xml version=\"1.0\"?>\n<Observation xmlns=\"urn:hl7-org:v3\"/>".to_vec(),
            "NotCcda",
            Some(2),
        ),
        (
            "a ClinicalDocument outside v3",
            b"<ClinicalDocument/>".to_vec(),
            "NotCcda",
            Some(1),
        ),
        ("too deep", deep.into_bytes(), "TooDeep", Some(1)),
        ("empty", b"  ".to_vec(), "Empty", None),
        ("binary", b"<Clin\0icalDocument/>".to_vec(), "Binary", None),
        (
            "garbage after the root",
            b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>\ntrailing".to_vec(),
            "Malformed",
            Some(2),
        ),
    ];
    for (rule, bytes, variant, line) in rows {
        let err = parse(&bytes)
            .err()
            .unwrap_or_else(|| panic!("{rule}: accepted"));
        let (found, at) = match &err {
            ParseError::Dtd { at } => ("Dtd", Some(at.line)),
            ParseError::Malformed { at, .. } => ("Malformed", Some(at.line)),
            ParseError::NoStructuredBody { at, .. } => ("NoStructuredBody", Some(at.line)),
            ParseError::NotCcda { at, .. } => ("NotCcda", Some(at.line)),
            ParseError::TooDeep { at, .. } => ("TooDeep", Some(at.line)),
            ParseError::Empty => ("Empty", None),
            ParseError::Binary { .. } => ("Binary", None),
            other => panic!("{rule}: {other}"),
        };
        assert_eq!((found, at), (variant, line), "{rule}: {err}");
    }
    let message = parse(&sample("malformed.xml"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.starts_with("malformed XML at 5:"), "{message}");
}

#[test]
fn latin1_documents_are_decoded() {
    let text = ccd(&format!(
        r#"<section><code code="10160-0"/><text/><entry>{}</entry></section>"#,
        activity(
            r#"moodCode="EVN""#,
            "<text>\u{bd} tablet</text>",
            LISINOPRIL
        )
    ))
    .replace(
        "<?xml version=\"1.0\"?>",
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
    );
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
    let doc = parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc.records[0].directions, ["\u{bd} tablet"]);
}

#[test]
fn sniff_tells_a_ccda_from_a_ccr() {
    let rows: &[(&[u8], DocFormat)] = &[
        (b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\">", DocFormat::Ccda),
        (b"<?xml version=\"1.0\"?>\n<!-- c -->\n<cda:ClinicalDocument xmlns:cda=\"urn:hl7-org:v3\">", DocFormat::Ccda),
        (b"<ClinicalDocument>", DocFormat::Ccr),
        (b"<ContinuityOfCareRecord xmlns=\"urn:astm-org:CCR\">", DocFormat::Ccr),
        (b"<Bundle xmlns=\"http://hl7.org/fhir\">", DocFormat::FhirXml),
    ];
    for (bytes, want) in rows {
        assert_eq!(
            sniff(bytes).ok(),
            Some(*want),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    for file in ["r21-ccd.xml", "r11-ccd.xml", "no-known-medications.xml"] {
        assert_eq!(sniff(&sample(file)).ok(), Some(DocFormat::Ccda), "{file}");
    }
}

#[test]
fn no_prefix_of_a_document_panics() {
    let bytes = sample("r21-ccd.xml");
    for end in (0..bytes.len()).step_by(97) {
        let _ = parse(&bytes[..end]);
    }
}

#[test]
fn the_patient_is_the_record_target() {
    assert_eq!(
        read("r21-ccd.xml").patient_ref.as_deref(),
        Some("ccda-r21-1")
    );
    let two = ccd("<section/>").replace(
        "<component><structuredBody>",
        r#"<recordTarget><patientRole><id root="1.2.3" extension="p2"/></patientRole></recordTarget><component><structuredBody>"#,
    );
    let doc = parse(two.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        doc.problems
            .iter()
            .any(|p| p.kind == ProblemKind::SeveralPatients && p.detail.contains("p1, p2"))
    );
}
