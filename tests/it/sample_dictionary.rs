//! The sample dictionary is a small subset of the FDA directory: a lookup or
//! a mapping it cannot answer says so, how many products it holds, and how
//! to load the whole directory — and nothing is stored.

use crate::support::{TestEnv, repo_path};

/// The products of `samples/ndc/product.txt` (its rows after the header).
fn sample_products() -> usize {
    let bytes = std::fs::read(repo_path("samples/ndc/product.txt")).expect("product.txt");
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()))
        .count()
        - 1
}

#[test]
fn a_lookup_or_mapping_the_sample_cannot_answer_says_the_sample_is_partial() {
    let env = TestEnv::with_dictionary_and(&["p1"]);
    env.import(&repo_path("samples/ccr/demo.xml"), "p1");
    let partial = format!(
        "the sample dictionary holds only {} products of the FDA NDC directory",
        sample_products()
    );
    let err = env
        .run(&["dict", "lookup", "ibuprofen"])
        .fails(1)
        .to_string();
    assert!(err.contains(&partial), "{err}");
    assert!(err.contains("rxsync dict import --fda DIR"), "{err}");

    let queue = env
        .run(&["queue", "list", "--kind", "invalid_ndc", "--format", "json"])
        .json();
    let id = queue[0]["id"]
        .as_i64()
        .expect("the invalid Ibuprofen NDC")
        .to_string();
    let before = env.counts();
    let err = env
        .run(&[
            "queue",
            "resolve",
            &id,
            "--action",
            "map",
            "--ndc",
            "0904-5853-61",
            "--by",
            "dr.lee",
        ])
        .fails(1)
        .to_string();
    assert!(
        err.contains("NDC 00904-5853-61 is not in the drug dictionary") && err.contains(&partial),
        "{err}"
    );
    assert_eq!(env.counts(), before, "a refused mapping stores nothing");
}

#[test]
fn a_dictionary_loaded_from_elsewhere_is_not_called_the_sample() {
    let env = TestEnv::new();
    let fda = env.dir.path().join("ndctext");
    std::fs::create_dir(&fda).expect("dir");
    for file in ["product.txt", "package.txt"] {
        std::fs::copy(repo_path(&format!("samples/ndc/{file}")), fda.join(file)).expect("copy");
    }
    env.run(&["dict", "import", "--fda", &fda.display().to_string()])
        .ok();
    let err = env
        .run(&["dict", "lookup", "ibuprofen"])
        .fails(1)
        .to_string();
    assert!(err.contains("is not in the drug dictionary"), "{err}");
    assert!(!err.contains("sample"), "{err}");
}
