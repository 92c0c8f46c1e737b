use super::*;

fn sample(name: &str) -> Vec<u8> {
    let path = format!("{}/samples/ccda/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn dump() {
    let doc = parse(&sample("r21-ccd.xml")).unwrap();
    println!("{}", serde_json::to_string_pretty(&doc).unwrap());
}
