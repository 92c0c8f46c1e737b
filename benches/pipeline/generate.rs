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

/// Writes indented XML the way real CCR exporters do (two spaces a level),
/// so the realistic document carries the whitespace text between elements
/// that the compact one has none of.
struct Xml {
    s: String,
    depth: usize,
}

impl Xml {
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.s.push_str("  ");
        }
    }
    fn open(&mut self, tag: &str) {
        self.indent();
        self.s.push('<');
        self.s.push_str(tag);
        self.s.push_str(">\n");
        self.depth += 1;
    }
    fn close(&mut self, tag: &str) {
        self.depth -= 1;
        self.indent();
        self.s.push_str("</");
        self.s.push_str(tag);
        self.s.push_str(">\n");
    }
    fn leaf(&mut self, tag: &str, text: &str) {
        self.indent();
        self.s.push_str(&format!("<{tag}>{text}</{tag}>\n"));
    }
    /// `<tag><Text>text</Text></tag>`, the CCR idiom for a coded-text slot.
    fn text(&mut self, tag: &str, text: &str) {
        self.open(tag);
        self.leaf("Text", text);
        self.close(tag);
    }
    fn date(&mut self, kind: &str, when: &str) {
        self.open("DateTime");
        self.text("Type", kind);
        self.leaf("ExactDateTime", when);
        self.close("DateTime");
    }
    fn code(&mut self, value: &str, system: &str) {
        self.open("Code");
        self.leaf("Value", value);
        self.leaf("CodingSystem", system);
        self.leaf("Version", "2005");
        self.close("Code");
    }
    fn source(&mut self, actor: &str) {
        self.open("Source");
        self.open("Actor");
        self.leaf("ActorID", actor);
        self.close("Actor");
        self.close("Source");
    }
}

const PROBLEMS: [(&str, &str, &str); 5] = [
    ("Myocardial Infarction", "410.90", "304914007"),
    ("Hypertension", "401.9", "59621000"),
    ("Type 2 diabetes mellitus", "250.00", "44054006"),
    ("Hyperlipidemia", "272.4", "55822004"),
    ("Chronic kidney disease stage 3", "585.3", "433144002"),
];

const LABS: [(&str, &str, &str, &str); 6] = [
    ("LDL", "2089-1", "99.0", "mg/dL"),
    ("High Density Lipoprotein (HDL)", "14646-4", "55.0", "mg/dL"),
    ("Hemoglobin A1c", "4548-4", "7.2", "%"),
    ("Creatinine", "2160-0", "1.4", "mg/dL"),
    ("Potassium", "2823-3", "4.1", "mmol/L"),
    ("Sodium", "2951-2", "139", "mmol/L"),
];

const VITALS: [(&str, &str, &str); 6] = [
    ("Systolic Blood Pressure", "271649006", "mm[Hg]"),
    ("Diastolic Blood Pressure", "271650006", "mm[Hg]"),
    ("Body weight", "27113001", "kg"),
    ("Body height", "50373000", "cm"),
    ("Heart rate", "364075005", "/min"),
    ("Body temperature", "386725007", "Cel"),
];

