//! National Drug Codes: parsing every shape providers send into the HIPAA
//! 11-digit 5-4-2 form, or — for a new 6-digit labeler — the FDA's 12-digit
//! 6-4-2 form.
//!
//! A 10-digit NDC has three segment layouts (4-4-2, 5-3-2, 5-4-1); the
//! 11-digit form pads the short segment with a leading zero. With hyphens the
//! layout is known; a bare 10-digit code could be any of the three, so
//! `parse` returns all three readings and leaves the choice to the caller,
//! who can ask the dictionary (see `normalize`).
//!
//! The FDA's final rule (Federal Register 2026-03-05, effective 2033-03-07)
//! moves every NDC to one 12-digit 6-4-2 format, hyphenated or as 12 bare
//! digits (a 12-digit string is never ambiguous). A 12-digit code whose
//! labeler starts with 0 is the same product as its 11-digit form (the NLM
//! already normalized `000074-1486-14` to `00074148614`), so it reads as that
//! `Ndc11` and is never counted twice. A labeler whose first digit is not 0 is
//! a new 6-digit labeler: it has no 11-digit form, and reads as
//! `NdcReading::NewLabeler` with its `Ndc12`. Every `Ndc11` has exactly one
//! 12-digit form (`Ndc11::to_ndc12`), which is why `Ndc12` is the key the
//! dictionary is looked up by; `Ndc11` stays for what truly has 11 digits.
//! This module never touches I/O.

use serde::{Serialize, Serializer};
use std::fmt;

/// A valid NDC in the 11-digit 5-4-2 form, without hyphens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ndc11([u8; 11]);

impl Ndc11 {
    /// Accepts exactly 11 ASCII digits (the stored form).
    pub fn from_digits(digits: &str) -> Result<Ndc11, NdcError> {
        let bytes = digits.as_bytes();
        if bytes.len() != 11 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(NdcError::NotElevenDigits(digits.to_string()));
        }
        let mut out = [0u8; 11];
        out.copy_from_slice(bytes);
        Ok(Ndc11(out))
    }

    /// The 11 digits.
    pub fn as_str(&self) -> &str {
        // The array only ever holds ASCII digits (checked on construction).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The 5-digit labeler segment.
    pub fn labeler(&self) -> &str {
        &self.as_str()[..5]
    }

    /// The 9-digit labeler+product key: two packages of one product share it.
    pub fn product_key(&self) -> &str {
        &self.as_str()[..9]
    }

    /// The 5-4-2 form with hyphens, for people.
    pub fn hyphenated(&self) -> String {
        let s = self.as_str();
        format!("{}-{}-{}", &s[..5], &s[5..9], &s[9..])
    }

    /// The same NDC in the FDA's 12-digit 6-4-2 form: the labeler gains a
    /// leading zero. Always defined.
    pub fn to_ndc12(&self) -> Ndc12 {
        let mut out = [b'0'; 12];
        out[1..].copy_from_slice(&self.0);
        Ndc12(out)
    }
}

/// A valid NDC in the FDA's 12-digit 6-4-2 form, without hyphens.
///
/// Every NDC has exactly one 12-digit form, so this is the key the
/// dictionary is looked up by. Only a code whose labeler starts with 0 also
/// has an 11-digit form (`to_ndc11`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ndc12([u8; 12]);

