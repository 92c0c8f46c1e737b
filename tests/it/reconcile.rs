//! One reconciled list per patient: two files imported for one patient
//! under two sources (`import --source`), lined up by `regimen reconcile`
//! (table and JSON), their disagreements as `source_conflict` exceptions in
//! the queue, a decision on one remembered across a re-import, a conflict
//! that goes away closed, the same list on the review page and the API,
//! and a pull through the store's writer raising a conflict with a file.

use crate::pull::harness::{Home, REMOTE, ccr_at};
use crate::review_server::{CLINICIAN, Review, add_user};
use crate::support::{Sandbox, TestEnv};
use serde_json::Value;

/// One CCR medication: NDC-11, name, status, dose (tablets).
struct Med(&'static str, &'static str, &'static str, &'static str);

/// A CCR document listing `meds`; `tag` makes other bytes of the same list.
fn ccr(meds: &[Med], tag: &str) -> String {
    let body: String = meds
        .iter()
        .enumerate()
        .map(|(i, Med(ndc, name, status, dose))| {
            format!(
                "<Medication><CCRDataObjectID>M{i}</CCRDataObjectID>\
                 <DateTime><Type><Text>Start Date</Text></Type><ExactDateTime>2026-0{m}-01</ExactDateTime></DateTime>\
                 <Status><Text>{status}</Text></Status>\
                 <Product><ProductName><Text>{name}</Text><Code><Value>{ndc}</Value><CodingSystem>NDC</CodingSystem></Code></ProductName></Product>\
                 <Directions><Direction><Description><Text>Take {dose} tablet(s) daily</Text></Description>\
                 <Dose><Value>{dose}</Value><Units><Unit>tablet</Unit></Units></Dose></Direction></Directions></Medication>",
                m = i + 1
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ContinuityOfCareRecord><CCRDocumentObjectID>{tag}</CCRDocumentObjectID>\
         <Body><Medications>{body}</Medications></Body></ContinuityOfCareRecord>"
    )
}

const LISINOPRIL: &str = "00006010654";
const ZOCOR: &str = "00006074031";
const COZAAR: &str = "00006095231";

/// Imports `meds` for patient p1 under `source`; returns the import summary.
fn import(env: &TestEnv, source: &str, meds: &[Med], tag: &str) -> Value {
    let path = env.write(&format!("{source}-{tag}.xml"), ccr(meds, tag).as_bytes());
    env.run(&[
        "import",
        "--file",
        &path,
        "--patient",
        "p1",
        "--source",
        source,
        "--format",
        "json",
    ])
    .json()
}

fn reconciled(env: &TestEnv) -> Value {
    env.run(&[
        "regimen",
        "reconcile",
        "--patient",
        "p1",
        "--format",
        "json",
    ])
    .json()
}

fn conflicts(env: &TestEnv, state: &str) -> Vec<Value> {
    env.run(&[
        "queue",
        "list",
        "--kind",
        "source_conflict",
        "--state",
        state,
        "--format",
        "json",
    ])
    .json()
    .as_array()
    .expect("a JSON array")
    .clone()
}

/// The row of a drug, by the name its first source gives it.
fn row<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|row| row["drug"].as_str().is_some_and(|d| d.contains(name)))
        .unwrap_or_else(|| panic!("no row for {name}: {r:#}"))
}

/// Clinic: lisinopril active, Zocor 1 tablet. Pharmacy: lisinopril stopped,
/// Zocor 2 tablets, Cozaar (which the clinic does not list).
pub(crate) fn two_sources() -> TestEnv {
    let env = TestEnv::with_dictionary_and(&["p1"]);
    import(
        &env,
        "clinic",
        &[
            Med(LISINOPRIL, "Lisinopril 10 MG Oral Tablet", "Active", "1"),
            Med(ZOCOR, "Zocor 20 MG Oral Tablet", "Active", "1"),
        ],
        "c1",
    );
    let second = import(
        &env,
        "pharmacy",
        &[
            Med(
                LISINOPRIL,
                "Lisinopril 10 MG Oral Tablet",
                "Discontinued",
                "1",
            ),
            Med(ZOCOR, "Zocor 20 MG Oral Tablet", "Active", "2"),
            Med(COZAAR, "Cozaar 50 MG Oral Tablet", "Active", "1"),
        ],
        "p1",
    );
    assert_eq!(second["exceptions"]["source_conflict"], 2, "{second:#}");
    env
}

