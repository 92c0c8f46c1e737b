//! Folding record-level repeats into one item.
//!
//! A request, its dispenses and a statement based on it describe one
//! medication, and so do refills written with the same sig. These are not
//! clinical duplicates: they become one item listing every source record.
//! Two records fold when one references the other, or when they name the
//! same drug (same NDC in whatever form it was written, else the same codes,
//! else the same name) with the same directions, dose, frequency and route.
//! A claim line has no directions: it folds with the first other record of
//! the same drug, else with the other claims of that drug (each fill of one
//! drug is one more source of one item).

use super::resolve::Resolution;
use super::{Flag, Item};
use crate::domain::{Code, MedStatus};
use crate::parse::{Evidence, MedRecord};
use std::collections::HashMap;

/// A kept record: its position in the parser's output, the record, its
/// normalized status and how its drug resolved.
type Member<'a> = (usize, &'a MedRecord, MedStatus, Resolution);

pub(super) fn fold(members: Vec<Member<'_>>) -> (Vec<Item>, Vec<Flag>) {
    let n = members.len();
    let mut parent: Vec<usize> = (0..n).collect();
    let mut by_ref: HashMap<String, usize> = HashMap::new();
    let mut by_identity: HashMap<String, usize> = HashMap::new();
    // The first record (not a claim) of each drug, and the claims to place.
    let mut by_drug: HashMap<String, usize> = HashMap::new();
    let mut claims: Vec<(usize, String)> = Vec::new();
    for (i, (_, record, _, resolution)) in members.iter().enumerate() {
        if let Some(src) = &record.source
            && let Some(id) = &src.id
        {
            by_ref.entry(format!("{}/{}", src.kind, id)).or_insert(i);
        }
        if record.evidence == Evidence::Claim {
            if let Some(drug) = drug_key(record, resolution) {
                claims.push((i, drug));
            }
            continue;
        }
        if let Some(drug) = drug_key(record, resolution) {
            by_drug.entry(drug).or_insert(i);
        }
        if let Some(key) = identity(record, resolution) {
            match by_identity.get(&key) {
                Some(&j) => union(&mut parent, i, j),
                None => {
                    by_identity.insert(key, i);
                }
            }
        }
    }
    let mut claim_groups: HashMap<String, usize> = HashMap::new();
    for (i, drug) in claims {
        match by_drug.get(&drug) {
            Some(&j) => union(&mut parent, i, j),
            None => match claim_groups.get(&drug) {
                Some(&j) => union(&mut parent, i, j),
                None => {
                    claim_groups.insert(drug, i);
                }
            },
        }
    }
    // Links are folded only where there are any: the words each record
    // says of its drug are read for that alone.
    if members.iter().any(|m| !m.1.related.is_empty()) {
        // Per group root, the members that say what their drug is (an NDC of
        // their own, or a name): only they can disagree about the drug.
        let words: Vec<Vec<String>> = members
            .iter()
            .map(|m| super::mismatch::record_words(m.1))
            .collect();
        // Members that say the same (same NDC, same drug words) answer alike,
        // so each group keeps one of each: a thousand fills of one drug linked
        // to one request are compared once, not a thousand times over.
        let says: Vec<String> = members
            .iter()
            .zip(&words)
            .map(|(m, w)| {
                let ndc = m.3.ndc_key().map(|k| k.to_string()).unwrap_or_default();
                format!("{ndc}|{}", w.join(" "))
            })
            .collect();
        let mut telling: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, member) in members.iter().enumerate() {
            if member.3.ndc_key().is_some() || !words[i].is_empty() {
                let root = find(&mut parent, i);
                if !telling[root].iter().any(|&t| says[t] == says[i]) {
                    telling[root].push(i);
                }
            }
        }
        for (i, (_, record, _, _)) in members.iter().enumerate() {
            for r in &record.related {
                // A link (a dispense's prescription, a replaced order, a
                // claim's prescription) folds only records that agree on the
                // drug: a new order for another strength stays its own item,
                // for the duplicate checks to see, and a claim for another drug
                // than its prescription's stays its own item, for the mismatch
                // check to see. Groups are compared whole, since folding is
                // transitive: two dispenses of other strengths linked to one
                // uncoded request must not meet through it.
                let Some(&j) = by_ref.get(r) else { continue };
                let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                if ri == rj {
                    continue;
                }
                let agree = telling[ri].iter().all(|&a| {
                    telling[rj]
                        .iter()
                        .all(|&b| linkable(&members[a], &words[a], &members[b], &words[b]))
                });
                if agree {
                    union(&mut parent, i, j);
                    let (lo, hi) = (ri.min(rj), ri.max(rj));
                    for m in std::mem::take(&mut telling[hi]) {
                        if !telling[lo].iter().any(|&t| says[t] == says[m]) {
                            telling[lo].push(m);
                        }
                    }
                }
            }
        }
    }

    // Groups in the order of their first record.
    let mut order: Vec<usize> = Vec::new();
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let root = find(&mut parent, i);
        let g = groups.entry(root).or_default();
        if g.is_empty() {
            order.push(root);
        }
        g.push(i);
    }
    let mut items = Vec::with_capacity(order.len());
    let mut flags = Vec::new();
    for root in order {
        let group = &groups[&root];
        let (item, flag) = build(group.iter().map(|&i| &members[i]).collect());
        if let Some((kind, detail)) = flag {
            flags.push(Flag {
                kind,
                item: Some(items.len()),
                related: None,
                record: None,
                detail,
            });
        }
        items.push(item);
    }
    (items, flags)
}