impl Ndc12 {
    /// Accepts exactly 12 ASCII digits (the stored form).
    pub fn from_digits(digits: &str) -> Result<Ndc12, NdcError> {
        let bytes = digits.as_bytes();
        if bytes.len() != 12 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(NdcError::NotTwelveDigits(digits.to_string()));
        }
        let mut out = [0u8; 12];
        out.copy_from_slice(bytes);
        Ok(Ndc12(out))
    }

    /// Reads a code written in a 12-digit form: hyphenated 6-4-2 or 12 bare
    /// digits. Other shapes are refused, even when they are NDCs (use
    /// `parse` and `NdcReading::keys` for those).
    pub fn parse(raw: &str) -> Result<Ndc12, NdcError> {
        let parsed = parse(raw)?;
        let lengths: Vec<usize> = parsed.original.split('-').map(str::len).collect();
        match (lengths.as_slice(), parsed.reading) {
            ([12] | [6, 4, 2], NdcReading::Exact(n)) => Ok(n.to_ndc12()),
            ([12] | [6, 4, 2], NdcReading::NewLabeler(n)) => Ok(n),
            _ => Err(NdcError::NotTwelveDigits(parsed.original)),
        }
    }

    /// The 12 digits.
    pub fn as_str(&self) -> &str {
        // The array only ever holds ASCII digits (checked on construction).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The 6-digit labeler segment.
    pub fn labeler(&self) -> &str {
        &self.as_str()[..6]
    }

    /// The 10-digit labeler+product key: two packages of one product share it.
    pub fn product_key(&self) -> &str {
        &self.as_str()[..10]
    }

    /// The 11-digit form: defined only when the labeler starts with 0 (a
    /// 5-digit labeler written with six). A new 6-digit labeler has none.
    pub fn to_ndc11(&self) -> Option<Ndc11> {
        match self.0 {
            [b'0', rest @ ..] => Some(Ndc11(rest)),
            _ => None,
        }
    }

    /// The 6-4-2 form with hyphens, for people.
    pub fn hyphenated(&self) -> String {
        let s = self.as_str();
        format!("{}-{}-{}", &s[..6], &s[6..10], &s[10..])
    }

    /// The form people know the NDC by today: the hyphenated 11-digit form
    /// when there is one, else the 6-4-2 form.
    pub fn shown(&self) -> String {
        match self.to_ndc11() {
            Some(n) => n.hyphenated(),
            None => self.hyphenated(),
        }
    }
}

impl From<Ndc11> for Ndc12 {
    fn from(n: Ndc11) -> Ndc12 {
        n.to_ndc12()
    }
}

impl fmt::Display for Ndc12 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Ndc12 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Ndc11 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Ndc11 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The layout a code arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NdcShape {
    /// Hyphenated 4-4-2 (labeler padded).
    H442,
    /// Hyphenated 5-3-2 (product padded).
    H532,
    /// Hyphenated 5-4-1 (package padded).
    H541,
    /// Hyphenated 5-4-2 (already 11 digits).
    H542,
    /// Hyphenated 6-4-2, 6-3-2 or 6-4-1 with a leading zero on the labeler
    /// (NLM normalization of a 5-digit labeler written with six).
    Labeler6,
    /// Hyphenated 6-4-2 with a new 6-digit labeler (first digit not 0):
    /// the FDA's 12-digit format, with no 11-digit form.
    H642,
    /// Twelve digits without hyphens: always 6-4-2.
    Bare12,
    /// Eleven digits without hyphens.
    Bare11,
    /// Ten digits without hyphens: the layout cannot be known.
    Bare10,
}

/// What a code means once parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NdcReading {
    /// The layout was known; this is the NDC.
    Exact(Ndc11),
    /// A bare 10-digit code: its 4-4-2, 5-3-2 and 5-4-1 readings, in that order.
    Ambiguous([Ndc11; 3]),
    /// A 12-digit code with a new 6-digit labeler (first digit not 0): the
    /// layout is known, but there is no 11-digit form.
    NewLabeler(Ndc12),
}

impl NdcReading {
    /// Every dictionary key this reading may be found under: one, or the
    /// three readings of a bare 10-digit code.
    pub fn keys(&self) -> Vec<Ndc12> {
        match self {
            NdcReading::Exact(n) => vec![n.to_ndc12()],
            NdcReading::Ambiguous(r) => r.iter().map(Ndc11::to_ndc12).collect(),
            NdcReading::NewLabeler(n) => vec![*n],
        }
    }
}

