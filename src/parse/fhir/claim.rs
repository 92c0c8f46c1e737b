//! One `ExplanationOfBenefit` (a claim) into dispense-evidence records: one
//! per line that names a drug, and a stated reason for each line that
//! does not.
//!
//! Pharmacy and Part D claims (CARIN Blue Button R4, CMS Blue Button 2.0
//! STU3, DSTU2 shapes) carry an NDC per line: `item.productOrService` (R4),
//! `item.service` (STU3 CodeableConcept, DSTU2 Coding), a line's `detail`,
//! or an NDC extension on the line. The fill date, quantity, days supply,
//! pharmacy and prescriber come from the line and the claim around it.
//! A claim shows that a drug was filled, never that it is taken now: the
//! records say so (`Evidence::Claim`), and `normalize` decides what that
//! means for an item. Like the rest of the parser this reads and never
//! interprets: codes stay as given (a placeholder NDC is still a code;
//! `normalize` refuses it), numbers and dates stay text.

use super::model::{
    ClaimItem, CodeableConcept, Coding, Num, Reference, Resource, ServiceCode, SupportingInfo,
    non_empty,
};
use super::record::{Systems, text};
use crate::domain::{Code, CodeSystem};
use crate::parse::{Evidence, LeftOut, MedRecord, SourceRef};

/// The resource type this module reads.
pub(super) const KIND: &str = "ExplanationOfBenefit";

/// What one claim yields.
#[derive(Debug, Default)]
pub(super) struct ClaimRecords {
    /// One record per line with a drug code, in line order.
    pub(super) records: Vec<MedRecord>,
    /// The lines (or the claim) that yield no record, with why.
    pub(super) left_out: Vec<LeftOut>,
}

/// Reads one ExplanationOfBenefit.
pub(super) fn read(eob: &Resource, systems: &mut Systems) -> ClaimRecords {
    let mut out = ClaimRecords::default();
    let id = text(eob.id.as_deref());
    let name = match &id {
        Some(id) => format!("{KIND}/{id}"),
        None => format!("{KIND} (without id)"),
    };
    let kind = claim_kind(eob.claim_type.as_deref());
    let lines = eob.item.as_deref().map_or(&[][..], |m| &m.0[..]);
    if lines.is_empty() {
        out.left_out.push(LeftOut {
            source: Some(source(id.as_deref(), None)),
            reason: format!("{name}: {} without lines", a_claim(kind.as_deref())),
        });
        return out;
    }
    let claim = Claim::of(eob);
    for (position, line) in lines.iter().enumerate() {
        let sequence = line
            .sequence
            .as_ref()
            .and_then(Num::text)
            .unwrap_or_else(|| (position + 1).to_string());
        let mut all = Vec::new();
        let mut name_text = None;
        line_codes(line, systems, &mut all, &mut name_text, 0);
        let (drug, other): (Vec<Code>, Vec<Code>) = all.into_iter().partition(is_drug_code);
        if drug.is_empty() {
            out.left_out.push(LeftOut {
                source: Some(source(id.as_deref(), Some(&sequence))),
                reason: format!(
                    "{name} line {sequence}: {} line without a drug code ({})",
                    a_claim(kind.as_deref()),
                    codes_words(&other)
                ),
            });
            continue;
        }
        let name = drug.iter().find_map(|c| c.display.clone()).or(name_text);
        let fill = text(line.serviced_date.as_deref())
            .or_else(|| {
                line.serviced_period
                    .as_ref()
                    .and_then(|p| text(p.start.as_deref()))
            })
            .or_else(|| claim.billed_from.clone());
        out.records.push(MedRecord {
            source: Some(source(id.as_deref(), Some(&sequence))),
            related: claim.related.clone(),
            name,
            codes: drug,
            status: claim.status.clone(),
            prescribed: fill,
            prescriber: claim.prescriber.clone(),
            evidence: Evidence::Claim,
            days_supply: days_supply(claim.info, line),
            quantity: line.quantity.as_ref().and_then(|q| q.render()),
            dispenser: claim.dispenser.clone(),
            ..MedRecord::default()
        });
    }
    out
}

/// What every line of one claim shares.
struct Claim<'r, 'a> {
    status: Option<String>,
    billed_from: Option<String>,
    prescriber: Option<String>,
    dispenser: Option<String>,
    related: Vec<String>,
    /// `supportingInfo` (R4), else `information` (STU3).
    info: &'r [SupportingInfo<'a>],
}