/// Whether two linked records may describe one medication: both identified
/// as the same product (labeler+product) or the same clinical drug, or one
/// of them not identified by an NDC at all.
fn same_drug(a: &Resolution, b: &Resolution) -> bool {
    match (a.ndc_key(), b.ndc_key()) {
        (Some(x), Some(y)) => {
            x.product_key() == y.product_key()
                || matches!((&a.product, &b.product), (Some(p), Some(q)) if p.product.clinical_key() == q.product.clinical_key())
        }
        _ => true,
    }
}

/// Whether two linked records may describe one medication: both
/// identified by NDC as one drug (`same_drug`), or — when not both have an
/// NDC — their own texts naming one drug, or one record's text naming the
/// other's product, or one of them saying nothing by name.
fn linkable(a: &Member<'_>, wa: &[String], b: &Member<'_>, wb: &[String]) -> bool {
    if a.3.ndc_key().is_some() && b.3.ndc_key().is_some() {
        return same_drug(&a.3, &b.3);
    }
    if super::mismatch::words_agree(wa, wb) != Some(false) {
        return true;
    }
    let names = |x: &Member<'_>, y: &Member<'_>| {
        y.3.product
            .as_ref()
            .is_some_and(|p| super::mismatch::record_names_product(x.1, &p.product) == Some(true))
    };
    names(a, b) || names(b, a)
}

/// How current a status is, most current first: a folded item shows the
/// status of its most current record (an active refill beats a completed one).
fn currency(s: MedStatus) -> u8 {
    match s {
        MedStatus::Active => 0,
        MedStatus::OnHold => 1,
        MedStatus::Intended => 2,
        MedStatus::Draft => 3,
        MedStatus::Dispensed => 4,
        MedStatus::Unknown => 5,
        MedStatus::NotTaken => 6,
        MedStatus::Completed => 7,
        MedStatus::Stopped => 8,
        MedStatus::Cancelled => 9,
        MedStatus::EnteredInError => 10,
    }
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        // Keep the earlier record as the root so groups keep document order.
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[hi] = lo;
    }
}

