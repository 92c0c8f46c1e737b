//! Pretty-printing a source excerpt for reviewers: JSON (FHIR resources)
//! re-indented, XML (CCR `Medication` elements) re-indented. Text that is
//! neither comes back as it was. The result is text: the page escapes it.

use quick_xml::events::Event;

/// The excerpt, indented for reading.
pub fn pretty_excerpt(text: &str) -> String {
    pretty_json(text)
        .or_else(|| pretty_xml(text))
        .unwrap_or_else(|| text.to_string())
}

/// One or more JSON values (an item folded from several resources).
fn pretty_json(text: &str) -> Option<String> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') && !trimmed.starts_with('[') {
        return None;
    }
    let values = serde_json::Deserializer::from_str(text)
        .into_iter::<serde_json::Value>()
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let parts = values
        .iter()
        .map(serde_json::to_string_pretty)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some(parts.join("\n"))
}

/// One or more XML elements, re-indented by two spaces.
fn pretty_xml(text: &str) -> Option<String> {
    if !text.trim_start().starts_with('<') {
        return None;
    }
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(event) => writer.write_event(event).ok()?,
            Err(_) => return None,
        }
    }
    String::from_utf8(writer.into_inner()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_xml_and_other_text() {
        assert_eq!(
            pretty_excerpt(r#"{"a":1}"#),
            "{\n  \"a\": 1\n}",
            "one resource"
        );
        assert_eq!(
            pretty_excerpt("{\"a\":1}\n{\"b\":2}").matches('\n').count(),
            5
        );
        let xml = pretty_excerpt("<M><N><T>x &lt;b&gt;</T></N></M>");
        assert_eq!(xml, "<M>\n  <N>\n    <T>x &lt;b&gt;</T>\n  </N>\n</M>");
        assert_eq!(
            pretty_excerpt("<a><b></a>"),
            "<a><b></a>",
            "malformed: as is"
        );
        assert_eq!(pretty_excerpt("plain"), "plain");
    }
}
