//! The sandbox's FHIR Bulk Data state, pure: backend-services access
//! tokens, the client assertions' `jti`s (a replay is refused), and the
//! exports kicked off (their polls and downloads, for the interruption mode).
//! The HTTP side is `http/bulk.rs`; the caller passes the clock.

use std::collections::HashMap;

/// An export the sandbox is running.
#[derive(Debug, Clone)]
pub(crate) struct Export {
    /// The patients and resource types it covers.
    pub patients: Vec<String>,
    pub types: Vec<String>,
    /// Status requests answered so far.
    pub polls: u32,
    /// Downloads per file number.
    pub downloads: HashMap<usize, u32>,
    pub transaction_time: String,
}

/// Tokens, `jti`s and exports.
#[derive(Debug, Default)]
pub(crate) struct BulkState {
    /// Access token → expiry (epoch seconds).
    tokens: HashMap<String, u64>,
    /// Assertion `jti` → its `exp`: remembered until then.
    jtis: HashMap<String, u64>,
    exports: HashMap<String, Export>,
    next: u64,
}

impl BulkState {
    /// Records an assertion's `jti`; false when it was seen before (a replay).
    pub fn fresh_jti(&mut self, jti: &str, exp: u64, now: u64) -> bool {
        self.jtis.retain(|_, e| *e >= now);
        if self.jtis.contains_key(jti) {
            return false;
        }
        self.jtis.insert(jti.to_string(), exp);
        true
    }

    pub fn issue(&mut self, token: String, expires: u64) {
        self.tokens.insert(token, expires);
    }

    /// Whether `token` was issued here and has not expired.
    pub fn valid(&self, token: &str, now: u64) -> bool {
        self.tokens.get(token).is_some_and(|e| *e > now)
    }

    /// Starts an export; returns its id.
    pub fn start(&mut self, export: Export) -> String {
        self.next += 1;
        let id = format!("x{}", self.next);
        self.exports.insert(id.clone(), export);
        id
    }

    /// Counts a status request; the export as it now stands.
    pub fn poll(&mut self, id: &str) -> Option<Export> {
        let e = self.exports.get_mut(id)?;
        e.polls += 1;
        Some(e.clone())
    }

    /// Counts a download of file `n`; how many there were, this one included.
    pub fn download(&mut self, id: &str, n: usize) -> Option<(Export, u32)> {
        let e = self.exports.get_mut(id)?;
        let count = e.downloads.entry(n).or_insert(0);
        *count += 1;
        let count = *count;
        Some((e.clone(), count))
    }

    /// Ends an export (`DELETE`); false when there was none.
    pub fn delete(&mut self, id: &str) -> bool {
        self.exports.remove(id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_good_once_and_tokens_expire() {
        let mut s = BulkState::default();
        assert!(s.fresh_jti("a", 100, 10));
        assert!(!s.fresh_jti("a", 100, 20), "replay");
        assert!(s.fresh_jti("a", 200, 101), "forgotten after its exp");
        s.issue("t".into(), 50);
        assert!(s.valid("t", 49));
        assert!(!s.valid("t", 50));
        assert!(!s.valid("u", 0));
    }
}