fn norm(s: &Option<String>) -> String {
    s.as_deref()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// What makes two records "the same prescription": the drug and the sig.
fn identity(record: &MedRecord, resolution: &Resolution) -> Option<String> {
    let drug = drug_key(record, resolution)?;
    let sig = record.directions.join(" ");
    Some(format!(
        "{drug}|{}|{}|{}|{}",
        norm(&Some(sig)),
        norm(&record.dose),
        norm(&record.frequency),
        norm(&record.route)
    ))
}

/// The drug a record names: its NDC (in whatever form it was written), else its codes, else its name; with
/// the stated strength and form where the drug text may hide them.
fn drug_key(record: &MedRecord, resolution: &Resolution) -> Option<String> {
    let drug = if let Some(n) = resolution.ndc_key() {
        format!("ndc:{n}")
    } else if !record.codes.is_empty() || !record.ingredient_codes.is_empty() {
        let mut codes: Vec<String> = record
            .codes
            .iter()
            .chain(&record.ingredient_codes)
            .map(|c| format!("{}:{}", c.system.label(), c.value))
            .collect();
        codes.sort();
        format!("codes:{}", codes.join(","))
    } else {
        format!("name:{}", norm(&Some(record.name.clone()?)))
    };
    // Without an NDC of its own the drug text may hide the strength
    // (free-text "Lisinopril" 10 mg and 40 mg): the strength and form are
    // part of it, also when a remembered decision supplied the NDC.
    let strength_form = if resolution.ndc_key().is_none() || resolution.mapping.is_some() {
        let strengths: Vec<String> = record
            .strengths
            .iter()
            .map(|s| format!("{} {}", s.value, s.unit.as_deref().unwrap_or("")))
            .collect();
        format!(
            "{}|{}",
            norm(&Some(strengths.join("+"))),
            norm(&record.form)
        )
    } else {
        String::new()
    };
    Some(format!("{drug}|{strength_form}"))
}

fn build(group: Vec<&Member<'_>>) -> (Item, Option<(super::ExceptionKind, String)>) {
    let best = group
        .iter()
        .min_by_key(|(_, _, _, r)| r.rank())
        .map(|(_, _, _, r)| r.clone())
        .unwrap_or_else(unreachable_resolution);
    // A dispense says what was handed over, not whether the drug is still
    // taken: the status comes from the most current request or statement,
    // and from a dispense only when there is nothing else.
    // A claim line is dispense evidence too: it never decides the status
    // of an item that has a request or a statement.
    let is_dispense = |r: &MedRecord| {
        r.evidence == Evidence::Claim
            || r.source
                .as_ref()
                .is_some_and(|s| s.kind == "MedicationDispense")
    };
    // The latest fill among the claims, which the item's fill details and
    // (for an item known only from claims) its text and dates show.
    // A cancelled (reversed) claim is not a fill, unless there is no other.
    let latest = |cancelled: bool| {
        group
            .iter()
            .filter(|(_, r, s, _)| {
                r.evidence == Evidence::Claim && (cancelled || *s != MedStatus::Cancelled)
            })
            .max_by(|a, b| a.1.prescribed.cmp(&b.1.prescribed))
            .map(|(_, r, _, _)| *r)
    };
    let latest_claim = latest(false).or_else(|| latest(true));
    let only_claims = group
        .iter()
        .all(|(_, r, _, _)| r.evidence == Evidence::Claim);
    let (status_record, status) = group
        .iter()
        .filter(|(_, r, _, _)| !is_dispense(r))
        .min_by_key(|(_, _, s, _)| currency(*s))
        .or_else(|| group.iter().min_by_key(|(_, _, s, _)| currency(*s)))
        .map(|(_, r, s, _)| (*r, *s))
        .unwrap_or((group[0].1, group[0].2));
    // Only claims: the latest fill speaks (its status is the most current
    // one's, so a longer supply filled earlier still counts).
    let status_record = match latest_claim {
        Some(latest) if only_claims => latest,
        _ => status_record,
    };
    let first =
        |f: fn(&MedRecord) -> &Option<String>| group.iter().find_map(|(_, r, _, _)| f(r).clone());

    let mut codes: Vec<Code> = Vec::new();
    let mut ingredient_codes: Vec<Code> = Vec::new();
    let mut directions: Vec<String> = Vec::new();
    let mut strength: Option<String> = None;
    for (_, r, _, _) in &group {
        union_codes(&mut codes, &r.codes);
        union_codes(&mut ingredient_codes, &r.ingredient_codes);
        for d in &r.directions {
            if !directions.contains(d) {
                directions.push(d.clone());
            }
        }
        if strength.is_none() {
            strength = super::stated_strength(&r.strengths);
        }
    }
    let item = Item {
        ndc11: best.ndc11,
        ndc12: best.ndc12,
        ndc_original: best.ndc_original.clone(),
        ndc_inferred: best.inferred,
        mapping: best.mapping.clone(),
        name: first(|r| &r.name),
        brand: first(|r| &r.brand),
        codes,
        ingredient_codes,
        strength,
        form: first(|r| &r.form),
        route: first(|r| &r.route),
        dose: first(|r| &r.dose),
        frequency: first(|r| &r.frequency),
        sig: if only_claims && directions.is_empty() {
            latest_claim.map(super::fill_text)
        } else {
            (!directions.is_empty()).then(|| directions.join("; "))
        },
        status,
        status_original: match &status_record.status {
            // A claim's status is the claim's (`active`: in force), not the drug's.
            Some(s) if status_record.evidence == Evidence::Claim => Some(format!("claim {s}")),
            other => other.clone(),
        },
        start: first(|r| &r.start),
        // The stop date of the record whose status the item shows.
        stop: status_record.stop.clone(),
        prescribed: if only_claims {
            latest_claim.and_then(|r| r.prescribed.clone())
        } else {
            group
                .iter()
                .filter(|(_, r, _, _)| r.evidence != Evidence::Claim)
                .find_map(|(_, r, _, _)| r.prescribed.clone())
        },
        prescriber: first(|r| &r.prescriber),
        evidence: if only_claims {
            Evidence::Claim
        } else {
            Evidence::Record
        },
        days_supply: latest_claim
            .and_then(|r| r.days_supply.clone())
            .or_else(|| first(|r| &r.days_supply)),
        quantity: latest_claim
            .and_then(|r| r.quantity.clone())
            .or_else(|| first(|r| &r.quantity)),
        dispenser: latest_claim
            .and_then(|r| r.dispenser.clone())
            .or_else(|| first(|r| &r.dispenser)),
        section: {
            let mut sections: Vec<&str> = Vec::new();
            for (_, r, _, _) in group.iter() {
                if let Some(s) = r.section.as_deref()
                    && !sections.contains(&s)
                {
                    sections.push(s);
                }
            }
            (!sections.is_empty()).then(|| sections.join("; "))
        },
        sources: group
            .iter()
            .filter_map(|(_, r, _, _)| r.source.clone())
            .collect(),
        records: group.iter().map(|(ordinal, _, _, _)| *ordinal).collect(),
        product: best.product.clone(),
    };
    (item, best.flag)
}

/// Completes what the document left unsaid (name, strength, dose form,
/// route) from the dictionary's product. `build` leaves these as the
/// records gave them, so that the mismatch check sees the document's own
/// words first; `normalize` calls this only for items whose document does
/// not contradict their product.
pub(super) fn fill_from_product(item: &mut Item) {
    let Some(entry) = item.product.clone() else {
        return;
    };
    let p = &entry.product;
    if item.name.is_none() {
        item.name = Some(if p.proprietary_name.is_empty() {
            p.nonproprietary_name.clone()
        } else {
            p.proprietary_name.clone()
        });
    }
    if item.strength.is_none() {
        item.strength = Some(p.strength_text()).filter(|s| !s.is_empty());
    }
    if item.form.is_none() {
        item.form = Some(p.dosage_form.clone());
    }
    if item.route.is_none() {
        item.route = Some(p.route.clone());
    }
}

/// Adds the codes not already present (same system and value), in order.
fn union_codes(into: &mut Vec<Code>, codes: &[Code]) {
    for c in codes {
        if !into
            .iter()
            .any(|k| k.system == c.system && k.value == c.value)
        {
            into.push(c.clone());
        }
    }
}

/// Groups are never empty (each holds at least its root), so this is only
/// a typed placeholder for the impossible case.
fn unreachable_resolution() -> Resolution {
    Resolution {
        ndc11: None,
        ndc12: None,
        ndc_original: None,
        inferred: false,
        mapping: None,
        product: None,
        flag: None,
    }
}