#[test]
fn two_sources_line_up_drug_by_drug_with_their_conflicts() {
    let env = two_sources();
    let r = reconciled(&env);
    assert_eq!(r["patient"], "p1");
    let sources: Vec<&str> = r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["clinic", "pharmacy"]);
    assert_eq!(r["rows"].as_array().unwrap().len(), 3, "{r:#}");

    let lisinopril = row(&r, "Lisinopril");
    assert_eq!(lisinopril["matched_by"], "ndc");
    assert_eq!(
        lisinopril["listed_by"],
        serde_json::json!(["clinic", "pharmacy"])
    );
    assert_eq!(lisinopril["cells"][0]["items"][0]["status"], "active");
    assert_eq!(lisinopril["cells"][1]["items"][0]["status"], "stopped");
    assert_eq!(lisinopril["cells"][0]["items"][0]["ndc"], LISINOPRIL);
    let c = &lisinopril["conflicts"][0];
    assert_eq!(c["aspect"], "status");
    assert_eq!(c["sides"][0]["source"], "clinic");
    assert_eq!(c["sides"][0]["says"], "active");
    assert_eq!(c["sides"][1]["source"], "pharmacy");
    assert_eq!(c["sides"][1]["says"], "stopped");
    assert_eq!(c["exception"]["state"], "open");

    let zocor = row(&r, "Zocor");
    assert_eq!(zocor["conflicts"][0]["aspect"], "dose");
    assert_eq!(zocor["conflicts"][0]["sides"][0]["says"], "1 tablet");
    assert_eq!(zocor["conflicts"][0]["sides"][1]["says"], "2 tablet");

    let cozaar = row(&r, "Cozaar");
    assert_eq!(cozaar["only_in"], "pharmacy");
    assert_eq!(cozaar["matched_by"], Value::Null);
    assert_eq!(cozaar["cells"][0]["items"], serde_json::json!([]));
    assert_eq!(cozaar["conflicts"], serde_json::json!([]));

    // The table: a column per source, the single-source drug said so, both sides named.
    let table = env.run(&["regimen", "reconcile", "--patient", "p1"]);
    let out = table.ok();
    assert!(out.contains("3 drug(s) across 2 source(s):"), "{out}");
    assert!(
        out.contains("\n  pharmacy: version 1, 3 item(s)\n"),
        "a line per source: {out}"
    );
    for text in ["clinic", "pharmacy", "only in pharmacy", "same NDC"] {
        assert!(out.contains(text), "{text} in {out}");
    }
    assert!(
        out.contains("status: clinic says active, pharmacy says stopped"),
        "{out}"
    );
    assert!(
        out.contains("—"),
        "a source that does not list a drug: {out}"
    );

    // The queue: both sides in the detail, one exception per conflict.
    let open = conflicts(&env, "open");
    assert_eq!(open.len(), 2, "{open:#?}");
    let status = open
        .iter()
        .find(|e| e["detail"].as_str().unwrap().contains("status"))
        .expect("the status conflict");
    let detail = status["detail"].as_str().unwrap();
    assert!(detail.contains("clinic (item 1) says active"), "{detail}");
    assert!(
        detail.contains("pharmacy (item 1) says stopped"),
        "{detail}"
    );
    assert_eq!(status["severity"], "error");
    assert_eq!(status["actions"], serde_json::json!(["accept"]));
    assert_eq!(status["item"]["ndc11"], LISINOPRIL);
    assert_eq!(status["related_item"]["ndc11"], LISINOPRIL);
}

