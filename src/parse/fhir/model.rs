//! Typed, borrowing serde views of the FHIR elements rxsync reads.
//!
//! One union struct (`Resource`) covers every medication resource of every
//! version we read (R4 first; STU3, DSTU2 and R5 field names side by side),
//! because the field names we need mean the same thing in all of them. Every
//! field is optional and everything else is skipped by serde without being
//! materialized, which is what keeps the JSON path fast. Strings borrow from
//! the input (`Cow` so that escaped JSON strings still work). These types must
//! never hold an owned tree of the document (no `serde_json::Value` fields).
//!
//! The same structs are deserialized from a `serde_json::Value` built from
//! FHIR XML, where every primitive is a string and a single child is not an
//! array: hence `Many` and `Num`.

use serde::Deserialize;
use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A string borrowed from the input where possible.
pub type Str<'a> = Cow<'a, str>;

/// A medication resource (or any resource: what we do not read is ignored).
///
/// Fields that most documents lack (DSTU2 and R5 shapes, links of the
/// rarer resource types) are boxed: the struct is moved a few times per
/// resource, and on lean searchsets those moves cost more than the boxes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource<'a> {
    #[serde(borrow)]
    pub resource_type: Option<Str<'a>>,
    #[serde(borrow)]
    pub id: Option<Str<'a>>,
    #[serde(borrow)]
    pub status: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub contained: Many<Contained<'a>>,

    // The drug, as the using resource names it.
    #[serde(borrow)]
    pub medication_codeable_concept: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub medication_reference: Option<Reference<'a>>,
    /// R5 `CodeableReference`.
    #[serde(borrow)]
    pub medication: Option<Box<CodeableReference<'a>>>,

    // A Medication (or MedicationKnowledge) resource's own description.
    #[serde(borrow)]
    pub code: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub form: Option<CodeableConcept<'a>>,
    /// R5 and MedicationKnowledge.
    #[serde(borrow)]
    pub dose_form: Option<CodeableConcept<'a>>,
    #[serde(borrow, default)]
    pub ingredient: Many<Ingredient<'a>>,
    /// DSTU2 `product` (form and ingredients).
    #[serde(borrow)]
    pub product: Option<Box<Product<'a>>>,
    /// STU3/DSTU2 `package.content`.
    #[serde(borrow)]
    pub package: Option<Box<Package<'a>>>,

    // Dosage: R4/STU3 `dosageInstruction` on requests and dispenses, `dosage`
    // on statements (an array) and administrations (a single object).
    #[serde(borrow, default)]
    pub dosage_instruction: Many<Dosage<'a>>,
    #[serde(borrow, default)]
    pub dosage: Many<Dosage<'a>>,

    // Dates.
    #[serde(borrow)]
    pub authored_on: Option<Str<'a>>,
    #[serde(borrow)]
    pub date_written: Option<Str<'a>>,
    #[serde(borrow)]
    pub effective_date_time: Option<Str<'a>>,
    #[serde(borrow)]
    pub effective_period: Option<Period<'a>>,
    #[serde(borrow)]
    pub effective_time_date_time: Option<Str<'a>>,
    #[serde(borrow)]
    pub effective_time_period: Option<Box<Period<'a>>>,
    #[serde(borrow)]
    pub when_handed_over: Option<Str<'a>>,
    #[serde(borrow)]
    pub dispense_request: Option<DispenseRequest<'a>>,

    // Who.
    #[serde(borrow)]
    pub requester: Option<Requester<'a>>,
    #[serde(borrow)]
    pub prescriber: Option<Box<Reference<'a>>>,
    #[serde(borrow)]
    pub subject: Option<Reference<'a>>,
    #[serde(borrow)]
    pub patient: Option<Box<Reference<'a>>>,

    // Links between records of one medication.
    #[serde(borrow, default)]
    pub authorizing_prescription: Many<Reference<'a>>,
    #[serde(borrow, default)]
    pub based_on: Many<Reference<'a>>,
    #[serde(borrow, default)]
    pub derived_from: Many<Reference<'a>>,
    #[serde(borrow, default)]
    pub part_of: Many<Reference<'a>>,
    #[serde(borrow)]
    pub prior_prescription: Option<Box<Reference<'a>>>,
    #[serde(borrow)]
    pub request: Option<Box<Reference<'a>>>,

    /// OperationOutcome issues.
    #[serde(borrow, default)]
    pub issue: Many<Issue<'a>>,

    // ExplanationOfBenefit (claims, read by `claim`): rare, so boxed.
    /// The claim's type (pharmacy, professional, institutional, PDE…).
    /// `type` is a code in a Bundle or an AllergyIntolerance and a list in
    /// an Encounter: only an object is read.
    #[serde(borrow, rename = "type", default)]
    pub claim_type: ObjectOnly<Box<CodeableConcept<'a>>>,
    #[serde(borrow)]
    pub billable_period: Option<Box<Period<'a>>>,
    /// The billing provider (the pharmacy on a pharmacy claim).
    #[serde(borrow)]
    pub provider: Option<Box<Reference<'a>>>,
    #[serde(borrow)]
    pub facility: Option<Box<Reference<'a>>>,
    /// STU3/DSTU2 EOB `organization`.
    #[serde(borrow)]
    pub organization: Option<Box<Reference<'a>>>,
    #[serde(borrow)]
    pub care_team: Option<Box<Many<CareTeam<'a>>>>,
    #[serde(borrow)]
    pub supporting_info: Option<Box<Many<SupportingInfo<'a>>>>,
    /// STU3's name for `supportingInfo`.
    #[serde(borrow)]
    pub information: Option<Box<Many<SupportingInfo<'a>>>>,
    /// The claim's lines.
    #[serde(borrow)]
    pub item: Option<Box<Many<ClaimItem<'a>>>>,
    /// The prescription a pharmacy claim fills.
    #[serde(borrow)]
    pub prescription: Option<Box<Reference<'a>>>,
}

