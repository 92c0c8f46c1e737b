//! Bad input gets a clear error that says what and where, a non-zero exit
//! code, and no change to what is stored (design invariant 5). Every case
//! compares the row counts of every table before and after.

use crate::support::{TestEnv, repo_path};

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<ContinuityOfCareRecord xmlns="urn:astm-org:CCR"><Body><Medications><Medication>
<Product><ProductName><Text>&lol3;</Text></ProductName></Product></Medication></Medications></Body></ContinuityOfCareRecord>
"#;

const EXTERNAL_ENTITY: &str = r#"<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ContinuityOfCareRecord xmlns="urn:astm-org:CCR"><Body><Medications><Medication>
<Product><ProductName><Text>&xxe;</Text></ProductName></Product></Medication></Medications></Body></ContinuityOfCareRecord>
"#;

const MALFORMED_CCR: &str = "<?xml version=\"1.0\"?>\n<ContinuityOfCareRecord xmlns=\"urn:astm-org:CCR\">\n<Body><Medications>\n<Medication><Product></Medication>\n</Medications></Body></ContinuityOfCareRecord>\n";

/// A CDA header with no body: read as C-CDA (sniffed), but refused, since
/// what it lists cannot be told (a CDA with a structuredBody and no
/// medications section is read, with `none_shared`: see ccda.rs).
const CDA: &str = r#"<?xml version="1.0"?>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Continuity of Care Document</title></ClinicalDocument>
"#;

/// Not a CCR, not a C-CDA (a ClinicalDocument outside the v3 namespace).
const CDA_WITHOUT_NAMESPACE: &str = r#"<?xml version="1.0"?>
<ClinicalDocument><title>Continuity of Care Document</title></ClinicalDocument>
"#;

const OPERATION_OUTCOME: &str = r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"forbidden","diagnostics":"Patient has not shared medications"}]}"#;

#[test]
fn each_kind_of_bad_document_is_refused_and_stores_nothing() {
    let mut binary = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    binary.extend([0u8; 64]);
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("empty.xml", Vec::new(), &["empty"]),
        ("blank.json", b"  \n\t ".to_vec(), &["empty"]),
        ("image.png", binary, &["binary"]),
        (
            "malformed.xml",
            MALFORMED_CCR.as_bytes().to_vec(),
            &["malformed XML at 4:"],
        ),
        (
            "cda.xml",
            CDA.as_bytes().to_vec(),
            &["C-CDA ClinicalDocument at 2:1 has no body", "structuredBody"],
        ),
        (
            "cda-no-namespace.xml",
            CDA_WITHOUT_NAMESPACE.as_bytes().to_vec(),
            &["expected a CCR", "ClinicalDocument"],
        ),
        ("lolz.xml", BILLION_LAUGHS.as_bytes().to_vec(), &["DTD"]),
        ("xxe.xml", EXTERNAL_ENTITY.as_bytes().to_vec(), &["DTD"]),
        (
            "broken.json",
            b"{\"resourceType\": \"Bundle\",\n  \"entry\": [\n}".to_vec(),
            &["malformed JSON at 3:"],
        ),
        (
            "other.json",
            br#"{"foo": 1}"#.to_vec(),
            &["expected a FHIR"],
        ),
        (
            "patient.json",
            br#"{"resourceType": "Patient", "id": "x"}"#.to_vec(),
            &["expected a FHIR", "Patient"],
        ),
        (
            "outcome.json",
            OPERATION_OUTCOME.as_bytes().to_vec(),
            &["OperationOutcome", "not shared"],
        ),
        (
            "text.txt",
            b"hello, this is not a document".to_vec(),
            &["neither XML nor JSON"],
        ),
        (
            "formulary.json",
            br#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"MedicationKnowledge","id":"k"}},{"resource":{"resourceType":"Medication","id":"m","code":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"0777-3105-02"}]}}}]}"#.to_vec(),
            &["drug data", "1 MedicationKnowledge", "1 Medication", "not a patient's medication list"],
        ),
        (
            "medication.json",
            br#"{"resourceType":"Medication","id":"m","code":{"text":"Prozac 20 mg"}}"#.to_vec(),
            &["drug data", "1 Medication"],
        ),
    ];
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    for (name, bytes, needles) in cases {
        let path = env.write(name, &bytes);
        let before = env.counts();
        let err = env
            .run(&["import", "--file", &path, "--patient", "pat-1"])
            .fails(1)
            .to_string();
        assert!(
            err.contains(&path),
            "{name}: the error names the file: {err}"
        );
        for needle in needles {
            assert!(
                err.contains(needle),
                "{name}: error lacks {needle:?}: {err}"
            );
        }
        assert!(err.contains("nothing stored"), "{name}: {err}");
        assert_eq!(env.counts(), before, "{name}: nothing stored");
    }
}