#[test]
fn a_decided_conflict_is_remembered_and_one_that_goes_away_is_closed() {
    let env = two_sources();
    let open = conflicts(&env, "open");
    let id_of = |aspect: &str| {
        open.iter()
            .find(|e| e["detail"].as_str().unwrap().contains(aspect))
            .and_then(|e| e["id"].as_i64())
            .expect("conflict id")
            .to_string()
    };
    let (status, dose) = (id_of("status"), id_of("dose"));
    env.run(&[
        "queue",
        "resolve",
        &status,
        "--action",
        "accept",
        "--by",
        "dr.lee",
        "--note",
        "stopped by cardiology",
    ])
    .ok();
    // Neither side can be removed: each list stays as its source wrote it.
    let refused = env.run(&[
        "queue", "resolve", &dose, "--action", "remove", "--by", "dr.lee",
    ]);
    assert!(
        refused.fails(1).contains("does not fit"),
        "{}",
        refused.fails(1)
    );

    // The same facts again, in other bytes: a new version, no new exception.
    let again = import(
        &env,
        "pharmacy",
        &[
            Med(
                LISINOPRIL,
                "Lisinopril 10 MG Oral Tablet",
                "Discontinued",
                "1",
            ),
            Med(ZOCOR, "Zocor 20 MG Oral Tablet", "Active", "2"),
            Med(COZAAR, "Cozaar 50 MG Oral Tablet", "Active", "1"),
        ],
        "p2",
    );
    assert_eq!(again["version"], 2, "{again:#}");
    assert_eq!(
        again["exceptions"].get("source_conflict"),
        None,
        "{again:#}"
    );
    let r = reconciled(&env);
    let c = &row(&r, "Lisinopril")["conflicts"][0];
    assert_eq!(c["exception"]["id"].to_string(), status);
    assert_eq!(c["exception"]["state"], "resolved");
    // The open dose conflict stays the one exception, pointing at the new version's item.
    let open = conflicts(&env, "open");
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(open[0]["id"].to_string(), dose);
    let pharmacy_zocor = row(&r, "Zocor")["cells"][1]["items"][0]["item_id"].clone();
    assert_eq!(open[0]["related_item"]["id"], pharmacy_zocor);

    // The pharmacy now agrees on the dose: the open conflict is closed,
    // saying why, and audited; the accepted one stays as decided.
    import(
        &env,
        "pharmacy",
        &[
            Med(
                LISINOPRIL,
                "Lisinopril 10 MG Oral Tablet",
                "Discontinued",
                "1",
            ),
            Med(ZOCOR, "Zocor 20 MG Oral Tablet", "Active", "1"),
        ],
        "p3",
    );
    assert!(conflicts(&env, "open").is_empty());
    let closed = env
        .run(&["queue", "show", &dose, "--format", "json"])
        .json()["exception"]
        .clone();
    assert_eq!(closed["state"], "dismissed", "{closed:#}");
    assert_eq!(closed["note"], "the sources no longer disagree");
    assert_eq!(
        env.query_i64(&format!(
            "SELECT COUNT(*) FROM audit WHERE action = 'exception.agreed' AND subject = 'exception/{dose}'"
        )),
        1
    );
    assert_eq!(
        env.query_i64(&format!(
            "SELECT COUNT(*) FROM audit WHERE action = 'exception.accept' AND subject = 'exception/{status}'"
        )),
        1
    );

    // A new fact (3 tablets) is a new conflict, raised again.
    let changed = import(
        &env,
        "pharmacy",
        &[
            Med(
                LISINOPRIL,
                "Lisinopril 10 MG Oral Tablet",
                "Discontinued",
                "1",
            ),
            Med(ZOCOR, "Zocor 20 MG Oral Tablet", "Active", "3"),
        ],
        "p4",
    );
    assert_eq!(changed["exceptions"]["source_conflict"], 1, "{changed:#}");
    let open = conflicts(&env, "open");
    assert_eq!(open.len(), 1);
    assert!(
        open[0]["detail"]
            .as_str()
            .unwrap()
            .contains("says 3 tablet"),
        "{open:#?}"
    );
}