/// An ExplanationOfBenefit `careTeam` member.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CareTeam<'a> {
    #[serde(borrow)]
    pub provider: Option<Reference<'a>>,
    #[serde(borrow)]
    pub role: Option<CodeableConcept<'a>>,
}

/// An ExplanationOfBenefit `supportingInfo` (R4) or `information` (STU3).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportingInfo<'a> {
    #[serde(borrow)]
    pub sequence: Option<Num<'a>>,
    #[serde(borrow)]
    pub category: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub code: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub value_quantity: Option<Quantity<'a>>,
    #[serde(borrow)]
    pub value_reference: Option<Reference<'a>>,
    #[serde(borrow)]
    pub value_string: Option<Str<'a>>,
}

/// One line of a claim, or a line's `detail`. R4 names the service
/// `productOrService`; STU3 `service` (a CodeableConcept), DSTU2 `service`
/// (a Coding): `ServiceCode` takes either shape.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimItem<'a> {
    #[serde(borrow)]
    pub sequence: Option<Num<'a>>,
    #[serde(borrow)]
    pub product_or_service: Option<ServiceCode<'a>>,
    #[serde(borrow)]
    pub service: Option<ServiceCode<'a>>,
    #[serde(borrow)]
    pub serviced_date: Option<Str<'a>>,
    #[serde(borrow)]
    pub serviced_period: Option<Period<'a>>,
    #[serde(borrow)]
    pub quantity: Option<Quantity<'a>>,
    /// Which `supportingInfo` entries concern this line (R4; STU3 `informationLinkId`).
    #[serde(borrow, default)]
    pub information_sequence: Many<Num<'a>>,
    #[serde(borrow, default)]
    pub information_link_id: Many<Num<'a>>,
    /// NDC extensions (CMS Blue Button `line_ndc_cd` and the like).
    #[serde(borrow, default)]
    pub extension: Many<Extension<'a>>,
    /// Lines of a line: professional claims put a drug's NDC here.
    #[serde(borrow, default)]
    pub detail: Many<ClaimItem<'a>>,
}