#[test]
fn the_corpus_ccrs_that_are_not_well_formed_are_refused_with_their_position() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    for name in ["sample_ccr.xml", "1_Sofia_Weideman_SAK.xml"] {
        let path = repo_path(&format!("tests/corpus/ccr/health-data-standards/{name}"))
            .display()
            .to_string();
        let before = env.counts();
        let err = env
            .run(&["import", "--file", &path, "--patient", "pat-1"])
            .fails(1)
            .to_string();
        assert!(err.contains("malformed XML at "), "{name}: {err}");
        assert_eq!(env.counts(), before, "{name}");
    }
}

#[test]
fn oversized_documents_unknown_patients_and_missing_files_store_nothing() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    let sample = repo_path("samples/ccr/demo.xml").display().to_string();
    let before = env.counts();
    let err = env
        .run_with_env(
            &["import", "--file", &sample, "--patient", "pat-1"],
            &[("RXSYNC_IMPORT_MAX_DOCUMENT_BYTES", "100")],
        )
        .fails(1)
        .to_string();
    let size = std::fs::metadata(repo_path("samples/ccr/demo.xml"))
        .expect("sample")
        .len();
    assert!(
        err.contains(&format!(
            "is {size} bytes, over import.max_document_bytes = 100"
        )),
        "{err}"
    );
    let err = env
        .run(&["import", "--file", &sample, "--patient", "nobody"])
        .fails(1)
        .to_string();
    assert!(err.contains("unknown patient nobody"), "{err}");
    let err = env
        .run(&[
            "import",
            "--file",
            "/no/such/file.xml",
            "--patient",
            "pat-1",
        ])
        .fails(1)
        .to_string();
    assert!(err.contains("/no/such/file.xml"), "{err}");
    env.run(&["import", "--file", &sample, "--patient", "bad id"])
        .fails(2);
    assert_eq!(env.counts(), before);
}

#[test]
fn a_link_argument_that_is_not_a_link_id_is_refused_and_stores_nothing() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    let before = env.counts();
    for (args, found) in [
        (&["link", "revoke", "abc"][..], "abc"),
        (&["link", "revoke", "0"], "0"),
        (
            &["link", "confirm", "12x", "--by", "dr", "--note", "n"],
            "12x",
        ),
        (
            &["link", "reject", "1.5", "--by", "dr", "--note", "n"],
            "1.5",
        ),
    ] {
        let err = env.run(args).fails(2).to_string();
        assert!(
            err.contains(&format!(
                "invalid value '{found}' for '<LINK>': link id must be a positive whole number (found \"{found}\")"
            )),
            "{args:?}: {err}"
        );
    }
    assert_eq!(env.counts(), before);
}

#[test]
fn a_provider_argument_that_is_not_a_provider_id_is_refused_and_stores_nothing() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    let before = env.counts();
    for (args, said) in [
        (
            &["link", "add", "--patient", "pat-1", "--provider", "bad id"][..],
            "--provider \"bad id\": provider id may hold only letters, digits and . _ - : @ (found ' ')",
        ),
        (
            &["import", "--patient", "pat-1", "--provider", "a/b"],
            "--provider \"a/b\": provider id may hold only letters, digits and . _ - : @ (found '/')",
        ),
        (
            &["import", "--bulk", "x.ndjson", "--provider", " "],
            "--provider \" \": provider id must not be empty",
        ),
        (
            &["export", "status", "--provider", "x;y"],
            "--provider \"x;y\": provider id may hold only letters, digits and . _ - : @ (found ';')",
        ),
    ] {
        let err = env.run(args).fails(2).to_string();
        assert!(err.contains(said), "{args:?}: {err}");
    }
    assert_eq!(env.counts(), before);
}

#[test]
fn keep_unreadable_keeps_the_document_and_opens_an_exception_but_no_regimen() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    let path = env.write("malformed.xml", MALFORMED_CCR.as_bytes());
    let err = env
        .run(&[
            "import",
            "--file",
            &path,
            "--patient",
            "pat-1",
            "--keep-unreadable",
        ])
        .fails(1)
        .to_string();
    assert!(err.contains("document kept"), "{err}");
    assert_eq!(env.query_i64("SELECT COUNT(*) FROM documents"), 1);
    assert_eq!(env.query_i64("SELECT COUNT(*) FROM regimens"), 0);
    assert_eq!(
        env.query_i64("SELECT COUNT(*) FROM syncs WHERE outcome = 'failed'"),
        1
    );
    let q = env
        .run(&["queue", "list", "--kind", "unreadable", "--format", "json"])
        .json();
    assert_eq!(q.as_array().map(Vec::len), Some(1));
    assert!(
        q[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("malformed XML")),
        "{q}"
    );
    assert_eq!(q[0]["item"], serde_json::Value::Null);
}

#[test]
fn a_database_file_that_is_not_sqlite_is_a_clear_error() {
    if crate::support::sqlite_only("a_database_file_that_is_not_sqlite_is_a_clear_error") {
        return;
    }
    let env = TestEnv::new();
    std::fs::write(
        &env.db,
        b"this is not a database, just text that is long enough to look like a header....",
    )
    .expect("write");
    let err = env.run(&["patient", "list"]).fails(1).to_string();
    assert!(
        err.contains("cannot open database") && err.contains("rxsync.db"),
        "{err}"
    );
}
