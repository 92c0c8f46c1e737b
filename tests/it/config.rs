//! Configuration: where it is found, and errors that name the key and file.

use crate::support::{TestEnv, repo_path};

#[test]
fn config_errors_name_the_key_and_the_file_and_exit_2() {
    let env = TestEnv::new();
    let cases = [
        (
            "unknown.toml",
            "[import]\nmax_regimen_itemz = 5\n",
            "max_regimen_itemz",
        ),
        (
            "type.toml",
            "[import]\nmax_document_bytes = \"big\"\n",
            "max_document_bytes",
        ),
        ("section.toml", "[databse]\npath = \"x.db\"\n", "databse"),
        (
            "zero.toml",
            "[import]\nmax_regimen_items = 0\n",
            "import.max_regimen_items",
        ),
    ];
    for (name, text, key) in cases {
        let path = env.write(name, text.as_bytes());
        let err = env
            .run_bare(&["--config", &path, "patient", "list"], &[])
            .fails(2)
            .to_string();
        assert!(err.contains(key) && err.contains(name), "{name}: {err}");
    }
    let err = env
        .run_bare(
            &["--config", "/no/such/config.toml", "patient", "list"],
            &[],
        )
        .fails(2)
        .to_string();
    assert!(err.contains("/no/such/config.toml"), "{err}");
    let err = env
        .run_bare(
            &["patient", "list"],
            &[("RXSYNC_IMPORT_MAX_REGIMEN_ITEMS", "lots")],
        )
        .fails(2)
        .to_string();
    assert!(err.contains("RXSYNC_IMPORT_MAX_REGIMEN_ITEMS"), "{err}");
}

#[test]
fn the_database_path_is_relative_to_the_config_file() {
    let env = TestEnv::new();
    std::fs::create_dir(env.dir.path().join("etc")).expect("mkdir");
    let cfg = env.write("etc/rx.toml", b"[database]\npath = \"state.db\"\n");
    env.run_bare(&["--config", &cfg, "patient", "add", "--id", "a"], &[])
        .ok();
    assert!(env.dir.path().join("etc/state.db").exists());
    // RXSYNC_CONFIG finds the same file; ./config.toml is used when present.
    let listed = env
        .run_bare(
            &["patient", "list", "--format", "json"],
            &[("RXSYNC_CONFIG", &cfg)],
        )
        .json();
    assert_eq!(listed[0]["id"], "a");
    env.write("config.toml", b"[database]\npath = \"here.db\"\n");
    env.run_bare(&["patient", "add", "--id", "b"], &[]).ok();
    assert!(env.dir.path().join("here.db").exists());
}

#[test]
fn the_repository_config_works_out_of_the_box() {
    let env = TestEnv::new();
    let cfg = repo_path("config.toml").display().to_string();
    // Point the database elsewhere so the test does not write into the repo.
    let db = env.dir.path().join("x.db").display().to_string();
    env.run_bare(
        &[
            "--config", &cfg, "--db", &db, "patient", "add", "--id", "p-1",
        ],
        &[],
    )
    .ok();
    env.run_bare(&["--config", &cfg, "--db", &db, "patient", "list"], &[])
        .ok();
}
