//! The element names the CCR reader cares about, as a one-byte enum.
//!
//! The reader keeps a stack of these instead of element names so that
//! tracking where it is in the document costs no allocation per element;
//! every name it has no use for folds into `Other`.

/// A CCR element name the reader acts on, or `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag {
    Ccr,
    Patient,
    ActorId,
    ActorRole,
    Body,
    Medications,
    Medication,
    ObjectId,
    DateTime,
    Type,
    Text,
    ExactDateTime,
    ApproximateDateTime,
    Status,
    Source,
    Actor,
    Product,
    ProductName,
    BrandName,
    Code,
    Value,
    CodingSystem,
    Strength,
    Units,
    Unit,
    Form,
    Directions,
    Direction,
    Route,
    Dose,
    Frequency,
    Description,
    PatientInstructions,
    Instruction,
    Other,
}

impl Tag {
    /// Classifies an element's local name (its prefix already stripped).
    pub(super) fn of(local: &str) -> Tag {
        match local {
            "ContinuityOfCareRecord" => Tag::Ccr,
            "Patient" => Tag::Patient,
            "ActorID" => Tag::ActorId,
            "ActorRole" => Tag::ActorRole,
            "Body" => Tag::Body,
            "Medications" => Tag::Medications,
            "Medication" => Tag::Medication,
            "CCRDataObjectID" => Tag::ObjectId,
            "DateTime" => Tag::DateTime,
            "Type" => Tag::Type,
            "Text" => Tag::Text,
            "ExactDateTime" => Tag::ExactDateTime,
            "ApproximateDateTime" => Tag::ApproximateDateTime,
            "Status" => Tag::Status,
            "Source" => Tag::Source,
            "Actor" => Tag::Actor,
            "Product" => Tag::Product,
            "ProductName" => Tag::ProductName,
            "BrandName" => Tag::BrandName,
            "Code" => Tag::Code,
            "Value" => Tag::Value,
            "CodingSystem" => Tag::CodingSystem,
            "Strength" => Tag::Strength,
            "Units" => Tag::Units,
            "Unit" => Tag::Unit,
            "Form" => Tag::Form,
            "Directions" => Tag::Directions,
            "Direction" => Tag::Direction,
            "Route" => Tag::Route,
            "Dose" => Tag::Dose,
            "Frequency" => Tag::Frequency,
            "Description" => Tag::Description,
            "PatientInstructions" => Tag::PatientInstructions,
            "Instruction" => Tag::Instruction,
            _ => Tag::Other,
        }
    }
}
