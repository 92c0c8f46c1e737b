//! What happens to a request before routing, like a load balancer in front
//! of the provider: redirect rules, injected faults, and the log of
//! requests received (for tests to check what a client really sent).
//! Pure data structures; the HTTP layer applies them.

use std::collections::VecDeque;

use serde::Serialize;

use super::config::RedirectRule;

/// The `Location` and status for a request path, by the first rule whose
/// `from` prefixes `path`: `to` replaces the prefix, the rest of the path
/// and the query are kept.
pub(crate) fn redirect<'r>(
    rules: &'r [RedirectRule],
    path: &str,
    query: Option<&str>,
) -> Option<(u16, String)> {
    let rule: &'r RedirectRule = rules.iter().find(|r| path.starts_with(&r.from))?;
    let rest = &path[rule.from.len()..];
    let mut location = String::with_capacity(rule.to.len() + rest.len() + 1);
    location.push_str(&rule.to);
    // `/moved/` → `/` must give `/ccr/p`, not `//ccr/p` (which a client
    // would read as another host).
    if location.ends_with('/') && rest.starts_with('/') {
        location.push_str(&rest[1..]);
    } else {
        location.push_str(rest);
    }
    if let Some(q) = query {
        location.push('?');
        location.push_str(q);
    }
    Some((rule.status, location))
}

/// A fault to inject: the next `remaining` requests under `path_prefix`
/// are answered with `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Fault {
    pub path_prefix: String,
    pub status: u16,
    pub remaining: u32,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
    pub body: Option<String>,
}

/// Pending faults, first added first used.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pending: Vec<Fault>,
}

/// More pending faults than this are refused (hostile or runaway tests).
pub(crate) const MAX_FAULTS: usize = 1000;

impl Faults {
    /// Adds a fault; false when too many are pending.
    pub fn add(&mut self, fault: Fault) -> bool {
        if self.pending.len() >= MAX_FAULTS {
            return false;
        }
        if fault.remaining > 0 {
            self.pending.push(fault);
        }
        true
    }

    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// The fault for this request, if one is pending for its path; using
    /// it counts it down.
    pub fn take(&mut self, path: &str) -> Option<Fault> {
        let i = self
            .pending
            .iter()
            .position(|f| path.starts_with(&f.path_prefix))?;
        let fault = &mut self.pending[i];
        fault.remaining -= 1;
        let used = fault.clone();
        if fault.remaining == 0 {
            self.pending.remove(i);
        }
        Some(used)
    }
}

/// One request as received, for `GET /admin/requests`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// The raw query (as sent, still percent-encoded), `null` without one.
    pub query: Option<String>,
    /// Lower-case name → value; repeated headers joined with `, `.
    pub headers: serde_json::Map<String, serde_json::Value>,
}

/// The last `capacity` requests, within `byte_budget` bytes of text (a
/// client sending huge headers cannot make the log hold gigabytes).
#[derive(Debug)]
pub(crate) struct RequestLog {
    entries: VecDeque<(usize, LoggedRequest)>,
    capacity: usize,
    byte_budget: usize,
    bytes: usize,
}

impl LoggedRequest {
    /// Roughly the memory its text takes.
    fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.as_str().map_or(0, str::len))
            .sum();
        self.method.len() + self.path.len() + self.query.as_ref().map_or(0, String::len) + headers
    }
}

impl RequestLog {
    pub fn new(capacity: usize, byte_budget: usize) -> RequestLog {
        RequestLog {
            entries: VecDeque::new(),
            capacity,
            byte_budget,
            bytes: 0,
        }
    }

    pub fn push(&mut self, entry: LoggedRequest) {
        let size = entry.size();
        while !self.entries.is_empty()
            && (self.entries.len() >= self.capacity || self.bytes + size > self.byte_budget)
        {
            if let Some((old, _)) = self.entries.pop_front() {
                self.bytes -= old;
            }
        }
        self.bytes += size;
        self.entries.push_back((size, entry));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    pub fn entries(&self) -> impl Iterator<Item = &LoggedRequest> {
        self.entries.iter().map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(from: &str, to: &str, status: u16) -> RedirectRule {
        RedirectRule {
            from: from.into(),
            to: to.into(),
            status,
        }
    }

    #[test]
    fn redirects_replace_the_prefix_and_keep_the_rest() {
        let rules = [
            rule("/moved/", "/", 301),
            rule("/loop-a/", "/loop-b/", 302),
            rule("/away/", "http://127.0.0.2:9/base/", 308),
        ];
        let cases = [
            ("/moved/ccr/p1", None, Some((301, "/ccr/p1"))),
            (
                "/moved/fhir/MedicationRequest",
                Some("patient=p&_count=2"),
                Some((301, "/fhir/MedicationRequest?patient=p&_count=2")),
            ),
            ("/loop-a/x", None, Some((302, "/loop-b/x"))),
            (
                "/away/ccr/p",
                Some("a=1"),
                Some((308, "http://127.0.0.2:9/base/ccr/p?a=1")),
            ),
            ("/moved", None, None),
            ("/ccr/p1", None, None),
        ];
        for (path, query, want) in cases {
            let got = redirect(&rules, path, query);
            assert_eq!(got.as_ref().map(|(s, l)| (*s, l.as_str())), want, "{path}");
        }
    }

    #[test]
    fn a_fault_answers_its_count_of_requests_then_stops() {
        let mut faults = Faults::default();
        assert!(faults.add(Fault {
            path_prefix: "/ccr/".into(),
            status: 503,
            remaining: 2,
            retry_after: Some(1),
            body: None,
        }));
        assert!(faults.take("/fhir/MedicationRequest").is_none());
        assert_eq!(faults.take("/ccr/p").map(|f| f.status), Some(503));
        assert_eq!(faults.take("/ccr/q").map(|f| f.remaining), Some(0));
        assert!(faults.take("/ccr/p").is_none());
    }

    #[test]
    fn the_request_log_keeps_the_latest_entries() {
        let mut log = RequestLog::new(2, 1000);
        for path in ["/a", "/b", "/c"] {
            log.push(LoggedRequest {
                method: "GET".into(),
                path: path.into(),
                query: None,
                headers: serde_json::Map::new(),
            });
        }
        let paths: Vec<&str> = log.entries().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/b", "/c"]);

        let mut small = RequestLog::new(100, 10);
        for path in ["/aaaa", "/bbbb", "/cccc"] {
            small.push(LoggedRequest {
                method: "GET".into(),
                path: path.into(),
                query: None,
                headers: serde_json::Map::new(),
            });
        }
        let paths: Vec<&str> = small.entries().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/cccc"], "8 bytes each, 10 bytes of budget");
    }
}
