//! How a C-CDA Medication Activity is given: its dates (`IVL_TS`, or a
//! single `TS`), its timing (`PIVL_TS` periods, `EIVL_TS` events, a PRN
//! precondition) and its dose, written out as text. Nothing is computed:
//! `every 6 h` is what the document says, in words a reviewer reads.

use roxmltree::Node;

use super::xml::{attr, child, children, coded_text, is_null, quantity_text, xsi_type};
use crate::parse::MedRecord;

/// Start and stop (`IVL_TS`, or a single `TS`) and frequency (`PIVL_TS`,
/// `EIVL_TS`), from the activity's `effectiveTime`s.
pub(super) fn timing(sa: Node, record: &mut MedRecord) {
    let mut frequency = Vec::new();
    for et in children(sa, "effectiveTime") {
        if is_null(et) {
            continue;
        }
        match xsi_type(et) {
            Some("PIVL_TS") => frequency.extend(period(et)),
            Some("EIVL_TS") => frequency.extend(event(et)),
            Some("IVL_TS") | None if record.start.is_none() && record.stop.is_none() => {
                let bound = |name| {
                    child(et, name)
                        .filter(|b| !is_null(*b))
                        .and_then(|b| attr(b, "value"))
                        .map(str::to_string)
                };
                record.start = bound("low")
                    .or_else(|| bound("center"))
                    .or_else(|| attr(et, "value").map(str::to_string));
                record.stop = bound("high");
            }
            _ => {}
        }
    }
    if child(sa, "precondition").is_some() {
        frequency.push("as needed".to_string());
    }
    if !frequency.is_empty() {
        record.frequency = Some(frequency.join(", "));
    }
}

/// `every 6 h`, `every 4-6 h`, with `(institution specified)` when the
/// times are the institution's (a BID, say).
fn period(et: Node) -> Option<String> {
    let p = child(et, "period")?;
    let every = match (quantity_text(p), child(p, "low"), child(p, "high")) {
        (Some(q), _, _) => format!("every {q}"),
        (None, Some(low), Some(high)) => {
            let unit = attr(high, "unit")
                .or_else(|| attr(low, "unit"))
                .unwrap_or("");
            format!(
                "every {}-{} {unit}",
                attr(low, "value")?,
                attr(high, "value")?
            )
            .trim_end()
            .to_string()
        }
        _ => return None,
    };
    Some(
        if attr(et, "institutionSpecified").is_some_and(|v| v == "true") {
            format!("{every} (institution specified)")
        } else {
            every
        },
    )
}

/// `HS (at bedtime)`: an event-related time (HL7 TimingEvent).
fn event(et: Node) -> Option<String> {
    let code = child(et, "event").and_then(|e| attr(e, "code"))?;
    let meaning = match code {
        "HS" => "at bedtime",
        "WAKE" => "upon waking",
        "AC" => "before meals",
        "ACM" => "before breakfast",
        "ACD" => "before lunch",
        "ACV" => "before dinner",
        "PC" => "after meals",
        "PCM" => "after breakfast",
        "PCD" => "after lunch",
        "PCV" => "after dinner",
        "C" => "with meals",
        "CM" => "with breakfast",
        "CD" => "with lunch",
        "CV" => "with dinner",
        "IC" => "between meals",
        _ => return Some(code.to_string()),
    };
    Some(format!("{code} ({meaning})"))
}

/// `doseQuantity` (a value, or a low-high range) with its unit, or with
/// the `administrationUnitCode` (puff, tablet) when it has none.
pub(super) fn dose(sa: Node) -> Option<String> {
    let dq = child(sa, "doseQuantity").filter(|d| !is_null(*d))?;
    let amount = quantity_text(dq).or_else(|| {
        let low = child(dq, "low").and_then(quantity_text)?;
        match child(dq, "high").and_then(quantity_text) {
            Some(high) => Some(format!("{low} - {high}")),
            None => Some(low),
        }
    })?;
    let unitless = attr(dq, "unit").is_none_or(|u| u == "1") && !amount.contains(' ');
    match child(sa, "administrationUnitCode").and_then(coded_text) {
        Some(unit) if unitless => Some(format!("{amount} {unit}")),
        _ => Some(amount),
    }
}
