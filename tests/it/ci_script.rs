//! `.ci/run`'s Debian step (`.ci/debian.sh`): as root it installs; as a
//! user without root or a working sudo it stops before apt-get with a
//! message naming the packages and the command to run — never half-way
//! with a permission error. Driven with stand-ins for `id`, `sudo` and
//! `apt-get` on PATH: nothing is installed. And its test passes
//! (`.ci/tests.sh`): every test on SQLite, then the store and integration
//! tests on PostgreSQL, on one cluster stopped at the end — driven with a
//! stand-in `cargo` and stand-in cluster functions.

use crate::support::repo;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// A folder of stand-in commands: `id -u` prints `uid`; `sudo` (when
/// given) exits with `sudo_status`; `apt-get` logs its arguments and exits
/// with `apt_status`.
fn stand_ins(dir: &Path, uid: u32, sudo_status: Option<i32>, apt_status: i32) {
    let write = |name: &str, body: String| {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("stand-in");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("mode");
    };
    write("id", format!("echo {uid}"));
    if let Some(status) = sudo_status {
        write(
            "sudo",
            format!(
                "echo \"sudo $*\" >> '{}'\nexit {status}",
                dir.join("calls").display()
            ),
        );
    }
    write(
        "apt-get",
        format!(
            "echo \"apt-get $*\" >> '{}'\nexit {apt_status}",
            dir.join("calls").display()
        ),
    );
}

/// `bash -c script` in the repository, with only `dir`'s stand-ins on PATH
/// and nothing else in the environment.
fn bash_with_only(dir: &Path, script: &str) -> std::process::Output {
    Command::new("/bin/bash")
        .arg("-c")
        .arg(script)
        .current_dir(repo())
        .env_clear()
        .env("PATH", dir)
        .stdin(Stdio::null())
        .output()
        .expect("bash")
}

/// Runs `install_debian_packages chromium chromium-driver` with only the
/// stand-ins on PATH; returns the exit code, stderr and the commands called.
fn install(dir: &Path) -> (i32, String, String) {
    let out = bash_with_only(
        dir,
        ". .ci/debian.sh; install_debian_packages chromium chromium-driver; echo installed",
    );
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        calls,
    )
}

#[test]
fn without_root_or_sudo_the_debian_step_stops_naming_the_packages_and_the_command() {
    for (case, sudo) in [("no sudo", None), ("sudo refuses", Some(1))] {
        let dir = tempfile::tempdir().expect("dir");
        stand_ins(dir.path(), 1000, sudo, 0);
        let (code, err, calls) = install(dir.path());
        assert_eq!(code, 1, "{case}: {err}");
        assert!(
            err.contains("the tests need the Debian package(s): chromium chromium-driver"),
            "{case}: {err}"
        );
        assert!(
            err.contains("apt-get update && apt-get install -y chromium chromium-driver"),
            "{case}: the command to run: {err}"
        );
        assert!(
            !calls.contains("apt-get"),
            "{case}: apt-get never ran: {calls}"
        );
    }
}

#[test]
fn as_root_the_debian_step_installs_and_a_failed_install_stops_with_the_command() {
    let dir = tempfile::tempdir().expect("dir");
    stand_ins(dir.path(), 0, None, 0);
    let (code, err, calls) = install(dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        calls.contains("apt-get install -y -qq chromium chromium-driver"),
        "{calls}"
    );

    let dir = tempfile::tempdir().expect("dir");
    stand_ins(dir.path(), 0, None, 100);
    let (code, err, _) = install(dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("could not install the Debian package(s): chromium chromium-driver")
            && err.contains("apt-get install -y chromium chromium-driver"),
        "{err}"
    );

    // A user whose sudo works without a password: through sudo.
    let dir = tempfile::tempdir().expect("dir");
    stand_ins(dir.path(), 1000, Some(0), 0);
    let (code, err, calls) = install(dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        calls.contains("sudo -E apt-get install -y -qq chromium chromium-driver"),
        "{calls}"
    );
}

/// Runs `.ci/tests.sh`'s `run_test_passes` as `.ci/run` does (`set -e`),
/// with a stand-in `cargo` that logs its arguments with the engine and the
/// cluster URL it was given (and fails when its arguments contain
/// `fail_on`), and stand-in `start_test_postgres`/`stop_test_postgres`.
/// Returns the exit code and the calls in order.
fn test_passes(dir: &Path, fail_on: Option<&str>) -> (i32, Vec<String>) {
    let calls = dir.join("calls");
    let cargo = dir.join("cargo");
    let fail = fail_on
        .map(|f| format!("case \"$*\" in *'{f}'*) exit 101;; esac"))
        .unwrap_or_default();
    std::fs::write(
        &cargo,
        format!(
            "#!/bin/sh\necho \"cargo $* engine=${{RXSYNC_TEST_ENGINE:-sqlite}} url=${{RXSYNC_TEST_PG_URL:-none}}\" >> '{}'\n{fail}\n",
            calls.display()
        ),
    )
    .expect("stand-in");
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).expect("mode");
    let log = calls.display();
    let script = format!(
        "set -euo pipefail; . .ci/tests.sh
         start_test_postgres() {{ echo start >> '{log}'; export RXSYNC_TEST_PG_URL=postgres://stand-in/postgres; }}
         stop_test_postgres() {{ echo stop >> '{log}'; }}
         run_test_passes
         echo finished >> '{log}'"
    );
    let out = bash_with_only(dir, &script);
    let calls = std::fs::read_to_string(calls).unwrap_or_default();
    (
        out.status.code().unwrap_or(-1),
        calls.lines().map(str::to_string).collect(),
    )
}

#[test]
fn the_tests_run_on_sqlite_then_on_postgresql_on_one_cluster_stopped_at_the_end() {
    const URL: &str = "url=postgres://stand-in/postgres";
    let sqlite =
        format!("cargo test --all-targets --locked -- --include-ignored engine=sqlite {URL}");
    let store = format!("cargo test --lib --locked -- store:: engine=postgres {URL}");
    let it = format!("cargo test --test it --locked engine=postgres {URL}");

    let dir = tempfile::tempdir().expect("dir");
    let (code, calls) = test_passes(dir.path(), None);
    assert_eq!(code, 0, "{calls:?}");
    assert_eq!(
        calls,
        ["start", &sqlite, &store, &it, "finished", "stop"],
        "the SQLite pass (with the cluster for db_postgres), then the PostgreSQL pass"
    );

    // A failing SQLite pass stops the run before PostgreSQL's; the cluster still goes.
    let dir = tempfile::tempdir().expect("dir");
    let (code, calls) = test_passes(dir.path(), Some("--all-targets"));
    assert_eq!(code, 101, "{calls:?}");
    assert_eq!(calls, ["start", sqlite.as_str(), "stop"]);

    // A failing PostgreSQL pass fails the run, and the cluster goes.
    let dir = tempfile::tempdir().expect("dir");
    let (code, calls) = test_passes(dir.path(), Some("--test it"));
    assert_eq!(code, 101, "{calls:?}");
    assert_eq!(calls, ["start", &sqlite, &store, &it, "stop"]);

    // .ci/run makes these passes (after fmt and clippy) and runs no test of its own.
    let run = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    assert!(run.contains(". .ci/tests.sh"), "{run}");
    assert_eq!(run.trim_end().lines().last(), Some("run_test_passes"));
    assert!(!run.contains("cargo test"), "{run}");
}
