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

/// One or more XML elements, re-indented by two spaces. Only whitespace
/// between tags changes: every tag, text and entity reference is copied
/// from the source byte for byte.
fn pretty_xml(text: &str) -> Option<String> {
    if !text.trim_start().starts_with('<') {
        return None;
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut depth = 0usize;
    // The element being closed holds text: its end tag stays on that line.
    let mut after_text = false;
    let indent = |out: &mut String, depth: usize| {
        if !out.is_empty() {
            out.push('\n');
        }
        out.extend(std::iter::repeat_n(' ', depth * 2));
    };
    loop {
        let start = usize::try_from(reader.buffer_position()).ok()?;
        let event = reader.read_event().ok()?;
        let end = usize::try_from(reader.buffer_position()).ok()?;
        let raw = text.get(start..end)?;
        match event {
            Event::Eof => break,
            Event::Start(_) => {
                indent(&mut out, depth);
                out.push_str(raw);
                depth += 1;
                after_text = false;
            }
            Event::End(_) => {
                depth = depth.checked_sub(1)?;
                if !after_text {
                    indent(&mut out, depth);
                }
                out.push_str(raw);
                after_text = false;
            }
            Event::Text(_) if raw.trim().is_empty() => {}
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                out.push_str(raw);
                after_text = true;
            }
            _ => {
                indent(&mut out, depth);
                out.push_str(raw);
                after_text = false;
            }
        }
    }
    (depth == 0).then_some(out)
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
        let xml = pretty_excerpt("<M>\n<N a=\"1\"><T>x &lt;b&gt; y</T><E/></N></M>");
        assert_eq!(
            xml, "<M>\n  <N a=\"1\">\n    <T>x &lt;b&gt; y</T>\n    <E/>\n  </N>\n</M>",
            "text and references copied as they were"
        );
        assert_eq!(
            pretty_excerpt("<a><b></a>"),
            "<a><b></a>",
            "malformed: as is"
        );
        assert_eq!(pretty_excerpt("plain"), "plain");
    }
}
