//! Small helpers over roxmltree nodes for the C-CDA reader: elements of the
//! HL7 v3 namespace by local name, trimmed attributes, `xsi:type`, flattened
//! text and person names. Nothing here allocates a tree or recurses.

use roxmltree::Node;

/// The HL7 v3 namespace every C-CDA element lives in.
pub(super) const V3: &str = "urn:hl7-org:v3";
/// XML Schema instance, for `xsi:type`.
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Whether `node` is the v3 element `name`.
pub(super) fn is(node: Node, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(V3)
}

/// The v3 child elements of `node` named `name`.
pub(super) fn children<'a, 'i>(
    node: Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(move |c| is(*c, name))
}

/// The first v3 child element of `node` named `name`.
pub(super) fn child<'a, 'i>(node: Node<'a, 'i>, name: &'static str) -> Option<Node<'a, 'i>> {
    children(node, name).next()
}

/// The first element down a path of child names.
pub(super) fn path<'a, 'i>(node: Node<'a, 'i>, names: &[&'static str]) -> Option<Node<'a, 'i>> {
    names.iter().try_fold(node, |n, name| child(n, name))
}

/// An attribute without namespace, trimmed, when it is not empty.
pub(super) fn attr<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attribute(name)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The element's `xsi:type` without its prefix (`IVL_TS`, `PIVL_TS`…).
pub(super) fn xsi_type<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    node.attribute((XSI, "type"))
        .map(|t| t.rsplit(':').next().unwrap_or(t).trim())
}

/// Whether the element says it has no value (`nullFlavor`).
pub(super) fn is_null(node: Node) -> bool {
    attr(node, "nullFlavor").is_some()
}

/// Whether `node` carries the template `root` (any version).
pub(super) fn has_template(node: Node, root: &str) -> bool {
    children(node, "templateId").any(|t| attr(t, "root") == Some(root))
}

/// The text of an element and its descendants, whitespace collapsed
/// (narrative cells are separated by a space); None when there is none.
pub(super) fn text_of(node: Node) -> Option<String> {
    let mut out = String::new();
    for piece in node
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
    {
        for word in piece.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// An instance identifier (`id`) as one string: `root^extension`, or the
/// root alone; None for a nullFlavored or empty id.
pub(super) fn identifier(id: Node) -> Option<String> {
    if is_null(id) {
        return None;
    }
    match (attr(id, "root"), attr(id, "extension")) {
        (Some(root), Some(ext)) => Some(format!("{root}^{ext}")),
        (Some(root), None) => Some(root.to_string()),
        (None, Some(ext)) => Some(ext.to_string()),
        (None, None) => None,
    }
}

/// A person or organization name (`PN`/`ON`): its parts in order
/// (prefix, given, family, suffix), or its text when it has no parts.
pub(super) fn name_text(name: Node) -> Option<String> {
    if is_null(name) {
        return None;
    }
    let mut parts = Vec::new();
    for part in ["prefix", "given", "family", "suffix"] {
        parts.extend(children(name, part).filter_map(text_of));
    }
    if parts.is_empty() {
        text_of(name)
    } else {
        Some(parts.join(" "))
    }
}

/// A physical quantity (`PQ`) as text: `40 [IU]`, `2` (unit `1` is no unit).
pub(super) fn quantity_text(pq: Node) -> Option<String> {
    if is_null(pq) {
        return None;
    }
    let value = attr(pq, "value")?;
    Some(match attr(pq, "unit").filter(|u| *u != "1") {
        Some(unit) => format!("{value} {unit}"),
        None => value.to_string(),
    })
}

/// A coded value (`CD`/`CE`) as text: its display name, else its original
/// text, else its code; None when it is nullFlavored without text.
pub(super) fn coded_text(cd: Node) -> Option<String> {
    attr(cd, "displayName")
        .map(str::to_string)
        .or_else(|| child(cd, "originalText").and_then(text_of))
        .or_else(|| (!is_null(cd)).then(|| attr(cd, "code").map(str::to_string))?)
}

/// One step of a depth-first walk: an element (or other node) opened or closed.
#[derive(Clone, Copy)]
pub(super) enum Edge<'a, 'i> {
    Open(Node<'a, 'i>),
    Close(Node<'a, 'i>),
}

/// Walks `root` and its descendants depth-first without recursion (by
/// sibling and parent links), opening and closing each node.
pub(super) fn traverse<'a, 'i>(root: Node<'a, 'i>) -> impl Iterator<Item = Edge<'a, 'i>> {
    let mut next = Some(Edge::Open(root));
    std::iter::from_fn(move || {
        let edge = next?;
        next = match edge {
            Edge::Open(n) => Some(match n.first_child() {
                Some(c) => Edge::Open(c),
                None => Edge::Close(n),
            }),
            Edge::Close(n) if n == root => None,
            Edge::Close(n) => match n.next_sibling() {
                Some(s) => Some(Edge::Open(s)),
                None => n.parent().map(Edge::Close),
            },
        };
        Some(edge)
    })
}
