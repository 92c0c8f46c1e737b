//! `.ci/run`'s Debian step (`.ci/debian.sh`): as root it installs; as a
//! user without root or a working sudo it stops before apt-get with a
//! message naming the packages and the command to run — never half-way
//! with a permission error. Driven with stand-ins for `id`, `sudo` and
//! `apt-get` on PATH: nothing is installed.

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

/// Runs `install_debian_packages chromium chromium-driver` with only the
/// stand-ins on PATH; returns the exit code, stderr and the commands called.
fn install(dir: &Path) -> (i32, String, String) {
    let out = Command::new("/bin/bash")
        .arg("-c")
        .arg(". .ci/debian.sh; install_debian_packages chromium chromium-driver; echo installed")
        .current_dir(repo())
        .env_clear()
        .env("PATH", dir)
        .stdin(Stdio::null())
        .output()
        .expect("bash");
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