/// A CodeableConcept (R4, STU3) or a Coding (DSTU2): the fields of both.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCode<'a> {
    #[serde(borrow, default)]
    pub coding: Many<Coding<'a>>,
    #[serde(borrow)]
    pub text: Option<Str<'a>>,
    #[serde(borrow)]
    pub system: Option<Str<'a>>,
    #[serde(borrow)]
    pub code: Option<Str<'a>>,
    #[serde(borrow)]
    pub display: Option<Str<'a>>,
}

/// An extension, as far as a code on it goes (whatever its `url`: only
/// drug codes are taken from it).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension<'a> {
    #[serde(borrow)]
    pub value_coding: Option<Coding<'a>>,
    #[serde(borrow)]
    pub value_codeable_concept: Option<CodeableConcept<'a>>,
}

/// A contained resource: only what a Medication (or Substance) can tell us.
/// It has no `contained` of its own, so hostile nesting stops here.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contained<'a> {
    #[serde(borrow)]
    pub id: Option<Str<'a>>,
    #[serde(borrow)]
    pub code: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub form: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub dose_form: Option<CodeableConcept<'a>>,
    #[serde(borrow, default)]
    pub ingredient: Many<Ingredient<'a>>,
    #[serde(borrow)]
    pub product: Option<Product<'a>>,
    #[serde(borrow)]
    pub package: Option<Package<'a>>,
}

/// The parts of a Medication-like resource that describe the drug, whether
/// it stood in the bundle or was contained.
#[derive(Debug, Clone, Copy)]
pub struct Drug<'r, 'a> {
    pub code: Option<&'r CodeableConcept<'a>>,
    pub form: Option<&'r CodeableConcept<'a>>,
    pub ingredient: &'r [Ingredient<'a>],
    pub product: Option<&'r Product<'a>>,
    pub package: Option<&'r Package<'a>>,
}

impl<'a> Resource<'a> {
    pub fn drug(&self) -> Drug<'_, 'a> {
        Drug {
            code: self.code.as_ref(),
            form: self.form.as_ref().or(self.dose_form.as_ref()),
            ingredient: &self.ingredient.0,
            product: self.product.as_deref(),
            package: self.package.as_deref(),
        }
    }
}

impl<'a> Contained<'a> {
    pub fn drug(&self) -> Drug<'_, 'a> {
        Drug {
            code: self.code.as_ref(),
            form: self.form.as_ref().or(self.dose_form.as_ref()),
            ingredient: &self.ingredient.0,
            product: self.product.as_ref(),
            package: self.package.as_ref(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeableConcept<'a> {
    #[serde(borrow, default)]
    pub coding: Many<Coding<'a>>,
    #[serde(borrow)]
    pub text: Option<Str<'a>>,
}

impl CodeableConcept<'_> {
    /// The concept's words: `text`, else the first coding's display.
    pub fn name(&self) -> Option<&str> {
        non_empty(self.text.as_deref()).or_else(|| {
            self.coding
                .0
                .iter()
                .find_map(|c| non_empty(c.display.as_deref()))
        })
    }

    /// Words for a concept used as a value (a route, a form): its name, else
    /// the first code.
    pub fn words(&self) -> Option<&str> {
        self.name().or_else(|| {
            self.coding
                .0
                .iter()
                .find_map(|c| non_empty(c.code.as_deref()))
        })
    }
}

/// `Some(s)` when `s` has non-whitespace text.
pub fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.trim().is_empty())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coding<'a> {
    #[serde(borrow)]
    pub system: Option<Str<'a>>,
    #[serde(borrow)]
    pub code: Option<Str<'a>>,
    #[serde(borrow)]
    pub display: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference<'a> {
    #[serde(borrow)]
    pub reference: Option<Str<'a>>,
    #[serde(borrow)]
    pub display: Option<Str<'a>>,
    /// Boxed: rare, and every Reference is carried inline in `Resource`.
    #[serde(borrow)]
    pub identifier: Option<Box<Identifier<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identifier<'a> {
    #[serde(borrow)]
    pub system: Option<Str<'a>>,
    #[serde(borrow)]
    pub value: Option<Str<'a>>,
}

/// R5 `CodeableReference`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeableReference<'a> {
    #[serde(borrow)]
    pub concept: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub reference: Option<Reference<'a>>,
}