/// A parsed code, with the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedNdc {
    /// The code exactly as the document gave it (trimmed).
    pub original: String,
    /// The layout it arrived in.
    pub shape: NdcShape,
    /// The 11-digit reading(s), or the 12-digit code of a new labeler.
    pub reading: NdcReading,
}

/// Why a code is not an NDC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NdcError {
    /// The code was empty.
    #[error("empty code")]
    Empty,
    /// A character other than a digit, a hyphen or a package `*`.
    #[error("{0:?} holds a character that no NDC has")]
    BadCharacter(String),
    /// The stored form must be exactly 11 digits.
    #[error("{0:?} is not 11 digits")]
    NotElevenDigits(String),
    /// The 12-digit form must be exactly 12 digits.
    #[error("{0:?} is not 12 digits")]
    NotTwelveDigits(String),
    /// Hyphenated segments in a layout no NDC uses (such as 4-3-2).
    #[error("{code:?} has segments {layout}, which is not 4-4-2, 5-3-2, 5-4-1, 5-4-2 or 6-4-2")]
    BadLayout { code: String, layout: String },
    /// Only labeler and product (5-4 or 4-4): a product NDC, not a package.
    #[error("{0:?} is a product code (labeler-product) without a package segment")]
    ProductOnly(String),
    /// A bare digit string of a length no NDC has.
    #[error("{code:?} has {digits} digits; an NDC has 10, 11 or 12")]
    BadLength { code: String, digits: usize },
    /// An all-zero labeler: the FDA assigns none. (All-zero product and
    /// package segments are real: the 2019 directory has 243 packages such
    /// as `15631-0000-1`.)
    #[error("{0:?} has the all-zero labeler 00000, which the FDA assigns to no one")]
    ZeroLabeler(String),
    /// Every digit a zero or every digit a nine, in any length or layout:
    /// a system's stand-in for "no code" (`00000000000`, `99999999999`),
    /// never one drug's code.
    #[error("{0:?} is a placeholder (all zeros or all nines), not a drug's code")]
    Placeholder(String),
}

/// Whether a code is a placeholder: only zeros, or only nines, once its
/// hyphens are set aside (`00000-0000-00`, `0000000000`, `99999999999`).
/// A placeholder names no drug, so nothing may be remembered under it.
pub fn is_placeholder(raw: &str) -> bool {
    let mut digits = raw.trim().bytes().filter(|&b| b != b'-').peekable();
    match digits.peek().copied() {
        Some(first @ (b'0' | b'9')) => digits.all(|b| b == first),
        _ => false,
    }
}

/// Whether a code reads as an NDC (not a placeholder, in a shape some NDC
/// has; a bare 10-digit code counts, though it has three readings).
pub fn is_valid(raw: &str) -> bool {
    parse(raw).is_ok()
}

/// Parses an NDC in any shape providers send.
pub fn parse(raw: &str) -> Result<ParsedNdc, NdcError> {
    let original = raw.trim().to_string();
    if original.is_empty() {
        return Err(NdcError::Empty);
    }
    if is_placeholder(&original) {
        return Err(NdcError::Placeholder(original));
    }
    let segments: Vec<&str> = original.split('-').collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len() && segments.len() == 3;
        let ok = seg
            .bytes()
            .all(|b| b.is_ascii_digit() || (last && b == b'*'));
        if !ok || seg.is_empty() {
            return Err(NdcError::BadCharacter(original.clone()));
        }
    }
    let (shape, digits) = match segments.as_slice() {
        [bare] => return parse_bare(original.clone(), bare),
        [_, _] => return Err(NdcError::ProductOnly(original)),
        [l, p, k] => {
            // NLM: an asterisk in the package segment stands for a zero.
            let k = k.replace('*', "0");
            layout(&original, l, p, &k)?
        }
        _ => {
            return Err(NdcError::BadLayout {
                layout: segments
                    .iter()
                    .map(|s| s.len().to_string())
                    .collect::<Vec<_>>()
                    .join("-"),
                code: original,
            });
        }
    };
    if shape == NdcShape::H642 {
        let ndc = Ndc12::from_digits(&digits)?;
        return Ok(ParsedNdc {
            original,
            shape,
            reading: NdcReading::NewLabeler(ndc),
        });
    }
    let ndc = Ndc11::from_digits(&digits)?;
    reject_zero_segments(&original, &ndc)?;
    Ok(ParsedNdc {
        original,
        shape,
        reading: NdcReading::Exact(ndc),
    })
}

