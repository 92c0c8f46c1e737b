//! Generators for large synthetic documents (no real patient data): a CCR
//! with N medications and a FHIR R4 searchset Bundle with N
//! MedicationRequests. Drugs are drawn from a fixed list of NDCs (some in
//! the sample dictionary, some not) with varied sigs, so the pipeline does
//! its real work: parsing, NDC parsing, dictionary lookups, folding and
//! duplicate checks.

const NDCS: [&str; 12] = [
    "0006-0106-54",
    "0143-9714-01",
    "0185-0104-01",
    "0087-6060-05",
    "0071-0155-23",
    "0777-3105-02",
    "0777-3105-30",
    "00006010654",
    "0087606005",
    "68180-0513-01",
    "2501-813-16",
    "12345-6789-01",
];

const SIGS: [&str; 6] = [
    "Take 1 tablet by mouth once daily",
    "Take 1 tablet by mouth twice daily",
    "Take 2 tablets by mouth at bedtime",
    "Take 1 capsule by mouth every morning",
    "Take 1 tablet by mouth every 8 hours as needed for pain",
    "Take half a tablet by mouth daily",
];

/// A CCR document with `n` medications.
pub fn ccr(n: usize) -> Vec<u8> {
    let mut s = String::with_capacity(n * 900 + 1024);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ContinuityOfCareRecord xmlns=\"urn:astm-org:CCR\">\n");
    s.push_str("<CCRDocumentObjectID>bench</CCRDocumentObjectID><Patient><ActorID>bench-patient</ActorID></Patient>\n<Body>\n<Medications>\n");
    for i in 0..n {
        let ndc = NDCS[i % NDCS.len()];
        let sig = SIGS[(i / NDCS.len()) % SIGS.len()];
        s.push_str(&format!(
            "<Medication><CCRDataObjectID>MED{i}</CCRDataObjectID>\
<DateTime><Type><Text>Start Date</Text></Type><ExactDateTime>2024-01-{:02}T00:00:00Z</ExactDateTime></DateTime>\
<Status><Text>Active</Text></Status>\
<Product><ProductName><Text>Synthetic drug {i}</Text><Code><Value>{ndc}</Value><CodingSystem>NDC</CodingSystem></Code></ProductName>\
<BrandName><Text>Brand {i}</Text></BrandName><Strength><Value>{}</Value><Units><Unit>mg</Unit></Units></Strength>\
<Form><Text>Tablet</Text></Form></Product>\
<Directions><Direction><Description><Text>{sig} (variant {i})</Text></Description>\
<Dose><Value>1</Value><Units><Unit>tablet</Unit></Units></Dose><Route><Text>Oral</Text></Route>\
<Frequency><Value>daily</Value></Frequency></Direction></Directions></Medication>\n",
            1 + i % 28,
            10 * (1 + i % 8),
        ));
    }
    s.push_str("</Medications>\n</Body>\n</ContinuityOfCareRecord>\n");
    s.into_bytes()
}

/// A FHIR R4 searchset Bundle with `n` MedicationRequests.
pub fn fhir(n: usize) -> Vec<u8> {
    let mut s = String::with_capacity(n * 1200 + 256);
    s.push_str("{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":");
    s.push_str(&n.to_string());
    s.push_str(",\"entry\":[");
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        let ndc = NDCS[i % NDCS.len()];
        let sig = SIGS[(i / NDCS.len()) % SIGS.len()];
        s.push_str(&format!(
            r#"{{"fullUrl":"https://ehr.example.org/fhir/MedicationRequest/mr{i}","resource":{{"resourceType":"MedicationRequest","id":"mr{i}","meta":{{"versionId":"1","lastUpdated":"2024-01-01T00:00:00Z"}},"status":"active","intent":"order","medicationCodeableConcept":{{"coding":[{{"system":"http://hl7.org/fhir/sid/ndc","code":"{ndc}","display":"Synthetic drug {i}"}},{{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"{rx}"}}],"text":"Synthetic drug {i}"}},"subject":{{"reference":"Patient/bench-patient","display":"Bench Patient"}},"authoredOn":"2024-01-{day:02}","requester":{{"display":"Dr. Synthetic"}},"dosageInstruction":[{{"sequence":1,"text":"{sig} (variant {i})","timing":{{"repeat":{{"frequency":1,"period":1,"periodUnit":"d"}}}},"route":{{"coding":[{{"system":"http://snomed.info/sct","code":"26643006","display":"Oral route"}}]}},"doseAndRate":[{{"type":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/dose-rate-type","code":"ordered"}}]}},"doseQuantity":{{"value":1,"unit":"tablet","system":"http://unitsofmeasure.org","code":"{{tbl}}"}}}}]}}],"dispenseRequest":{{"numberOfRepeatsAllowed":3,"quantity":{{"value":30,"unit":"tablet"}}}}}},"search":{{"mode":"match"}}}}"#,
            rx = 300_000 + i,
            day = 1 + i % 28,
        ));
    }
    s.push_str("]}");
    s.into_bytes()
}
