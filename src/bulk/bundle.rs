//! A patient's lines as one FHIR `collection` Bundle: the document a bulk
//! import stores and reads like any other. The bytes depend only on the
//! lines and their order, so the same export gives the same bytes again
//! (an import of them is `unchanged`).

/// The Bundle of `resources` (each a JSON object as written), one entry per
/// line so that positions in the stored document name the entry.
pub fn collection<S: AsRef<str>>(resources: &[S]) -> Vec<u8> {
    let size: usize = resources.iter().map(|r| r.as_ref().len() + 16).sum();
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(b"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[");
    for (i, r) in resources.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"\n{\"resource\":");
        out.extend_from_slice(r.as_ref().as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"\n]}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_json_with_one_entry_per_resource() {
        let b = collection(&[r#"{"resourceType":"Medication","id":"m"}"#, r#"{"a":1}"#]);
        let v: serde_json::Value = serde_json::from_slice(&b).expect("JSON");
        assert_eq!(v["type"], "collection");
        assert_eq!(v["entry"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["entry"][1]["resource"]["a"], 1);
        let empty = collection::<&str>(&[]);
        assert!(serde_json::from_slice::<serde_json::Value>(&empty).is_ok());
    }
}