/// The shape of a hyphenated code and its digits: 11 for every layout with
/// an 11-digit form, 12 for a new 6-digit labeler's 6-4-2.
fn layout(original: &str, l: &str, p: &str, k: &str) -> Result<(NdcShape, String), NdcError> {
    let bad = || NdcError::BadLayout {
        code: original.to_string(),
        layout: format!("{}-{}-{}", l.len(), p.len(), k.len()),
    };
    Ok(match (l.len(), p.len(), k.len()) {
        (4, 4, 2) => (NdcShape::H442, format!("0{l}{p}{k}")),
        (5, 3, 2) => (NdcShape::H532, format!("{l}0{p}{k}")),
        (5, 4, 1) => (NdcShape::H541, format!("{l}{p}0{k}")),
        (5, 4, 2) => (NdcShape::H542, format!("{l}{p}{k}")),
        // A labeler written with six digits and a leading zero is the
        // 5-digit labeler (the NLM normalization, and the final rule's 6-4-2
        // of every existing labeler): the same product as the 11-digit form.
        (6, _, _) if l.starts_with('0') => {
            let (_, digits) = layout(original, &l[1..], p, k).map_err(|_| bad())?;
            (NdcShape::Labeler6, digits)
        }
        (6, 4, 2) => (NdcShape::H642, format!("{l}{p}{k}")),
        _ => return Err(bad()),
    })
}

fn parse_bare(original: String, digits: &str) -> Result<ParsedNdc, NdcError> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NdcError::BadCharacter(original));
    }
    match digits.len() {
        11 => {
            let ndc = Ndc11::from_digits(digits)?;
            reject_zero_segments(&original, &ndc)?;
            Ok(ParsedNdc {
                original,
                shape: NdcShape::Bare11,
                reading: NdcReading::Exact(ndc),
            })
        }
        10 => {
            let d = digits;
            let readings = [
                Ndc11::from_digits(&format!("0{d}"))?,
                Ndc11::from_digits(&format!("{}0{}", &d[..5], &d[5..]))?,
                Ndc11::from_digits(&format!("{}0{}", &d[..9], &d[9..]))?,
            ];
            Ok(ParsedNdc {
                original,
                shape: NdcShape::Bare10,
                reading: NdcReading::Ambiguous(readings),
            })
        }
        // Twelve digits are always 6-4-2, so the layout is known.
        12 => {
            let twelve = Ndc12::from_digits(digits)?;
            let reading = match twelve.to_ndc11() {
                Some(ndc) => {
                    reject_zero_segments(&original, &ndc)?;
                    NdcReading::Exact(ndc)
                }
                None => NdcReading::NewLabeler(twelve),
            };
            Ok(ParsedNdc {
                original,
                shape: NdcShape::Bare12,
                reading,
            })
        }
        n => Err(NdcError::BadLength {
            code: original,
            digits: n,
        }),
    }
}

