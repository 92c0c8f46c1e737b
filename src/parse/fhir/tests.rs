use super::*;

#[test]
fn dump() {
    for entry in std::fs::read_dir("samples/fhir").unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let res = if path.extension().unwrap() == "xml" {
            parse_xml(&bytes)
        } else {
            parse_json(&bytes)
        };
        println!("== {}", path.display());
        match res {
            Ok(doc) => {
                println!("patient {:?} problems {:?}", doc.patient_ref, doc.problems);
                for mut r in doc.records {
                    r.excerpt = r.excerpt.chars().take(40).collect();
                    println!("{r:?}");
                }
            }
            Err(e) => println!("ERR {e:?}"),
        }
    }
}

#[test]
fn probe_corpus() {
    for dir in [
        "r4/json",
        "r4/xml",
        "stu3/json",
        "stu3/xml",
        "dstu2/json",
        "dstu2/xml",
    ] {
        let mut n = 0;
        for entry in std::fs::read_dir(format!("tests/corpus/fhir/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let res = if dir.ends_with("xml") {
                parse_xml(&bytes)
            } else {
                parse_json(&bytes)
            };
            n += 1;
            match res {
                Ok(doc) => {
                    let skipped: Vec<_> = doc
                        .problems
                        .iter()
                        .filter(|p| p.kind == crate::parse::ProblemKind::Skipped)
                        .collect();
                    if !skipped.is_empty() {
                        println!("{} problems {:?}", path.display(), skipped);
                    }
                    if doc.records.is_empty() {
                        println!("{} NO RECORDS", path.display());
                    }
                }
                Err(e) => println!("{} ERR {e}", path.display()),
            }
        }
        println!("{dir}: {n}");
    }
}