#[test]
fn a_single_source_has_no_conflicts_and_an_unknown_patient_is_refused() {
    let env = TestEnv::with_dictionary_and(&["p1"]);
    import(
        &env,
        "clinic",
        &[Med(
            LISINOPRIL,
            "Lisinopril 10 MG Oral Tablet",
            "Active",
            "1",
        )],
        "c1",
    );
    let r = reconciled(&env);
    assert_eq!(r["rows"][0]["only_in"], "clinic");
    assert!(conflicts(&env, "all").is_empty());
    let unknown = env.run(&["regimen", "reconcile", "--patient", "nobody"]);
    assert!(unknown.fails(1).contains("unknown patient nobody"));
    let bad = env.run(&["regimen", "reconcile", "--patient", ""]);
    assert!(bad.fails(2).contains("--patient"), "{}", bad.fails(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_review_app_shows_the_reconciled_list_and_its_api_matches_the_schema() {
    let env = two_sources();
    add_user(&env, CLINICIAN.0, CLINICIAN.1, "clinician");
    let r = Review::serve(env);
    let cookie = r.login(CLINICIAN).await;

    let patient = r.get("/patients/p1", Some(&cookie)).await;
    assert_eq!(patient.status, 200);
    assert!(
        patient.body.contains("href=\"/patients/p1/reconciled\""),
        "the patient page links to the reconciled list"
    );

    let page = r.get("/patients/p1/reconciled", Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for text in [
        "Reconciled list of patient p1",
        "2 conflict(s), 2 open",
        "class=\"badge stopped\">Stopped</span>",
        "class=\"badge open\">Open</span>",
        "only in pharmacy",
        "not listed",
        "clinic says active; pharmacy says stopped",
        "Two sources of the patient disagree on a drug",
    ] {
        assert!(page.body.contains(text), "{text} in {}", page.body);
    }
    let exception_link = page.body.contains("href=\"/exceptions/");
    assert!(exception_link, "each conflict links to its exception");
    assert_eq!(r.get("/patients/p1/reconciled", None).await.status, 303);
    assert_eq!(
        r.get("/patients/nobody/reconciled", Some(&cookie))
            .await
            .status,
        404
    );

    // The exception page shows both sides; accepting there settles it,
    // and the reconciled list says so.
    let id = r.env.query_i64(
        "SELECT id FROM exceptions WHERE kind = 'source_conflict' AND detail LIKE '%status%'",
    );
    let exception = r.get(&format!("/exceptions/{id}"), Some(&cookie)).await;
    assert_eq!(exception.status, 200, "{}", exception.body);
    assert!(
        exception
            .body
            .contains("clinic (item 1) says active; pharmacy (item 1) says stopped"),
        "{}",
        exception.body
    );
    // The two sides headed by their sources, first; the button says what
    // accepting does.
    for text in [
        "<h2>What each source says</h2>",
        "clinic — #1",
        "pharmacy — #1",
        "Accept: clinic #1 and pharmacy #1 stay as each source lists them",
    ] {
        assert!(
            exception.body.contains(text),
            "{text} in {}",
            exception.body
        );
    }
    let sides = exception.body.find("id=\"pair\"").expect("the two sides");
    let compare = exception
        .body
        .find("id=\"compare\"")
        .expect("the dictionary's say");
    assert!(sides < compare, "the two sides come first");
    let csrf = r.csrf(&cookie).await;
    let decided = r
        .post_form(
            &format!("/exceptions/{id}/decide"),
            Some(&cookie),
            &[
                ("action", "accept"),
                ("note", "stopped in clinic"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(decided.status, 303, "{}", decided.body);
    let page = r.get("/patients/p1/reconciled", Some(&cookie)).await;
    // States in words (the class keeps the code), and what is left open.
    for text in [
        "class=\"badge resolved\">Resolved</span>",
        "2 conflict(s), 1 open",
    ] {
        assert!(page.body.contains(text), "{text} in {}", page.body);
    }
    assert_eq!(
        r.env.query_i64(&format!(
            "SELECT COUNT(*) FROM audit WHERE action = 'exception.accept' AND subject = 'exception/{id}' AND actor = 'dr.lee'"
        )),
        1
    );

    let token = r.token(CLINICIAN.0);
    let api = r
        .api("GET", "/patients/p1/reconciled", Some(&token), None)
        .await;
    assert_eq!(api.status, 200);
    let doc = crate::openapi::document();
    let json = api.json();
    crate::openapi::check(&doc, "GET", "/patients/{id}/reconciled", 200, &json);
    assert_eq!(json["rows"].as_array().unwrap().len(), 3);
}

#[test]
fn a_pull_that_disagrees_with_an_imported_file_raises_the_conflict_in_its_own_write() {
    // The provider's document for the linked patient says lisinopril was
    // discontinued; the file imported before says it is taken.
    let data = tempfile::tempdir().expect("dir");
    std::fs::create_dir(data.path().join("ccr")).expect("ccr dir");
    std::fs::write(
        data.path().join("ccr").join(format!("{REMOTE}.xml")),
        ccr(
            &[Med(
                LISINOPRIL,
                "Lisinopril 10 MG Oral Tablet",
                "Discontinued",
                "1",
            )],
            "provider",
        ),
    )
    .expect("write");
    let sandbox = Sandbox::start_with(&["--data", &data.path().display().to_string()]);
    let home = Home::new(&ccr_at(&sandbox, "clinic-ehr"));
    let path = home.env.write(
        "home.xml",
        ccr(
            &[Med(
                LISINOPRIL,
                "Lisinopril 10 MG Oral Tablet",
                "Active",
                "1",
            )],
            "home",
        )
        .as_bytes(),
    );
    home.rx(&["import", "--file", &path, "--patient", "P1"])
        .ok();
    home.link_oauth1(&sandbox, "clinic-ehr", "demo-hmac-header");

    let reports = Home::reports(&home.pull(None));
    assert_eq!(reports[0]["outcome"], "imported", "{reports:#?}");
    assert_eq!(
        reports[0]["import"]["exceptions"]["source_conflict"], 1,
        "{reports:#?}"
    );
    let r = home
        .rx(&[
            "regimen",
            "reconcile",
            "--patient",
            "P1",
            "--format",
            "json",
        ])
        .json();
    let sources: Vec<&str> = r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["clinic-ehr", "file"]);
    let c = &r["rows"][0]["conflicts"][0];
    assert_eq!(c["sides"][0]["says"], "stopped");
    assert_eq!(c["sides"][1]["says"], "active");
    assert_eq!(c["exception"]["state"], "open");
    // The same bytes again: no new version, nothing raised twice.
    let again = Home::reports(&home.pull(None));
    assert_eq!(again[0]["outcome"], "unchanged", "{again:#?}");
    assert_eq!(
        home.env
            .query_i64("SELECT COUNT(*) FROM exceptions WHERE kind = 'source_conflict'"),
        1
    );
}

/// The reconciled list as one FHIR R4 Bundle: both sources' documents and
/// statements, and each source conflict one DetectedIssue implicating a
/// statement of each side.
fn reconciled_bundle(env: &TestEnv) -> Value {
    env.run(&[
        "regimen",
        "reconcile",
        "--patient",
        "p1",
        "--format",
        "fhir",
    ])
    .json()
}

fn resources<'a>(bundle: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["resource"]["resourceType"] == kind)
        .map(|e| (e["fullUrl"].as_str().expect("fullUrl"), &e["resource"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reconciled_list_goes_out_as_one_fhir_bundle_with_the_conflicts_between_sources() {
    let env = two_sources();
    let bundle = reconciled_bundle(&env);
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(
        resources(&bundle, "DocumentReference").len(),
        2,
        "{bundle:#}"
    );
    // clinic 2 + pharmacy 3 statements, each naming its document.
    let statements = resources(&bundle, "MedicationStatement");
    assert_eq!(statements.len(), 5, "{bundle:#}");
    let source_of: std::collections::HashMap<&str, &str> = statements
        .iter()
        .map(|(url, s)| {
            (
                *url,
                s["derivedFrom"][0]["reference"]
                    .as_str()
                    .expect("derivedFrom"),
            )
        })
        .collect();
    let issues = resources(&bundle, "DetectedIssue");
    let conflicts: Vec<_> = issues
        .iter()
        .filter(|(_, i)| {
            i["code"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("source_conflict"))
        })
        .collect();
    assert_eq!(conflicts.len(), 2, "status and dose: {bundle:#}");
    for (_, issue) in conflicts {
        let implicated: Vec<&str> = issue["implicated"]
            .as_array()
            .expect("implicated")
            .iter()
            .map(|r| r["reference"].as_str().expect("reference"))
            .collect();
        assert_eq!(implicated.len(), 2, "{issue:#}");
        let docs: std::collections::HashSet<&str> =
            implicated.iter().map(|u| source_of[u]).collect();
        assert_eq!(docs.len(), 2, "one statement of each source: {issue:#}");
        assert!(
            issue["detail"]
                .as_str()
                .is_some_and(|d| d.contains("clinic") && d.contains("pharmacy")),
            "{issue:#}"
        );
    }
    // The API gives the same entries, as FHIR JSON.
    add_user(&env, CLINICIAN.0, CLINICIAN.1, "clinician");
    let r = Review::serve(env);
    let token = r.token(CLINICIAN.0);
    let answer = r
        .api(
            "GET",
            "/patients/p1/reconciled?format=fhir",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.headers["content-type"].to_str().expect("type"),
        "application/fhir+json"
    );
    let api: Value = serde_json::from_str(&answer.body).expect("json");
    assert_eq!(api["entry"], bundle["entry"]);
}

#[test]
#[ignore = "needs python3 with fhir.resources==6.4.0 and pydantic 1 (installed by .ci/run)"]
fn an_independent_fhir_r4_model_accepts_the_reconciled_bundle() {
    let env = two_sources();
    let summary = crate::fhir_out::validated(&reconciled_bundle(&env));
    assert_eq!(summary["resources"]["MedicationStatement"], 5, "{summary}");
}
