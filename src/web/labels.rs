//! The words people read for the codes the store and the API use: exception
//! kinds and states, severities, regimen and link states, times, and audit
//! records as sentences. The JSON API keeps the codes; only the pages use
//! these. Each table is an exhaustive `match`, so a new kind (or state)
//! does not build until it has its label and description here.

use crate::domain::{Action, ExceptionKind, ExceptionState, Severity};
use crate::store::AuditEntry;
use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, html};

/// An exception kind, as a heading says it.
pub fn kind_label(kind: ExceptionKind) -> &'static str {
    kind.label()
}

/// A kind code from the store as people read it (an unknown code as is).
pub fn kind_text(code: &str) -> String {
    code.parse::<ExceptionKind>()
        .map(|k| kind_label(k).to_string())
        .unwrap_or_else(|_| code.to_string())
}

/// An exception state.
pub fn state_label(state: ExceptionState) -> &'static str {
    match state {
        ExceptionState::Open => "Open",
        ExceptionState::Resolved => "Resolved",
        ExceptionState::Dismissed => "Dismissed",
    }
}

/// A state code from the store as people read it.
pub fn state_text(code: &str) -> String {
    code.parse::<ExceptionState>()
        .map(|s| state_label(s).to_string())
        .unwrap_or_else(|_| code.to_string())
}

/// A severity.
pub fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Error => "Error",
        Severity::Warning => "Warning",
        Severity::Info => "Info",
    }
}

/// A severity code from the store as people read it.
pub fn severity_text(code: &str) -> String {
    match code {
        "error" => severity_label(Severity::Error).to_string(),
        "warning" => severity_label(Severity::Warning).to_string(),
        "info" => severity_label(Severity::Info).to_string(),
        other => other.to_string(),
    }
}

/// A regimen status or a link state (the store's words) as people read them.
pub fn status_text(code: &str) -> String {
    match code {
        "needs_review" => "Needs review".to_string(),
        "reviewed" => "Reviewed".to_string(),
        "superseded" => "Superseded".to_string(),
        "needs_relink" => "Needs re-linking".to_string(),
        "held" => "Held".to_string(),
        other => sentence_case(&other.replace('_', " ")),
    }
}

/// A decision word (`map`, `remove`…) as people read it. Every
/// `domain::Action` is matched exhaustively, so a new action does not build
/// until it has its words here; `dismiss` (a notice, not an action) too.
pub fn decision_text(code: &str) -> String {
    if code == "dismiss" {
        return "Dismissed".to_string();
    }
    match code.parse::<Action>() {
        Ok(Action::Map) => "Mapped".to_string(),
        Ok(Action::Remove) => "Removed".to_string(),
        Ok(Action::Keep) => "Kept both".to_string(),
        Ok(Action::Accept) => "Accepted".to_string(),
        Ok(Action::Confirm) => "Confirmed the link's identity".to_string(),
        Ok(Action::Reject) => "Rejected the link (not this patient)".to_string(),
        Err(_) => sentence_case(code),
    }
}

/// Who took a decision, as a sentence ("dr.lee mapped the item").
pub fn decision_sentence(by: &str, code: &str) -> String {
    if code == "dismiss" {
        return format!("{by} dismissed it");
    }
    match code.parse::<Action>() {
        Ok(Action::Map) => format!("{by} mapped the item"),
        Ok(Action::Remove) => format!("{by} removed the item"),
        Ok(Action::Keep) => format!("{by} kept both items"),
        Ok(Action::Accept) => format!("{by} accepted it as it is"),
        Ok(Action::Confirm) => format!("{by} confirmed the link's identity"),
        Ok(Action::Reject) => format!("{by} rejected the link (not this patient)"),
        Err(_) => format!("{by}: {code}"),
    }
}

