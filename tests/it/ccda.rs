//! C-CDA documents through the real binary: `import --file` sniffs them,
//! their NDCs map, the reviewer's excerpt is re-derived from the stored
//! document, and what a C-CDA says of no medications is reported, never
//! mistaken for a list (and never the other way round). And a
//! `document_url` provider that answers with a C-CDA, the sandbox's own.

use crate::pull::harness::{Home, REMOTE, oauth1_ccr};
use crate::support::{Sandbox, TestEnv, repo_path};
use serde_json::Value;

fn sample(name: &str) -> std::path::PathBuf {
    repo_path(&format!("samples/ccda/{name}"))
}

#[test]
fn a_ccd_is_imported_with_its_ndcs_mapped_and_its_excerpts_shown() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    let summary = env.import(&sample("r21-ccd.xml"), "pat-1");
    assert_eq!(summary["format"], "ccda", "{summary}");
    assert_eq!(summary["records"], 4, "{summary}");
    assert_eq!(
        summary["skipped_count"], 1,
        "the negated ibuprofen: {summary}"
    );
    assert!(
        summary["skipped"][0]["reason"].as_str().is_some_and(
            |r| r.starts_with("negated: the document says the patient does not take Ibuprofen")
        ),
        "{summary}"
    );
    assert_eq!(summary["exceptions"]["non_ndc_code"], 2, "{summary}");
    let regimen = env
        .run(&["regimen", "show", "--patient", "pat-1", "--format", "json"])
        .json();
    let items = regimen["items"].as_array().expect("items");
    let ndcs: Vec<&str> = items.iter().filter_map(|i| i["ndc11"].as_str()).collect();
    assert_eq!(ndcs, ["00006010654", "00087606005"], "{regimen}");
    assert_eq!(items[0]["prescriber"], "Dr. Henry Seven");
    assert_eq!(items[1]["frequency"], "ACM (before breakfast), as needed");
    // The same bytes again make no new version.
    let again = env.import(&sample("r21-ccd.xml"), "pat-1");
    assert_eq!(again["outcome"], "unchanged", "{again}");
    // The reviewer sees the activity and the narrative row it references.
    let queue = env.run(&["queue", "list", "--format", "json"]).json();
    let amoxicillin = queue
        .as_array()
        .expect("rows")
        .iter()
        .find(|e| e["item"]["name"] == "Amoxicillin 500 mg capsule")
        .expect("amoxicillin's non_ndc_code");
    let id = amoxicillin["id"].to_string();
    let shown = env.run(&["queue", "show", &id, "--format", "json"]).json();
    let excerpt = shown["excerpt"].as_str().unwrap_or_default();
    assert!(excerpt.starts_with("<substanceAdministration"), "{shown}");
    assert!(excerpt.contains("<tr ID=\"med-4\">"), "{excerpt}");
    assert!(
        excerpt.contains("<!-- the narrative it references -->"),
        "{excerpt}"
    );
}