/// One realistic synthetic CCR: a header, Problems, Alerts whose allergen
/// agents carry NDC codes (which must not be read as medications), `meds`
/// Medications, Results, VitalSigns, Immunizations and Actors, indented.
fn realistic_ccr(x: &mut Xml, patient: usize, meds: usize) {
    let pid = format!("PT{patient:06}");
    let day = 1 + patient % 28;
    x.s.push_str(&"  ".repeat(x.depth));
    x.s.push_str("<ContinuityOfCareRecord xmlns=\"urn:astm-org:CCR\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n");
    x.depth += 1;
    x.leaf("CCRDocumentObjectID", &format!("doc-{patient:06}"));
    x.text("Language", "English");
    x.leaf("Version", "V1.0");
    x.open("DateTime");
    x.leaf("ExactDateTime", &format!("2024-02-{day:02}T13:06:13-05:00"));
    x.close("DateTime");
    x.open("Patient");
    x.leaf("ActorID", &pid);
    x.close("Patient");
    x.open("From");
    x.open("ActorLink");
    x.leaf("ActorID", "AA0002");
    x.close("ActorLink");
    x.close("From");
    x.open("Body");

    x.open("Problems");
    for (i, (name, icd, snomed)) in PROBLEMS.iter().enumerate() {
        x.open("Problem");
        x.leaf("CCRDataObjectID", &format!("PR{i:04}"));
        x.date("Start date", &format!("2010-12-{:02}T00:00:00Z", 1 + i));
        x.text("Type", "Diagnosis");
        x.open("Description");
        x.leaf("Text", name);
        x.code(icd, "ICD-9-CM");
        x.code(snomed, "SNOMED-CT");
        x.close("Description");
        x.text("Status", "Active");
        x.source("AA0002");
        x.close("Problem");
    }
    x.close("Problems");

    x.open("Alerts");
    for i in 0..3 {
        x.open("Alert");
        x.leaf("CCRDataObjectID", &format!("AL{i:04}"));
        x.text("Type", "Allergy");
        x.open("Agent");
        x.open("Products");
        x.open("Product");
        x.text("Description", "Allergen extract");
        x.open("Product");
        x.open("ProductName");
        x.leaf("Text", "Allergen extract");
        x.code(NDCS[(patient + i) % NDCS.len()], "NDC");
        x.close("ProductName");
        x.close("Product");
        x.close("Product");
        x.close("Products");
        x.close("Agent");
        x.open("Reaction");
        x.text("Description", "Hives");
        x.close("Reaction");
        x.close("Alert");
    }
    x.close("Alerts");

    x.open("Medications");
    for m in 0..meds {
        let i = patient * meds + m;
        let ndc = NDCS[i % NDCS.len()];
        let sig = SIGS[(i / NDCS.len()) % SIGS.len()];
        x.open("Medication");
        x.leaf("CCRDataObjectID", &format!("MD{m:04}"));
        x.date(
            if m % 3 == 0 {
                "Prescription Date"
            } else {
                "Start Date"
            },
            &format!("2023-{:02}-{day:02}T00:00:00Z", 1 + m % 12),
        );
        x.text("Type", "Medication");
        x.text("Status", if m % 5 == 4 { "Completed" } else { "Active" });
        x.open("Source");
        x.open("Actor");
        x.leaf("ActorID", "AA0002");
        x.text("ActorRole", "Prescribing clinician");
        x.close("Actor");
        x.close("Source");
        x.open("Product");
        x.open("ProductName");
        x.leaf("Text", &format!("Synthetic drug {}", i % 500));
        x.code(ndc, "NDC");
        x.code(&(300_000 + i % 500).to_string(), "RxNorm");
        x.close("ProductName");
        x.text("BrandName", &format!("Brand {}", i % 500));
        x.open("Strength");
        x.leaf("Value", &(10 * (1 + i % 8)).to_string());
        x.open("Units");
        x.leaf("Unit", "mg");
        x.close("Units");
        x.close("Strength");
        x.text("Form", "Tablet");
        x.close("Product");
        x.open("Directions");
        x.open("Direction");
        x.text("Description", sig);
        x.open("Dose");
        x.leaf("Value", "1");
        x.open("Units");
        x.leaf("Unit", "tablet");
        x.close("Units");
        x.close("Dose");
        x.text("Route", "Oral");
        x.open("Frequency");
        x.leaf("Value", "daily");
        x.close("Frequency");
        x.close("Direction");
        x.close("Directions");
        x.close("Medication");
    }
    x.close("Medications");

    for (section, prefix, rows) in [("Results", "LB", &LABS[..]), ("VitalSigns", "VT", &[])] {
        x.open(section);
        let vitals = VITALS.map(|(name, code, unit)| (name, code, "120.0", unit));
        let rows = if rows.is_empty() { &vitals[..] } else { rows };
        for (i, (name, code, value, unit)) in rows.iter().enumerate() {
            x.open("Result");
            x.leaf("CCRDataObjectID", &format!("{prefix}{i:04}"));
            x.date("Start date", &format!("2010-11-{:02}T00:00:00Z", 1 + i));
            x.open("Description");
            x.leaf("Text", name);
            x.code(code, if prefix == "LB" { "LOINC" } else { "SNOMED-CT" });
            x.close("Description");
            x.open("Test");
            x.open("TestResult");
            x.leaf("Value", value);
            x.open("Units");
            x.leaf("Unit", unit);
            x.close("Units");
            x.close("TestResult");
            x.close("Test");
            x.close("Result");
        }
        x.close(section);
    }

    x.open("Immunizations");
    for (i, (name, cvx)) in [
        ("Influenza virus vaccine", "88"),
        ("Pneumococcal polysaccharide vaccine", "33"),
        ("Tetanus and diphtheria toxoids", "09"),
        ("Zoster vaccine live", "121"),
    ]
    .iter()
    .enumerate()
    {
        x.open("Immunization");
        x.leaf("CCRDataObjectID", &format!("IM{i:04}"));
        x.date("Administration date", "2011-10-01T00:00:00Z");
        x.open("Product");
        x.open("ProductName");
        x.leaf("Text", name);
        x.code(cvx, "CVX");
        x.close("ProductName");
        x.close("Product");
        x.close("Immunization");
    }
    x.close("Immunizations");
    x.close("Body");

    x.open("Actors");
    for (id, given, family) in [
        (pid.as_str(), "Synthetic", "Patient"),
        ("AA0002", "Casey", "Clinician"),
    ] {
        x.open("Actor");
        x.leaf("ActorObjectID", id);
        x.open("Person");
        x.open("Name");
        x.open("CurrentName");
        x.leaf("Given", given);
        x.leaf("Family", family);
        x.close("CurrentName");
        x.close("Name");
        x.open("DateOfBirth");
        x.leaf("ExactDateTime", "1939-07-14T00:00:00Z");
        x.close("DateOfBirth");
        x.text("Gender", "Female");
        x.close("Person");
        x.close("Actor");
    }
    x.close("Actors");
    x.close("ContinuityOfCareRecord");
}

/// An Atom feed of realistic CCRs, `meds` medications each, with as many
/// patients as it takes to reach `target_bytes`. Returns the feed and how
/// many medications it holds.
pub fn ccr_feed(target_bytes: usize, meds: usize) -> (Vec<u8>, usize) {
    let mut x = Xml {
        s: String::with_capacity(target_bytes + 64 * 1024),
        depth: 0,
    };
    x.s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.s.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    x.depth = 1;
    x.leaf("title", "Synthetic CCR feed");
    let mut patients = 0;
    while x.s.len() < target_bytes {
        x.open("entry");
        x.leaf("id", &format!("urn:uuid:{patients}"));
        x.indent();
        x.s.push_str("<content type=\"application/xml\">\n");
        x.depth += 1;
        realistic_ccr(&mut x, patients, meds);
        x.close("content");
        x.close("entry");
        patients += 1;
    }
    x.s.push_str("</feed>\n");
    (x.s.into_bytes(), patients * meds)
}
