//! This process as a worker: the name its leases carry (host, pid and a
//! random id) and whether another holder's process still runs.
//!
//! Probing processes (`gethostname`, `kill(pid, 0)`) lives here, not in
//! the store: the store keeps leases and gives back those its caller names
//! dead (`Store::release_dead_leases`).

/// This process's name for the leases it takes: `pid N on HOST (random)`.
pub fn lease_holder_name() -> String {
    format!(
        "pid {} on {} ({:08x})",
        std::process::id(),
        host_name(),
        rand::random::<u32>()
    )
}

pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it or truncates.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether a lease holder is a process of this host that no longer runs.
/// Holders of other hosts (or another PID namespace's view), and anything
/// unparsable, are left to their lease's expiry.
pub fn lease_holder_is_dead(holder: &str, own: &str) -> bool {
    let Some((pid, host)) = holder
        .strip_prefix("pid ")
        .and_then(|r| r.split_once(" on "))
        .and_then(|(pid, rest)| {
            let host = rest.rsplit_once(" (").map_or(rest, |(h, _)| h);
            pid.parse::<i32>().ok().map(|p| (p, host))
        })
    else {
        return false;
    };
    if host != host_name() || pid <= 0 {
        return false;
    }
    if pid as u32 == std::process::id() {
        // Our pid: ours if it is our name, else a dead predecessor's.
        return holder != own;
    }
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_lease_holders_are_told_from_live_and_foreign_ones() {
        let own = lease_holder_name();
        let host = host_name();
        let me = std::process::id();
        assert!(!lease_holder_is_dead(&own, &own), "our own lease");
        assert!(
            lease_holder_is_dead(&format!("pid {me} on {host} (00000000)"), &own),
            "our pid under another name: a predecessor (a restarted container's pid 1)"
        );
        assert!(!lease_holder_is_dead("pid 1 on some-other-host (1)", &own));
        assert!(!lease_holder_is_dead("garbage", &own));
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let gone = child.id();
        child.wait().expect("wait");
        assert!(lease_holder_is_dead(
            &format!("pid {gone} on {host} (1)"),
            &own
        ));
        let mut live = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn");
        assert!(!lease_holder_is_dead(
            &format!("pid {} on {host} (1)", live.id()),
            &own
        ));
        let _ = live.kill();
        let _ = live.wait();
    }
}