#[test]
fn each_item_says_which_section_of_the_document_listed_it() {
    let env = TestEnv::with_dictionary_and(&["pat-1", "pat-2"]);
    env.import(&sample("r21-discharge-summary.xml"), "pat-1");
    let regimen = env
        .run(&["regimen", "show", "--patient", "pat-1", "--format", "json"])
        .json();
    let mut sections: Vec<&str> = regimen["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["section"].as_str())
        .collect();
    sections.sort_unstable();
    assert_eq!(
        sections,
        ["Discharge Medications", "Medications Administered"],
        "{regimen}"
    );
    // A home medication list says so too; a FHIR list has no sections.
    env.import(&sample("r21-ccd.xml"), "pat-2");
    let home = env
        .run(&["regimen", "show", "--patient", "pat-2", "--format", "json"])
        .json();
    assert!(
        home["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["section"] == "Medications"),
        "{home}"
    );
}

#[test]
fn the_format_can_be_named_and_an_r11_ccd_with_prefixes_reads() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    let path = sample("r11-ccd.xml").display().to_string();
    let summary = env
        .run(&[
            "import",
            "--file",
            &path,
            "--patient",
            "pat-1",
            "--format",
            "ccda",
            "--format",
            "json",
        ])
        .json();
    assert_eq!(summary["format"], "ccda");
    assert_eq!(summary["records"], 2);
    let regimen = env
        .run(&["regimen", "show", "--patient", "pat-1", "--format", "json"])
        .json();
    let stopped: Vec<&Value> = regimen["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["status"] == "stopped")
        .collect();
    assert_eq!(stopped.len(), 1, "aborted reads as stopped: {regimen}");
    assert_eq!(stopped[0]["status_original"], "stopped");
}

#[test]
fn a_ccda_that_lists_no_medications_is_none_shared_and_says_why() {
    // (file, words of the none_shared detail)
    let rows = [
        (
            "no-known-medications.xml",
            "the document lists no medications: negated: the document says the patient takes no medications",
        ),
        ("section-null-flavor.xml", "nullFlavor NI"),
        ("no-medications-section.xml", "has no medications section"),
    ];
    for (i, (file, words)) in rows.iter().enumerate() {
        let patient = format!("pat-{i}");
        let env = TestEnv::with_dictionary_and(&[&patient]);
        let summary = env.import(&sample(file), &patient);
        assert_eq!(summary["records"], 0, "{file}: {summary}");
        assert_eq!(summary["exceptions"]["none_shared"], 1, "{file}: {summary}");
        let queue = env.run(&["queue", "list", "--format", "json"]).json();
        let detail = queue[0]["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(words), "{file}: {detail}");
    }
}

#[test]
fn a_narrative_only_section_is_an_unreadable_record_not_none_shared() {
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    let summary = env.import(&sample("narrative-only.xml"), "pat-1");
    assert_eq!(summary["unreadable_records"], 1, "{summary}");
    assert!(
        summary["exceptions"].get("none_shared").is_none(),
        "{summary}"
    );
    let queue = env
        .run(&[
            "queue",
            "list",
            "--kind",
            "unreadable_record",
            "--format",
            "json",
        ])
        .json();
    let id = queue[0]["id"].to_string();
    let shown = env.run(&["queue", "show", &id, "--format", "json"]).json();
    assert!(
        shown["excerpt"]
            .as_str()
            .is_some_and(|x| x.contains("Warfarin 5 mg tablet")),
        "{shown}"
    );
}

#[test]
fn unreadable_ccdas_are_refused_with_their_position_and_store_nothing() {
    // (file, words of the error)
    let rows = [
        ("unstructured.xml", "has an unstructured body (nonXMLBody)"),
        ("dtd.xml", "DTD"),
        ("malformed.xml", "malformed XML at 5:"),
    ];
    let env = TestEnv::with_dictionary_and(&["pat-1"]);
    for (file, words) in rows {
        let path = sample(file).display().to_string();
        let before = env.counts();
        let err = env
            .run(&["import", "--file", &path, "--patient", "pat-1"])
            .fails(1)
            .to_string();
        assert!(err.contains(words), "{file}: {err}");
        assert!(err.contains("nothing stored"), "{file}: {err}");
        assert_eq!(env.counts(), before, "{file}");
    }
}

/// An OAuth 1.0a `document_url` provider whose documents are C-CDAs.
fn ccda_provider(sandbox: &Sandbox) -> String {
    oauth1_ccr(
        "ehr",
        &sandbox.base,
        "demo-hmac-header",
        "HMAC-SHA1",
        "header",
    )
    .replace(
        "document_url = \"ccr/{patient}\"",
        "document_url = \"ccda/{patient}\"",
    )
}

#[test]
fn a_document_url_provider_answering_with_a_generated_ccda_is_pulled_whole() {
    let sandbox = Sandbox::start();
    let home = Home::new(&ccda_provider(&sandbox));
    home.link_oauth1(&sandbox, "ehr", "demo-hmac-header");
    let reports = Home::reports(&home.pull(None));
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert_eq!(report["outcome"], "imported", "{report}");
    assert_eq!(report["import"]["format"], "ccda", "{report}");
    assert_eq!(report["import"]["records"], 20, "{report}");
    assert_eq!(
        report["import"]["exceptions"],
        serde_json::json!({}),
        "{report}"
    );
    let again = Home::reports(&home.pull(None));
    assert_eq!(again[0]["outcome"], "unchanged", "{again:?}");
}

#[test]
fn the_sandbox_serves_a_data_directory_ccda_as_it_is() {
    let env = TestEnv::new();
    let dir = env.dir.path();
    std::fs::create_dir_all(dir.join("ccda")).expect("ccda dir");
    std::fs::copy(
        sample("r21-ccd.xml"),
        dir.join(format!("ccda/{REMOTE}.xml")),
    )
    .expect("copy");
    let data = dir.display().to_string();
    let sandbox = Sandbox::start_with(&["--data", &data]);
    let home = Home::new(&ccda_provider(&sandbox));
    home.link_oauth1(&sandbox, "ehr", "demo-hmac-header");
    let reports = Home::reports(&home.pull(None));
    let report = &reports[0];
    assert_eq!(report["outcome"], "imported", "{report}");
    assert_eq!(report["import"]["format"], "ccda", "{report}");
    assert_eq!(report["import"]["records"], 4, "{report}");
    assert_eq!(
        report["import"]["exceptions"]["non_ndc_code"], 2,
        "{report}"
    );
    assert_eq!(
        report["import"]["skipped_count"], 1,
        "the negated ibuprofen: {report}"
    );
}
