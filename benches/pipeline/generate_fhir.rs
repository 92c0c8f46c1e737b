//! An EHR-shaped FHIR R4 searchset (synthetic, no real patient data): each
//! MedicationRequest carries what an EHR export does and the lean
//! `generate::fhir` lacks (narrative `text.div`, `meta`, several
//! identifiers, extensions, a contained Medication with two codings, a full
//! dosage with timing and doseAndRate, `dispenseRequest`, a requester with a
//! display), about 3 KB per entry. Most of those bytes are fields the
//! parser skips, which is where a typed reader should gain most over a
//! `serde_json::Value` tree.

const NDCS: [&str; 6] = [
    "0006-0106-54",
    "0143-9714-01",
    "0185-0104-01",
    "0087-6060-05",
    "68180-0513-01",
    "12345-6789-01",
];

const DRUGS: [&str; 6] = [
    "Lisinopril 10 MG Oral Tablet",
    "Metformin hydrochloride 500 MG Oral Tablet",
    "Atorvastatin 20 MG Oral Tablet",
    "Amlodipine 5 MG Oral Tablet",
    "Levothyroxine sodium 0.05 MG Oral Tablet",
    "Omeprazole 20 MG Delayed Release Oral Capsule",
];

/// A searchset Bundle with `n` EHR-shaped MedicationRequests.
pub fn ehr(n: usize) -> Vec<u8> {
    let mut s = String::with_capacity(n * 3400 + 512);
    s.push_str(r#"{"resourceType":"Bundle","id":"bench-ehr","meta":{"lastUpdated":"2024-05-01T10:00:00Z"},"type":"searchset","total":"#);
    s.push_str(&n.to_string());
    s.push_str(r#","link":[{"relation":"self","url":"https://ehr.example.org/fhir/MedicationRequest?patient=bench-patient&_count=1000"}],"entry":["#);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        let k = i % NDCS.len();
        let (ndc, drug) = (NDCS[k], DRUGS[k]);
        s.push_str(&format!(
            r##"{{"fullUrl":"https://ehr.example.org/fhir/MedicationRequest/rx{i}","resource":{{"resourceType":"MedicationRequest","id":"rx{i}","meta":{{"versionId":"{v}","lastUpdated":"2024-04-{d:02}T09:30:12.345Z","source":"#ehr-{i}","profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest"]}},"text":{{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p><b>{drug}</b></p><p>Take 1 tablet by mouth daily in the morning. Dispense 30 tablets, 3 refills. Ordered by Dr. Synthetic Prescriber on 2024-04-{d:02}.</p><table><tr><td>Status</td><td>active</td></tr><tr><td>Intent</td><td>order</td></tr></table></div>"}},"extension":[{{"url":"http://ehr.example.org/fhir/StructureDefinition/order-class","valueCoding":{{"system":"http://ehr.example.org/fhir/CodeSystem/order-class","code":"E-Prescribe","display":"E-Prescribe"}}}},{{"url":"http://ehr.example.org/fhir/StructureDefinition/pharmacy","valueReference":{{"reference":"Organization/pharm{p}","display":"Synthetic Pharmacy {p}"}}}}],"contained":[{{"resourceType":"Medication","id":"med{i}","code":{{"coding":[{{"system":"http://hl7.org/fhir/sid/ndc","code":"{ndc}","display":"{drug}"}},{{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"{rx}","display":"{drug}"}}],"text":"{drug}"}},"form":{{"coding":[{{"system":"http://snomed.info/sct","code":"385055001","display":"Tablet"}}],"text":"tablet"}}}}],"identifier":[{{"use":"usual","system":"urn:oid:1.2.840.114350.1.13.0.1.7.2.798268","value":"{i}"}},{{"use":"usual","system":"urn:oid:1.2.840.114350.1.13.0.1.7.3.798268.801","value":"{oid}:{i}"}},{{"use":"official","type":{{"text":"Prescription number"}},"system":"http://ehr.example.org/fhir/rx-number","value":"RX-{oid}"}}],"status":"active","intent":"order","category":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/medicationrequest-category","code":"community","display":"Community"}}],"text":"Community"}}],"medicationReference":{{"reference":"#med{i}","display":"{drug}"}},"subject":{{"reference":"Patient/bench-patient","display":"Patient, Bench"}},"encounter":{{"reference":"Encounter/enc{i}","identifier":{{"use":"usual","system":"urn:oid:1.2.840.114350.1.13.0.1.7.3.698084.8","value":"{i}"}},"display":"Office Visit"}},"authoredOn":"2024-04-{d:02}T09:30:00Z","requester":{{"reference":"Practitioner/dr{p}","type":"Practitioner","display":"Dr. Synthetic Prescriber {p}"}},"recorder":{{"reference":"Practitioner/dr{p}","display":"Dr. Synthetic Prescriber {p}"}},"reasonCode":[{{"coding":[{{"system":"http://snomed.info/sct","code":"38341003","display":"Hypertensive disorder"}}],"text":"Hypertension"}}],"courseOfTherapyType":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy","code":"continuous","display":"Continuous long term therapy"}}]}},"dosageInstruction":[{{"sequence":1,"text":"Take 1 tablet by mouth daily in the morning (variant {i})","patientInstruction":"Take in the morning with water","timing":{{"repeat":{{"boundsPeriod":{{"start":"2024-04-{d:02}"}},"frequency":1,"period":1,"periodUnit":"d","timeOfDay":["08:00:00"]}},"code":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation","code":"QD","display":"QD"}}],"text":"daily"}}}},"asNeededBoolean":false,"route":{{"coding":[{{"system":"http://snomed.info/sct","code":"26643006","display":"Oral route"}}],"text":"oral"}},"method":{{"text":"Take"}},"doseAndRate":[{{"type":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/dose-rate-type","code":"ordered","display":"Ordered"}}]}},"doseQuantity":{{"value":1,"unit":"tablet","system":"http://unitsofmeasure.org","code":"{{tbl}}"}}}}]}}],"dispenseRequest":{{"validityPeriod":{{"start":"2024-04-{d:02}","end":"2025-04-{d:02}"}},"numberOfRepeatsAllowed":3,"quantity":{{"value":30,"unit":"tablet","system":"http://unitsofmeasure.org","code":"{{tbl}}"}},"expectedSupplyDuration":{{"value":30,"unit":"day","system":"http://unitsofmeasure.org","code":"d"}},"performer":{{"reference":"Organization/pharm{p}","display":"Synthetic Pharmacy {p}"}}}},"substitution":{{"allowedBoolean":true}}}},"search":{{"mode":"match"}}}}"##,
            v = 1 + i % 5,
            d = 1 + i % 28,
            p = i % 40,
            rx = 300_000 + i,
            oid = 9_000_000 + i,
        ));
    }
    s.push_str("]}");
    s.into_bytes()
}