fn sentence_case(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A stored time as a `<time>` element: the machine value (UTC, RFC 3339,
/// whole seconds) in `datetime`, the UTC text in `title`, readable UTC
/// text inside (rewritten to the viewer's local time by `review.js`).
/// Text that is not a time is shown as it is.
pub fn time(text: &str) -> Markup {
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => time_at(t.with_timezone(&Utc)),
        Err(_) => html! { (text) },
    }
}

/// A time, shown to the minute in UTC, with the exact time on hover.
pub fn time_at(t: DateTime<Utc>) -> Markup {
    let machine = t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let utc = t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    html! { time datetime=(machine) title=(utc) { (t.format("%Y-%m-%d %H:%M UTC")) } }
}

/// An optional stored time, or a dash.
pub fn time_or_dash(text: Option<&str>) -> Markup {
    match text {
        Some(t) => time(t),
        None => html! { "—" },
    }
}

/// An audit record as a sentence ("dr.lee mapped exception #7 (Unmapped
/// NDC) to NDC 00006-0952-31"), without its time, which the caller shows.
pub fn audit_sentence(a: &AuditEntry) -> String {
    let detail: serde_json::Value = a
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(serde_json::Value::Null);
    let field = |k: &str| detail.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let number = |k: &str| detail.get(k).and_then(|v| v.as_i64());
    let subject = a.subject.as_deref().unwrap_or("");
    let exception = || {
        let id = subject.strip_prefix("exception/").unwrap_or(subject);
        match field("kind") {
            Some(k) => format!("exception #{id} ({})", kind_text(&k)),
            None => format!("exception #{id}"),
        }
    };
    let note = field("note")
        .map(|n| format!(" — “{n}”"))
        .unwrap_or_default();
    let who = &a.actor;
    match a.action.as_str() {
        "exception.map" => format!(
            "{who} mapped the item of {} to NDC {}{note}",
            exception(),
            field("ndc11").as_deref().map_or("?".to_string(), ndc_text)
        ),
        "exception.remove" => format!("{who} removed the item of {}{note}", exception()),
        "exception.keep" => format!("{who} kept both items of {}{note}", exception()),
        "exception.accept" => format!("{who} accepted {}{note}", exception()),
        "exception.dismiss" => format!("{who} dismissed {}{note}", exception()),
        "exception.reopen" => format!("{who} reopened {}{note}", exception()),
        "import" => format!(
            "{who} imported version {} from {subject}: {} item(s)",
            number("version").map_or("?".to_string(), |v| v.to_string()),
            number("items").map_or("?".to_string(), |v| v.to_string()),
        ),
        "import.unchanged" => {
            format!("{who} imported the same document from {subject} again: no new version")
        }
        "import.unreadable" => format!("{who} imported an unreadable document from {subject}"),
        "provider.access" => format!("{who} read from the provider {subject}"),
        other => {
            let words = other.replace(['.', '_'], " ");
            if subject.is_empty() {
                format!("{who}: {words}")
            } else {
                format!("{who}: {words} {subject}")
            }
        }
    }
}

/// An 11-digit NDC in its 5-4-2 hyphenated form (other text as is).
pub fn ndc_text(ndc11: &str) -> String {
    crate::domain::Ndc11::from_digits(ndc11)
        .map(|n| n.hyphenated())
        .unwrap_or_else(|_| ndc11.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decision_reads_as_words_not_its_code() {
        assert_eq!(
            decision_sentence("dr.lee", "confirm"),
            "dr.lee confirmed the link's identity"
        );
        assert_eq!(
            decision_sentence("dr.lee", "reject"),
            "dr.lee rejected the link (not this patient)"
        );
        assert_eq!(decision_text("confirm"), "Confirmed the link's identity");
        assert_eq!(
            decision_text("reject"),
            "Rejected the link (not this patient)"
        );
        for code in [
            "map", "remove", "keep", "accept", "confirm", "reject", "dismiss",
        ] {
            let s = decision_sentence("dr.lee", code);
            assert!(!s.contains(':') && !s.ends_with(code), "{code}: {s}");
            assert_ne!(decision_text(code).to_lowercase(), code, "{code}");
        }
        assert_eq!(decision_sentence("dr.lee", "zap"), "dr.lee: zap");
    }

    #[test]
    fn every_kind_has_a_label_and_a_description_without_codes() {
        for k in ExceptionKind::ALL {
            assert!(!kind_label(k).contains('_'), "{k}");
            assert!(k.description().ends_with('.'), "{k}");
            assert_eq!(kind_text(k.as_str()), kind_label(k));
        }
    }

    #[test]
    fn a_time_shows_utc_without_milliseconds_and_keeps_the_machine_value() {
        let m = time("2026-12-06T03:58:28.123Z").into_string();
        assert_eq!(
            m,
            "<time datetime=\"2026-12-06T03:58:28Z\" title=\"2026-12-06 03:58:28 UTC\">2026-12-06 03:58 UTC</time>"
        );
        assert_eq!(time("soon").into_string(), "soon");
    }

    #[test]
    fn a_mapping_reads_as_a_sentence() {
        let a = AuditEntry {
            id: 1,
            at: "2026-12-06T03:58:28.123Z".into(),
            actor: "dr.lee".into(),
            action: "exception.map".into(),
            patient: Some("p".into()),
            subject: Some("exception/7".into()),
            detail: Some(
                r#"{"exception":7,"kind":"unmapped_ndc","ndc11":"00006095231","note":null}"#.into(),
            ),
        };
        assert_eq!(
            audit_sentence(&a),
            "dr.lee mapped the item of exception #7 (Unmapped NDC) to NDC 00006-0952-31"
        );
    }
}