impl<'r, 'a> Claim<'r, 'a> {
    fn of(eob: &'r Resource<'a>) -> Self {
        let info = eob
            .supporting_info
            .as_deref()
            .or(eob.information.as_deref())
            .map_or(&[][..], |m| &m.0[..]);
        let team = eob.care_team.as_deref().map_or(&[][..], |m| &m.0[..]);
        // The prescriber: a `prescribing` member (CARIN), else the
        // `primary` one (Blue Button 2.0 Part D events name only him).
        let member = |role: &str| {
            team.iter()
                .filter(|m| m.role.as_ref().is_some_and(|r| has_code(r, role)))
                .find_map(|m| m.provider.as_ref().and_then(who))
        };
        let prescriber = member("prescribing").or_else(|| member("primary"));
        let places = [
            eob.provider.as_deref(),
            eob.facility.as_deref(),
            eob.organization.as_deref(),
        ];
        let dispenser = places
            .iter()
            .flatten()
            .find_map(|r| text(r.display.as_deref()))
            .or_else(|| {
                // Only an NPI names a pharmacy; `organization` may be the plan.
                places[..2].iter().flatten().find_map(|r| npi(r))
            })
            .or_else(|| {
                info.iter()
                    .filter(|s| s.category.as_ref().is_some_and(|c| mentions(c, "pharmacy")))
                    .find_map(|s| {
                        s.value_reference
                            .as_ref()
                            .and_then(who)
                            .or_else(|| text(s.value_string.as_deref()))
                    })
            });
        Claim {
            status: text(eob.status.as_deref()),
            billed_from: eob
                .billable_period
                .as_deref()
                .and_then(|p| text(p.start.as_deref())),
            prescriber,
            dispenser,
            related: eob
                .prescription
                .as_deref()
                .and_then(|p| text(p.reference.as_deref()))
                .into_iter()
                .collect(),
            info,
        }
    }
}

/// `ExplanationOfBenefit` with `id#line`, so that the lines of one claim
/// stay distinct records (folding keys on `Type/id`).
fn source(id: Option<&str>, line: Option<&str>) -> SourceRef {
    SourceRef {
        kind: KIND.to_string(),
        id: match (id, line) {
            (Some(id), Some(line)) => Some(format!("{id}#{line}")),
            (None, Some(line)) => Some(format!("#{line}")),
            (id, None) => id.map(str::to_string),
        },
    }
}

/// Every code of a line: its service, its NDC extensions and its details'
/// (nested details are bounded: a hostile document could nest them deep).
fn line_codes(
    line: &ClaimItem,
    systems: &mut Systems,
    out: &mut Vec<Code>,
    name: &mut Option<String>,
    depth: usize,
) {
    for service in [&line.product_or_service, &line.service]
        .into_iter()
        .flatten()
    {
        push_service(service, systems, out);
        if name.is_none() {
            *name = text(service.text.as_deref());
        }
    }
    // Extensions carry all kinds of codes (Blue Button puts dozens of CMS
    // variables there): only a drug code is taken from one.
    for extension in &line.extension.0 {
        let concept = extension.value_codeable_concept.as_ref();
        let codings = extension
            .value_coding
            .iter()
            .chain(concept.map_or(&[][..], |c| &c.coding.0[..]));
        let mut found = Vec::new();
        for coding in codings {
            push_coding(coding, systems, &mut found);
        }
        for code in found.into_iter().filter(is_drug_code) {
            push_code(code, out);
        }
    }
    if depth < 2 {
        for detail in &line.detail.0 {
            line_codes(detail, systems, out, name, depth + 1);
        }
    }
}

fn push_service(service: &ServiceCode, systems: &mut Systems, out: &mut Vec<Code>) {
    for coding in &service.coding.0 {
        push_coding(coding, systems, out);
    }
    // DSTU2: the service is a Coding itself.
    if let Some(value) = non_empty(service.code.as_deref()) {
        let system = service.system.as_deref().unwrap_or("");
        push_code(systems.code(system, value, service.display.as_deref()), out);
    }
}

fn push_coding(coding: &Coding, systems: &mut Systems, out: &mut Vec<Code>) {
    if let Some(value) = non_empty(coding.code.as_deref()) {
        let system = coding.system.as_deref().unwrap_or("");
        push_code(systems.code(system, value, coding.display.as_deref()), out);
    }
}