/// STU3 `requester` is `{agent: Reference}`; R4 and R5 make it a Reference.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requester<'a> {
    #[serde(borrow)]
    pub display: Option<Str<'a>>,
    #[serde(borrow)]
    pub agent: Option<Reference<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingredient<'a> {
    #[serde(borrow)]
    pub item_codeable_concept: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub item_reference: Option<Reference<'a>>,
    /// R5 `item` (CodeableReference); DSTU2 `item` (Reference): both shapes
    /// fit `CodeableReference` plus the reference fields.
    #[serde(borrow)]
    pub item: Option<Item<'a>>,
    #[serde(borrow)]
    pub strength: Option<Ratio<'a>>,
    /// R5.
    #[serde(borrow)]
    pub strength_ratio: Option<Ratio<'a>>,
    /// STU3/DSTU2.
    #[serde(borrow)]
    pub amount: Option<Ratio<'a>>,
}

/// An ingredient's `item`: a Reference (DSTU2) or a CodeableReference (R5).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item<'a> {
    #[serde(borrow)]
    pub reference: Option<ItemReference<'a>>,
    #[serde(borrow)]
    pub concept: Option<CodeableConcept<'a>>,
}

/// `reference` is a string in a Reference and an object in a CodeableReference.
#[derive(Debug)]
pub enum ItemReference<'a> {
    Text(Str<'a>),
    Reference(Reference<'a>),
}

impl<'de: 'a, 'a> Deserialize<'de> for ItemReference<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = ItemReference<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a reference string or a Reference")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ItemReference::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ItemReference::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Reference::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ItemReference::Reference)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product<'a> {
    #[serde(borrow)]
    pub form: Option<CodeableConcept<'a>>,
    #[serde(borrow, default)]
    pub ingredient: Many<Ingredient<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package<'a> {
    #[serde(borrow, default)]
    pub content: Many<Ingredient<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ratio<'a> {
    #[serde(borrow)]
    pub numerator: Option<Quantity<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quantity<'a> {
    #[serde(borrow)]
    pub value: Option<Num<'a>>,
    #[serde(borrow)]
    pub unit: Option<Str<'a>>,
    #[serde(borrow)]
    pub code: Option<Str<'a>>,
}

