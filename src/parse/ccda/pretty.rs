//! The excerpt a reviewer reads: an element pretty-printed (two-space
//! indents, comments and namespace declarations left out, text escaped),
//! so that a `substanceAdministration` written on one line or with
//! exporter-specific indentation reads the same. Iterative: no recursion.

use roxmltree::Node;

use super::xml::{Edge, V3, traverse};

/// Appends `node` (an element) pretty-printed to `out`.
pub(super) fn pretty(node: Node, out: &mut String) {
    let mut depth = 0usize;
    // An element written on one line: its descendants are skipped.
    let mut inline: Option<roxmltree::NodeId> = None;
    for edge in traverse(node) {
        match edge {
            Edge::Open(_) if inline.is_some() => {}
            Edge::Close(n) if inline.is_some() => {
                if inline == Some(n.id()) {
                    inline = None;
                    depth = depth.saturating_sub(1);
                }
            }
            Edge::Open(n) if n.is_element() => {
                indent(out, depth);
                open_tag(n, out);
                depth += 1;
                if n.children().any(|c| c.is_element()) {
                    out.push_str(">\n");
                } else {
                    match own_text(n) {
                        Some(text) => {
                            out.push('>');
                            escape(&text, false, out);
                            out.push_str("</");
                            out.push_str(&qname(n));
                            out.push_str(">\n");
                        }
                        None => out.push_str("/>\n"),
                    }
                    inline = Some(n.id());
                }
            }
            Edge::Open(n) if n.is_text() => {
                let text = n.text().map(collapse).unwrap_or_default();
                if !text.is_empty() {
                    indent(out, depth);
                    escape(&text, false, out);
                    out.push('\n');
                }
            }
            Edge::Open(_) => {}
            Edge::Close(n) if n.is_element() => {
                depth = depth.saturating_sub(1);
                indent(out, depth);
                out.push_str("</");
                out.push_str(&qname(n));
                out.push_str(">\n");
            }
            Edge::Close(_) => {}
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// `<name attr="value"…` (without the closing `>`).
fn open_tag(n: Node, out: &mut String) {
    out.push('<');
    out.push_str(&qname(n));
    for a in n.attributes() {
        out.push(' ');
        if let Some(prefix) = a.namespace().and_then(|ns| n.lookup_prefix(ns)) {
            out.push_str(prefix);
            out.push(':');
        }
        out.push_str(a.name());
        out.push_str("=\"");
        escape(a.value(), true, out);
        out.push('"');
    }
}

/// The element's name, with the prefix it was written with when it is not
/// in the default v3 namespace (`sdtc:…`).
fn qname(n: Node) -> String {
    let local = n.tag_name().name();
    match n.tag_name().namespace() {
        Some(ns) if ns != V3 => match n.lookup_prefix(ns) {
            Some(prefix) => format!("{prefix}:{local}"),
            None => local.to_string(),
        },
        _ => local.to_string(),
    }
}

fn own_text(n: Node) -> Option<String> {
    let text: String = n
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect();
    let text = collapse(&text);
    (!text.is_empty()).then_some(text)
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn escape(text: &str, attribute: bool, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
}
