//! The documents a patient gets when the data directory has none for them:
//! a deterministic pick of distinct drugs from the catalog (the same patient
//! id always gives the same list, on any machine), written as a CCR, as a
//! C-CDA R2.1 CCD and as FHIR MedicationRequests. Pure: no I/O, no clock.

use std::fmt::Write as _;

use chrono::{Days, NaiveDate};
use serde_json::{Value, json};

use super::catalog::{Drug, catalog};

/// A remote patient id as the sandbox accepts it: 1 to 64 characters of
/// `A-Za-z0-9._-`, not starting with a dot. It names files in the data
/// directory (`ccr/{id}.xml`), so nothing else may get through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RemotePatient(String);

impl RemotePatient {
    pub fn parse(raw: &str) -> Result<RemotePatient, &'static str> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if raw.is_empty() || raw.len() > 64 {
            Err("a patient id has 1 to 64 characters")
        } else if !raw.chars().all(ok_char) || raw.starts_with('.') {
            Err("a patient id may hold only A-Z a-z 0-9 . _ - and may not start with a dot")
        } else {
            Ok(RemotePatient(raw.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One generated medication of a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Med {
    pub drug: &'static Drug,
    /// The NDC as this document writes it.
    pub ndc: String,
    /// CCRDataObjectID and FHIR resource id.
    pub id: String,
    pub frequency: &'static str,
    pub sig: String,
    pub start: NaiveDate,
    pub prescribed: NaiveDate,
}

/// SplitMix64, seeded from the patient id by FNV-1a: stable across
/// platforms and releases, unlike `std`'s hashers.
struct Rng(u64);

impl Rng {
    fn for_patient(patient: &RemotePatient) -> Rng {
        let hash = patient.0.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Rng(hash)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const FREQUENCIES: [&str; 5] = [
    "once daily",
    "twice daily",
    "every morning",
    "at bedtime",
    "three times daily",
];

/// `count` distinct drugs for `patient` (at most the catalog's size).
pub(crate) fn medications(patient: &RemotePatient, count: usize) -> Vec<Med> {
    let drugs = catalog();
    let mut rng = Rng::for_patient(patient);
    let mut order: Vec<usize> = (0..drugs.len()).collect();
    let count = count.min(drugs.len());
    let tag = format!("{:08x}", rng.next() as u32);
    let epoch = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or_default();
    (0..count)
        .map(|i| {
            // A partial Fisher-Yates shuffle: the first `count` picks.
            let j = i + rng.below(order.len() - i);
            order.swap(i, j);
            let drug = &drugs[order[i]];
            let frequency = FREQUENCIES[rng.below(FREQUENCIES.len())];
            let start = epoch + Days::new(rng.below(3650) as u64);
            let prescribed = start - Days::new(rng.below(5) as u64);
            Med {
                drug,
                ndc: drug.ndc_text(rng.below(4) == 0),
                id: format!("{tag}-{:03}", i + 1),
                frequency,
                sig: format!("Take 1 {} by mouth {frequency}", drug.unit),
                start,
                prescribed,
            }
        })
        .collect()
}

/// The CCR document (ASTM E2369) listing `meds`, one `Medication` each.
pub(crate) fn ccr(patient: &RemotePatient, meds: &[Med]) -> String {
    let p = xml_escape(patient.as_str());
    let mut out = String::with_capacity(512 + meds.len() * 1400);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<ContinuityOfCareRecord xmlns=\"urn:astm-org:CCR\">\n");
    let _ = writeln!(
        out,
        "  <CCRDocumentObjectID>sandbox-{p}</CCRDocumentObjectID>"
    );
    let _ = writeln!(out, "  <Patient>\n    <ActorID>{p}</ActorID>\n  </Patient>");
    out.push_str("  <Body>\n    <Medications>\n");
    for med in meds {
        ccr_medication(&mut out, med);
    }
    out.push_str("    </Medications>\n  </Body>\n");
    let _ = writeln!(
        out,
        "  <Actors>\n    <Actor>\n      <ActorObjectID>{p}</ActorObjectID>\n    </Actor>\n  </Actors>"
    );
    out.push_str("</ContinuityOfCareRecord>\n");
    out
}

fn ccr_medication(out: &mut String, med: &Med) {
    let drug = med.drug;
    let e = xml_escape;
    let _ = write!(
        out,
        "      <Medication>
        <CCRDataObjectID>{id}</CCRDataObjectID>
        <DateTime>
          <Type><Text>Start Date</Text></Type>
          <ExactDateTime>{start}</ExactDateTime>
        </DateTime>
        <DateTime>
          <Type><Text>Prescription Date</Text></Type>
          <ExactDateTime>{prescribed}</ExactDateTime>
        </DateTime>
        <Type><Text>Medication</Text></Type>
        <Status><Text>Active</Text></Status>
        <Product>
          <ProductName>
            <Text>{name}</Text>
            <Code>
              <Value>{ndc}</Value>
              <CodingSystem>NDC</CodingSystem>
            </Code>
          </ProductName>
          <BrandName><Text>{brand}</Text></BrandName>
",
        id = e(&med.id),
        start = med.start,
        prescribed = med.prescribed,
        name = e(&drug.name),
        ndc = e(&med.ndc),
        brand = e(&drug.brand),
    );
    for (_, value, unit) in &drug.strengths {
        let _ = write!(
            out,
            "          <Strength>
            <Value>{}</Value>
            <Units><Unit>{}</Unit></Units>
          </Strength>
",
            e(value),
            e(unit)
        );
    }
    let _ = write!(
        out,
        "          <Form><Text>{form}</Text></Form>
        </Product>
        <Directions>
          <Direction>
            <Description><Text>{sig}</Text></Description>
            <Dose>
              <Value>1</Value>
              <Units><Unit>{unit}</Unit></Units>
            </Dose>
            <Route><Text>Oral</Text></Route>
            <Frequency><Value>{frequency}</Value></Frequency>
          </Direction>
        </Directions>
      </Medication>
",
        form = e(&drug.form),
        sig = e(&med.sig),
        unit = drug.unit,
        frequency = med.frequency,
    );
}

/// The Medication resource of one medication (US Core style: a resource
/// of its own, served at `Medication/{id}`), version 1.
pub(crate) fn medication(patient: &RemotePatient, med: &Med) -> Value {
    let mut request = medication_request(patient, med);
    let mut drug = request["contained"][0].take();
    drug["id"] = json!(medication_id(med));
    drug["meta"] = json!({"versionId": "1"});
    drug
}

/// The id of a medication's own Medication resource.
pub(crate) fn medication_id(med: &Med) -> String {
    format!("{}-drug", med.id)
}

/// A MedicationRequest that names its drug only by `medicationReference`
/// to `Medication/{id}` (what EHRs answer to a US Core search).
pub(crate) fn medication_request_by_reference(patient: &RemotePatient, med: &Med) -> Value {
    let mut request = medication_request(patient, med);
    if let Some(o) = request.as_object_mut() {
        o.remove("contained");
    }
    request["medicationReference"] = json!({
        "reference": format!("Medication/{}", medication_id(med)),
        "display": med.drug.name
    });
    request
}

/// A MedicationStatement about the same drug, by the same reference.
pub(crate) fn medication_statement_by_reference(patient: &RemotePatient, med: &Med) -> Value {
    json!({
        "resourceType": "MedicationStatement",
        "id": format!("{}-statement", med.id),
        "status": "active",
        "medicationReference": {
            "reference": format!("Medication/{}", medication_id(med)),
            "display": med.drug.name
        },
        "subject": {"reference": format!("Patient/{}", patient.as_str())},
        "dosage": [{"text": med.sig}]
    })
}

/// The C-CDA R2.1 CCD listing `meds` in its Medications section: one
/// Medication Activity each (NDC coded, its name and sig in the narrative
/// table it references, a Free Text Sig, the start as IVL_TS).
pub(crate) fn ccda(patient: &RemotePatient, meds: &[Med]) -> String {
    let p = xml_escape(patient.as_str());
    let mut out = String::with_capacity(2048 + meds.len() * 2400);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<ClinicalDocument xmlns=\"urn:hl7-org:v3\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n");
    out.push_str("  <typeId root=\"2.16.840.1.113883.1.3\" extension=\"POCD_HD000040\"/>\n");
    out.push_str(
        "  <templateId root=\"2.16.840.1.113883.10.20.22.1.2\" extension=\"2015-08-01\"/>\n",
    );
    let _ = writeln!(
        out,
        "  <id root=\"2.16.840.1.113883.19.5.99999.1\" extension=\"sandbox-{p}\"/>"
    );
    out.push_str("  <code code=\"34133-9\" codeSystem=\"2.16.840.1.113883.6.1\" displayName=\"Summarization of Episode Note\"/>\n");
    out.push_str("  <title>Sandbox Continuity of Care Document</title>\n");
    let _ = writeln!(
        out,
        "  <recordTarget><patientRole><id root=\"2.16.840.1.113883.19.5.99999.2\" extension=\"{p}\"/></patientRole></recordTarget>"
    );
    out.push_str("  <component><structuredBody><component><section>\n");
    out.push_str(
        "    <templateId root=\"2.16.840.1.113883.10.20.22.2.1.1\" extension=\"2014-06-09\"/>\n",
    );
    out.push_str("    <code code=\"10160-0\" codeSystem=\"2.16.840.1.113883.6.1\" displayName=\"History of Medication use Narrative\"/>\n");
    out.push_str("    <title>MEDICATIONS</title>\n    <text><table><tbody>\n");
    for (i, med) in meds.iter().enumerate() {
        let _ = writeln!(
            out,
            "      <tr ID=\"med-{i}\"><td ID=\"med-{i}-name\">{name}</td><td ID=\"med-{i}-sig\">{sig}</td><td>{start}</td><td>Active</td></tr>",
            name = xml_escape(&med.drug.name),
            sig = xml_escape(&med.sig),
            start = med.start,
        );
    }
    out.push_str("    </tbody></table></text>\n");
    for (i, med) in meds.iter().enumerate() {
        ccda_activity(&mut out, i, med);
    }
    out.push_str("  </section></component></structuredBody></component>\n</ClinicalDocument>\n");
    out
}

fn ccda_activity(out: &mut String, i: usize, med: &Med) {
    let drug = med.drug;
    let e = xml_escape;
    let _ = write!(
        out,
        "    <entry typeCode=\"DRIV\">
      <substanceAdministration classCode=\"SBADM\" moodCode=\"EVN\">
        <templateId root=\"2.16.840.1.113883.10.20.22.4.16\" extension=\"2014-06-09\"/>
        <id root=\"2.16.840.1.113883.19.5.99999.3\" extension=\"{id}\"/>
        <text><reference value=\"#med-{i}\"/></text>
        <statusCode code=\"active\"/>
        <effectiveTime xsi:type=\"IVL_TS\"><low value=\"{start}\"/></effectiveTime>
        <routeCode code=\"C38288\" codeSystem=\"2.16.840.1.113883.3.26.1.1\" displayName=\"Oral\"/>
        <doseQuantity value=\"1\"/>
        <administrationUnitCode displayName=\"{unit}\"/>
        <consumable>
          <manufacturedProduct classCode=\"MANU\">
            <templateId root=\"2.16.840.1.113883.10.20.22.4.23\" extension=\"2014-06-09\"/>
            <manufacturedMaterial>
              <code code=\"{ndc}\" codeSystem=\"2.16.840.1.113883.6.69\" codeSystemName=\"NDC\" displayName=\"{name}\">
                <originalText><reference value=\"#med-{i}-name\"/></originalText>
              </code>
              <name>{brand}</name>
            </manufacturedMaterial>
          </manufacturedProduct>
        </consumable>
        <entryRelationship typeCode=\"COMP\">
          <substanceAdministration classCode=\"SBADM\" moodCode=\"EVN\">
            <templateId root=\"2.16.840.1.113883.10.20.22.4.147\"/>
            <text><reference value=\"#med-{i}-sig\"/></text>
            <consumable><manufacturedProduct><manufacturedLabeledDrug nullFlavor=\"NA\"/></manufacturedProduct></consumable>
          </substanceAdministration>
        </entryRelationship>
        <entryRelationship typeCode=\"REFR\">
          <supply classCode=\"SPLY\" moodCode=\"INT\">
            <templateId root=\"2.16.840.1.113883.10.20.22.4.17\" extension=\"2014-06-09\"/>
            <author><time value=\"{prescribed}\"/></author>
          </supply>
        </entryRelationship>
      </substanceAdministration>
    </entry>
",
        id = e(&med.id),
        start = med.start.format("%Y%m%d"),
        prescribed = med.prescribed.format("%Y%m%d"),
        unit = drug.unit,
        ndc = e(&med.ndc),
        name = e(&drug.name),
        brand = e(&drug.brand),
    );
}

/// The FHIR R4 MedicationRequest for one medication: the drug as a
/// contained Medication (NDC, form, ingredient strengths), the sig as a
/// Dosage, the start as the dispense validity period.
pub(crate) fn medication_request(patient: &RemotePatient, med: &Med) -> Value {
    let drug = med.drug;
    let ingredients: Vec<Value> = drug
        .strengths
        .iter()
        .map(|(substance, value, unit)| {
            let number = value
                .parse::<serde_json::Number>()
                .map_or_else(|_| json!(value), Value::Number);
            json!({
                "itemCodeableConcept": {"text": substance},
                "isActive": true,
                "strength": {
                    "numerator": {"value": number, "unit": unit},
                    "denominator": {"value": 1, "unit": drug.unit}
                }
            })
        })
        .collect();
    json!({
        "resourceType": "MedicationRequest",
        "id": med.id,
        "contained": [{
            "resourceType": "Medication",
            "id": "med",
            "code": {
                "coding": [{
                    "system": "http://hl7.org/fhir/sid/ndc",
                    "code": med.ndc,
                    "display": drug.name
                }],
                "text": drug.name
            },
            "form": {"text": drug.form},
            "ingredient": ingredients
        }],
        "status": "active",
        "intent": "order",
        "medicationReference": {"reference": "#med", "display": drug.name},
        "subject": {"reference": format!("Patient/{}", patient.as_str())},
        "authoredOn": med.prescribed.to_string(),
        "dosageInstruction": [{
            "text": med.sig,
            "timing": {"code": {"text": med.frequency}},
            "route": {"text": "Oral"},
            "doseAndRate": [{"doseQuantity": {"value": 1, "unit": drug.unit}}]
        }],
        "dispenseRequest": {"validityPeriod": {"start": med.start.to_string()}}
    })
}

/// Escapes text for an XML element's content or an attribute value.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict::MemoryDictionary;
    use crate::dict::fda::{read_packages, read_products};
    use crate::normalize::{CodeMappings, Options, normalize};
    use crate::parse::{DocFormat, ParsedDocument, parse};

    fn patient(id: &str) -> RemotePatient {
        RemotePatient::parse(id).expect("valid id")
    }

    fn sample_dictionary() -> MemoryDictionary {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/ndc");
        let products = std::fs::read(format!("{dir}/product.txt")).expect("product.txt");
        let packages = std::fs::read(format!("{dir}/package.txt")).expect("package.txt");
        let (products, _) = read_products(&products).expect("products");
        let (packages, _) = read_packages(&packages).expect("packages");
        MemoryDictionary::new(&products, &packages)
    }

    /// Every record maps through the sample dictionary, and the regimen
    /// raises no exception at all: distinct, known, well-formed drugs.
    fn assert_clean(doc: &ParsedDocument, meds: &[Med]) {
        assert_eq!(doc.records.len(), meds.len());
        let regimen = normalize(
            doc,
            &sample_dictionary(),
            &CodeMappings::new(),
            &Options {
                max_regimen_items: 200,
                ..Options::default()
            },
        );
        assert_eq!(regimen.items.len(), meds.len());
        assert!(regimen.flags.is_empty(), "{:?}", regimen.flags);
        for (item, med) in regimen.items.iter().zip(meds) {
            assert_eq!(item.ndc11, Some(med.drug.ndc11));
            assert_eq!(item.status.as_str(), "active");
            assert_eq!(item.start.as_deref(), Some(med.start.to_string().as_str()));
            assert_eq!(item.sig.as_deref(), Some(med.sig.as_str()));
            assert!(item.strength.is_some() && item.form.is_some() && item.route.is_some());
        }
    }

    #[test]
    fn patient_ids_that_could_name_another_file_are_refused() {
        for bad in [
            "",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "a b",
            "p%2F",
            &"x".repeat(65),
        ] {
            assert!(RemotePatient::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["p1", "demo-ccr-1", "A.b_c-9", &"x".repeat(64)] {
            assert!(RemotePatient::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn the_same_patient_always_gets_the_same_distinct_drugs() {
        let a = medications(&patient("p-1"), 20);
        assert_eq!(a, medications(&patient("p-1"), 20));
        assert_ne!(a, medications(&patient("p-2"), 20));
        let mut ndcs: Vec<_> = a.iter().map(|m| m.drug.ndc11).collect();
        ndcs.sort();
        ndcs.dedup();
        assert_eq!(ndcs.len(), 20);
        let ids: std::collections::HashSet<_> = a.iter().map(|m| &m.id).collect();
        assert_eq!(ids.len(), 20);
    }

    #[test]
    fn the_ccr_parses_with_one_mapped_medication_per_drug() {
        for id in ["p-1", "demo-ccr-1"] {
            let p = patient(id);
            let meds = medications(&p, 20);
            let doc = parse(ccr(&p, &meds).as_bytes(), DocFormat::Ccr).expect("CCR parses");
            assert_eq!(doc.patient_ref.as_deref(), Some(id));
            assert_clean(&doc, &meds);
        }
    }

    #[test]
    fn the_ccda_parses_with_one_mapped_medication_per_drug() {
        let p = patient("p-ccda");
        let meds = medications(&p, 20);
        let doc = parse(ccda(&p, &meds).as_bytes(), DocFormat::Ccda).expect("C-CDA parses");
        assert_eq!(doc.patient_ref.as_deref(), Some("p-ccda"));
        assert_eq!(doc.records.len(), meds.len());
        let regimen = normalize(
            &doc,
            &sample_dictionary(),
            &CodeMappings::new(),
            &Options {
                max_regimen_items: 200,
                ..Options::default()
            },
        );
        assert!(regimen.flags.is_empty(), "{:?}", regimen.flags);
        for (item, med) in regimen.items.iter().zip(&meds) {
            assert_eq!(item.ndc11, Some(med.drug.ndc11));
            assert_eq!(item.status.as_str(), "active");
            let start = med.start.format("%Y%m%d").to_string();
            assert_eq!(item.start.as_deref(), Some(start.as_str()));
            assert_eq!(item.sig.as_deref(), Some(med.sig.as_str()));
        }
    }

    #[test]
    fn the_fhir_requests_parse_with_one_mapped_record_per_drug() {
        let p = patient("p-7");
        let meds = medications(&p, 25);
        let entries: Vec<Value> = meds
            .iter()
            .map(|m| json!({"resource": medication_request(&p, m)}))
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
        let bytes = serde_json::to_vec(&bundle).expect("serialize");
        let doc = parse(&bytes, DocFormat::FhirJson).expect("FHIR parses");
        assert_eq!(doc.patient_ref.as_deref(), Some("Patient/p-7"));
        assert_clean(&doc, &meds);
    }
}