/// Adds a code unless the same system and value is there already (an NDC
/// often stands both on the line and in its extension).
fn push_code(code: Code, out: &mut Vec<Code>) {
    if !out
        .iter()
        .any(|c| c.system == code.system && c.value == code.value)
    {
        out.push(code);
    }
}

/// A code that names a drug: NDC or RxNorm. HCPCS, CPT and revenue codes
/// name a service.
fn is_drug_code(code: &Code) -> bool {
    matches!(code.system, CodeSystem::Ndc | CodeSystem::RxNorm)
}

/// A line's days supply: from the `supportingInfo` the line points at, else
/// from any (a pharmacy claim has one line): category `dayssupply` (CARIN)
/// or Blue Button 2.0's `days_suply_num` (sic).
fn days_supply(info: &[SupportingInfo], line: &ClaimItem) -> Option<String> {
    let pointed: Vec<String> = line
        .information_sequence
        .0
        .iter()
        .chain(&line.information_link_id.0)
        .filter_map(Num::text)
        .collect();
    let is_days = |s: &&SupportingInfo| {
        [&s.category, &s.code].into_iter().flatten().any(|c| {
            c.coding.0.iter().any(|coding| {
                coding.code.as_deref().is_some_and(|code| {
                    let code = code.trim();
                    code.eq_ignore_ascii_case("dayssupply")
                        || code.ends_with("/days_suply_num")
                        || code.ends_with("/days_supply_num")
                })
            })
        })
    };
    let value = |s: &SupportingInfo| s.value_quantity.as_ref()?.value.as_ref()?.text();
    let of_line = info
        .iter()
        .filter(|s| {
            s.sequence
                .as_ref()
                .and_then(Num::text)
                .is_some_and(|n| pointed.contains(&n))
        })
        .filter(is_days)
        .find_map(value);
    of_line.or_else(|| info.iter().filter(is_days).find_map(value))
}

/// A person or organization as words: the display, else its NPI.
fn who(reference: &Reference) -> Option<String> {
    text(reference.display.as_deref()).or_else(|| npi(reference))
}

fn npi(reference: &Reference) -> Option<String> {
    let id = reference.identifier.as_deref()?;
    let system = id.system.as_deref()?.trim();
    system
        .ends_with("us-npi")
        .then(|| text(id.value.as_deref()).map(|v| format!("NPI {v}")))
        .flatten()
}

/// The claim's type in words (`pharmacy`, `professional`, …), when given.
fn claim_kind(concept: Option<&CodeableConcept>) -> Option<String> {
    let concept = concept?;
    const KNOWN: [&str; 5] = [
        "pharmacy",
        "professional",
        "institutional",
        "oral",
        "vision",
    ];
    let codes = || concept.coding.0.iter().filter_map(|c| c.code.as_deref());
    codes()
        .map(str::trim)
        .find(|c| KNOWN.iter().any(|k| c.eq_ignore_ascii_case(k)))
        .map(str::to_lowercase)
        .or_else(|| {
            codes()
                .any(|c| c.trim().eq_ignore_ascii_case("PDE"))
                .then(|| "Part D event".to_string())
        })
        .or_else(|| text(concept.name()))
}

/// "a pharmacy claim", "an institutional claim", "a claim".
fn a_claim(kind: Option<&str>) -> String {
    match kind {
        Some(k) => format!("{} {k} claim", super::extract::article(k)),
        None => "a claim".to_string(),
    }
}

/// The codes a line without a drug carries, as a reviewer reads them.
fn codes_words(codes: &[Code]) -> String {
    if codes.is_empty() {
        return "no code".to_string();
    }
    codes
        .iter()
        .map(|c| {
            let system = c.system_original.to_ascii_lowercase();
            let label = if system.contains("hcpcs") {
                "HCPCS"
            } else if system.contains("cpt") {
                "CPT"
            } else if system.contains("revenue") || system.contains("nubc") {
                "revenue code"
            } else if system.is_empty() {
                "code"
            } else {
                c.system_original.as_str()
            };
            format!("{label} {}", c.value)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn has_code(concept: &CodeableConcept, code: &str) -> bool {
    concept
        .coding
        .0
        .iter()
        .any(|c| c.code.as_deref().is_some_and(|x| x.trim() == code))
}

fn mentions(concept: &CodeableConcept, word: &str) -> bool {
    concept.coding.0.iter().any(|c| {
        c.code
            .as_deref()
            .is_some_and(|x| x.to_ascii_lowercase().contains(word))
    })
}