fn reject_zero_segments(original: &str, ndc: &Ndc11) -> Result<(), NdcError> {
    if ndc.labeler().bytes().all(|b| b == b'0') {
        return Err(NdcError::ZeroLabeler(original.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact(raw: &str) -> Result<(NdcShape, String), NdcError> {
        let p = parse(raw)?;
        match p.reading {
            NdcReading::Exact(n) => Ok((p.shape, n.as_str().to_string())),
            other => panic!("{raw} read as {other:?}"),
        }
    }

    #[test]
    fn every_known_shape_normalizes_to_5_4_2() {
        // One row per rule; the codes are real ones from the FHIR examples,
        // the FDA directory and EHR sandboxes (see medication-notes.md).
        let rows: &[(&str, NdcShape, &str)] = &[
            ("0777-3105-02", NdcShape::H442, "00777310502"),
            ("0069-2587-10", NdcShape::H442, "00069258710"),
            ("0006-4681-01", NdcShape::H442, "00006468101"),
            ("16590-619-30", NdcShape::H532, "16590061930"),
            ("60505-7001-2", NdcShape::H541, "60505700102"),
            ("49281-0215-10", NdcShape::H542, "49281021510"),
            ("63739035410", NdcShape::Bare11, "63739035410"),
            (" 63739035410 ", NdcShape::Bare11, "63739035410"),
            ("000074-1486-14", NdcShape::Labeler6, "00074148614"),
            ("012345-678-90", NdcShape::Labeler6, "12345067890"),
            ("0002-7597-*1", NdcShape::H442, "00002759701"),
            ("11111-1111-11", NdcShape::H542, "11111111111"),
            ("15631-0000-1", NdcShape::H541, "15631000001"),
            ("10613-000-42", NdcShape::H532, "10613000042"),
            // FDA 12-digit 6-4-2 with an existing labeler: its 11-digit form.
            ("000074148614", NdcShape::Bare12, "00074148614"),
            ("060505-7001-02", NdcShape::Labeler6, "60505700102"),
            ("060505700102", NdcShape::Bare12, "60505700102"),
            ("000002-7597-*1", NdcShape::Labeler6, "00002759701"),
        ];
        for (raw, shape, want) in rows {
            assert_eq!(exact(raw), Ok((*shape, want.to_string())), "row {raw:?}");
        }
    }

    #[test]
    fn impossible_codes_are_refused_with_a_reason() {
        type Expect = fn(&NdcError) -> bool;
        let rows: &[(&str, Expect)] = &[
            ("", |e| matches!(e, NdcError::Empty)),
            ("2501-813-16", |e| matches!(e, NdcError::BadLayout { .. })),
            ("50090-0001", |e| matches!(e, NdcError::ProductOnly(_))),
            ("76013O881M", |e| matches!(e, NdcError::BadCharacter(_))),
            ("12345-6789-0a", |e| matches!(e, NdcError::BadCharacter(_))),
            ("1234-5678", |e| matches!(e, NdcError::ProductOnly(_))),
            ("123456789", |e| {
                matches!(e, NdcError::BadLength { digits: 9, .. })
            }),
            ("123456-789-12", |e| matches!(e, NdcError::BadLayout { .. })),
            ("123456-7890-1", |e| matches!(e, NdcError::BadLayout { .. })),
            ("1234567-890-12", |e| {
                matches!(e, NdcError::BadLayout { .. })
            }),
            ("1234567890123", |e| {
                matches!(e, NdcError::BadLength { digits: 13, .. })
            }),
            ("00000000000", |e| matches!(e, NdcError::Placeholder(_))),
            ("0000000000", |e| matches!(e, NdcError::Placeholder(_))),
            ("000000000000", |e| matches!(e, NdcError::Placeholder(_))),
            ("00000-0000-00", |e| matches!(e, NdcError::Placeholder(_))),
            ("99999999999", |e| matches!(e, NdcError::Placeholder(_))),
            ("9999999999", |e| matches!(e, NdcError::Placeholder(_))),
            ("99999-9999-99", |e| matches!(e, NdcError::Placeholder(_))),
            ("000000-1234-12", |e| matches!(e, NdcError::ZeroLabeler(_))),
            ("000000123412", |e| matches!(e, NdcError::ZeroLabeler(_))),
            ("00000-1234-12", |e| matches!(e, NdcError::ZeroLabeler(_))),
            ("0000-1234-12", |e| matches!(e, NdcError::ZeroLabeler(_))),
            ("1-2-3-4", |e| matches!(e, NdcError::BadLayout { .. })),
            ("12345--12", |e| matches!(e, NdcError::BadCharacter(_))),
            ("12*45-6789-12", |e| matches!(e, NdcError::BadCharacter(_))),
        ];
        for (raw, is_expected) in rows {
            match parse(raw) {
                Err(e) => assert!(is_expected(&e), "row {raw:?}: unexpected error {e:?}"),
                Ok(p) => panic!("row {raw:?} parsed as {p:?}"),
            }
        }
    }

    #[test]
    fn bare_ten_digits_yield_three_readings_in_order() {
        let p = parse("0264751010").expect("ten digits parse");
        assert_eq!(p.shape, NdcShape::Bare10);
        let NdcReading::Ambiguous(r) = p.reading else {
            panic!("not ambiguous")
        };
        let got: Vec<&str> = r.iter().map(Ndc11::as_str).collect();
        assert_eq!(got, ["00264751010", "02647051010", "02647510100"]);
    }

    #[test]
    fn a_new_six_digit_labeler_reads_as_twelve_digits_without_an_eleven_digit_form() {
        let rows: &[(&str, NdcShape, &str)] = &[
            ("123456-7890-12", NdcShape::H642, "123456789012"),
            ("123456789012", NdcShape::Bare12, "123456789012"),
            ("900001-0000-01", NdcShape::H642, "900001000001"),
            ("100000-1234-*5", NdcShape::H642, "100000123405"),
        ];
        for (raw, shape, want) in rows {
            let p = parse(raw).unwrap_or_else(|e| panic!("row {raw:?}: {e}"));
            assert_eq!(p.shape, *shape, "row {raw:?}");
            assert_eq!(p.original, *raw, "row {raw:?}: the code is kept as written");
            let NdcReading::NewLabeler(n) = p.reading else {
                panic!("row {raw:?} read as {:?}", p.reading)
            };
            assert_eq!(n.as_str(), *want, "row {raw:?}");
            assert_eq!(n.to_ndc11(), None, "row {raw:?}");
            assert_eq!(p.reading.keys(), vec![n], "row {raw:?}");
        }
    }

    #[test]
    fn ndc12_parse_takes_only_twelve_digit_forms() {
        let rows: &[(&str, Option<&str>)] = &[
            ("000074-1486-14", Some("000074148614")),
            ("000074148614", Some("000074148614")),
            ("123456-7890-12", Some("123456789012")),
            ("123456789012", Some("123456789012")),
            ("00074-1486-14", None),
            ("00074148614", None),
            ("012345-678-90", None),
            ("0074148614", None),
            ("12345678901x", None),
        ];
        for (raw, want) in rows {
            let got = Ndc12::parse(raw).ok();
            assert_eq!(got.as_ref().map(Ndc12::as_str), *want, "row {raw:?}");
        }
        let n = Ndc12::parse("123456-7890-12").expect("6-4-2");
        assert_eq!(n.labeler(), "123456");
        assert_eq!(n.hyphenated(), "123456-7890-12");
        assert!(Ndc12::from_digits("12345678901").is_err());
    }

    #[test]
    fn segments_are_exposed() {
        let n = Ndc11::from_digits("60505700102").expect("valid");
        assert_eq!(n.labeler(), "60505");
        assert_eq!(n.product_key(), "605057001");
        assert_eq!(n.hyphenated(), "60505-7001-02");
    }

    proptest! {
        // Writing an NDC-11 in any 10-digit layout and parsing it back gives
        // the same NDC-11, whenever that layout can hold it.
        #[test]
        fn hyphenated_round_trip(l in 1u32..100_000, p in 1u32..10_000, k in 0u32..100) {
            let ndc = Ndc11::from_digits(&format!("{l:05}{p:04}{k:02}")).expect("11 digits");
            let s = ndc.as_str();
            let mut forms = vec![ndc.hyphenated(), s.to_string()];
            if s.starts_with('0') { forms.push(format!("{}-{}-{}", &s[1..5], &s[5..9], &s[9..])); }
            if &s[5..6] == "0" { forms.push(format!("{}-{}-{}", &s[..5], &s[6..9], &s[9..])); }
            if &s[9..10] == "0" { forms.push(format!("{}-{}-{}", &s[..5], &s[5..9], &s[10..])); }
            forms.push(format!("0{}", ndc.hyphenated()));
            for f in forms {
                let parsed = parse(&f).map_err(|e| TestCaseError::fail(format!("{f}: {e}")))?;
                prop_assert_eq!(parsed.reading, NdcReading::Exact(ndc), "form {}", f);
            }
        }

        // Every bare 10-digit code is ambiguous, and each reading, written in
        // its own layout, is the code itself with the hyphens put back.
        #[test]
        fn bare_ten_readings_are_the_three_layouts(d in "[0-9]{10}") {
            let p = parse(&d).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let NdcReading::Ambiguous(r) = p.reading else { return Err(TestCaseError::fail("exact")) };
            for reading in r {
                let s = reading.as_str();
                prop_assert_eq!(s.len(), 11);
                let squeezed: String = s.chars().collect();
                prop_assert!(squeezed.contains('0'));
            }
            prop_assert_eq!(r[0].as_str(), format!("0{d}"));
        }

        // 11 → 12 → 11 is the identity, and the 12-digit form, written
        // hyphenated or bare, reads back as the same NDC-11 (one product,
        // never two).
        #[test]
        fn eleven_to_twelve_and_back(d in "[0-9]{11}") {
            let ndc = Ndc11::from_digits(&d).expect("11 digits");
            let twelve = ndc.to_ndc12();
            prop_assert_eq!(twelve.as_str(), format!("0{d}"));
            prop_assert_eq!(twelve.to_ndc11(), Some(ndc));
            prop_assert_eq!(Ndc12::from(ndc), twelve);
            if !d.starts_with("00000") {
                for form in [twelve.hyphenated(), twelve.as_str().to_string()] {
                    let p = parse(&form).map_err(|e| TestCaseError::fail(format!("{form}: {e}")))?;
                    prop_assert_eq!(&p.reading, &NdcReading::Exact(ndc), "form {}", form);
                    prop_assert_eq!(p.reading.keys(), vec![twelve]);
                    prop_assert_eq!(Ndc12::parse(&form), Ok(twelve));
                }
            }
        }

        // A 12-digit code with a leading-zero labeler → 11 → 12 is the identity.
        #[test]
        fn twelve_with_leading_zero_to_eleven_and_back(d in "0[0-9]{11}") {
            let twelve = Ndc12::from_digits(&d).expect("12 digits");
            let eleven = twelve.to_ndc11().ok_or_else(|| TestCaseError::fail("no 11-digit form"))?;
            prop_assert_eq!(eleven.as_str(), &d[1..]);
            prop_assert_eq!(eleven.to_ndc12(), twelve);
        }

        // A 12-digit code whose labeler does not start with 0 has no
        // 11-digit form; written hyphenated or bare it reads as itself.
        #[test]
        fn twelve_with_new_labeler_has_no_eleven_digit_form(d in "[1-9][0-9]{11}") {
            let twelve = Ndc12::from_digits(&d).expect("12 digits");
            prop_assert_eq!(twelve.to_ndc11(), None);
            for form in [twelve.hyphenated(), d.clone()] {
                let p = parse(&form).map_err(|e| TestCaseError::fail(format!("{form}: {e}")))?;
                prop_assert_eq!(p.reading, NdcReading::NewLabeler(twelve), "form {}", form);
                prop_assert_eq!(Ndc12::parse(&form), Ok(twelve));
            }
        }

        // Arbitrary text never panics the parser.
        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = parse(&s);
        }
    }
}