impl Quantity<'_> {
    /// The unit's words: `unit`, else the UCUM `code`.
    pub fn unit_text(&self) -> Option<&str> {
        non_empty(self.unit.as_deref()).or_else(|| non_empty(self.code.as_deref()))
    }

    /// `value unit`, as far as given.
    pub fn render(&self) -> Option<String> {
        let value = self.value.as_ref().and_then(Num::shown);
        match (value, self.unit_text()) {
            (Some(v), Some(u)) => Some(format!("{v} {}", u.trim())),
            (Some(v), None) => Some(v.to_string()),
            (None, Some(u)) => Some(u.trim().to_string()),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dosage<'a> {
    #[serde(borrow)]
    pub text: Option<Str<'a>>,
    #[serde(borrow)]
    pub route: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub timing: Option<Timing<'a>>,
    pub as_needed_boolean: Option<Bool>,
    #[serde(borrow, default)]
    pub dose_and_rate: Many<DoseAndRate<'a>>,
    /// STU3/DSTU2 `doseQuantity`.
    #[serde(borrow)]
    pub dose_quantity: Option<Quantity<'a>>,
    /// R4 MedicationAdministration `dosage.dose`.
    #[serde(borrow)]
    pub dose: Option<Quantity<'a>>,
    /// DSTU2 MedicationAdministration `dosage.quantity`.
    #[serde(borrow)]
    pub quantity: Option<Quantity<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoseAndRate<'a> {
    #[serde(borrow)]
    pub dose_quantity: Option<Quantity<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing<'a> {
    #[serde(borrow)]
    pub code: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub repeat: Option<Repeat<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repeat<'a> {
    #[serde(borrow)]
    pub frequency: Option<Num<'a>>,
    #[serde(borrow)]
    pub period: Option<Num<'a>>,
    #[serde(borrow)]
    pub period_unit: Option<Str<'a>>,
    /// DSTU2 spelling.
    #[serde(borrow)]
    pub period_units: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Period<'a> {
    #[serde(borrow)]
    pub start: Option<Str<'a>>,
    #[serde(borrow)]
    pub end: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispenseRequest<'a> {
    #[serde(borrow)]
    pub validity_period: Option<Period<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Issue<'a> {
    #[serde(borrow)]
    pub severity: Option<Str<'a>>,
    #[serde(borrow)]
    pub code: Option<Str<'a>>,
    #[serde(borrow)]
    pub diagnostics: Option<Str<'a>>,
    #[serde(borrow)]
    pub details: Option<CodeableConcept<'a>>,
}

/// Zero, one or many: a JSON array, or (in XML, and for R4
/// MedicationAdministration's `dosage`) a single value.
#[derive(Debug)]
pub struct Many<T>(pub Vec<T>);

impl<T> Default for Many<T> {
    fn default() -> Self {
        Many(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Many<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Many<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array or a single value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // serde_json gives no size hint, and `Vec`'s first growth
                // reserves four elements: for our larger elements (Dosage,
                // Contained) that is a >1 KiB request, which makes glibc
                // consolidate its free lists. Most lists hold one element.
                let first = if size_of::<T>() > 128 { 1 } else { 4 };
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(first).min(64));
                while let Some(item) = seq.next_element()? {
                    out.push(item);
                }
                Ok(Many(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Many(vec![t]))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                T::deserialize(de::value::BorrowedStrDeserializer::new(v)).map(|t| Many(vec![t]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(v.to_owned().into_deserializer()).map(|t| Many(vec![t]))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Many(Vec::new()))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An element read only when it is an object: where one field name means
/// an object in one resource type and a code or a list in another, the
/// other shapes are skipped (without materializing them).
#[derive(Debug)]
pub struct ObjectOnly<T>(pub Option<T>);

impl<T> Default for ObjectOnly<T> {
    fn default() -> Self {
        ObjectOnly(None)
    }
}

impl<T> ObjectOnly<T> {
    pub fn as_deref(&self) -> Option<&T::Target>
    where
        T: std::ops::Deref,
    {
        self.0.as_deref()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|t| ObjectOnly(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(ObjectOnly(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(ObjectOnly(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ObjectOnly(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ObjectOnly(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ObjectOnly(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ObjectOnly(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ObjectOnly(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A FHIR decimal or integer: a JSON number, or the string an XML `value`
/// attribute holds. Numbers are kept unformatted so that reading one costs
/// no allocation; `text` renders it when a record needs it.
#[derive(Debug)]
pub enum Num<'a> {
    Text(Str<'a>),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl Num<'_> {
    /// The number as text, trimmed; `None` when blank.
    pub fn text(&self) -> Option<String> {
        self.shown().map(|n| n.to_string())
    }

    /// The number as `text` shows it, for formatting into a larger string
    /// without an intermediate `String` (dose and frequency texts are built
    /// for every record).
    pub fn shown(&self) -> Option<Shown<'_>> {
        Some(match self {
            Num::Text(t) => Shown::Text(non_empty(Some(t))?.trim()),
            Num::Unsigned(v) => Shown::Unsigned(*v),
            Num::Signed(v) => Shown::Signed(*v),
            Num::Float(v) => Shown::Float(*v),
        })
    }
}

/// A non-blank `Num`, displayed as `Num::text` gives it.
#[derive(Debug, Clone, Copy)]
pub enum Shown<'r> {
    Text(&'r str),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Text(t) => f.write_str(t),
            Shown::Unsigned(v) => v.fmt(f),
            Shown::Signed(v) => v.fmt(f),
            Shown::Float(v) => v.fmt(f),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Num<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Num<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Num::Unsigned(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Num::Signed(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Num::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Num::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Num::Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A FHIR boolean: JSON `true`/`false`, or XML's `"true"`/`"false"`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Bool(pub bool);

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Bool(v.trim() == "true"))
            }
        }
        d.deserialize_any(V)
    }
}
