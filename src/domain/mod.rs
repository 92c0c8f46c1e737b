//! The domain vocabulary: validated newtypes and the records that travel
//! between stages. Nothing here does I/O; every constructor that takes
//! outside text validates it, so an invalid value cannot exist.

pub mod code;
pub mod decision;
pub mod exception;
pub mod ids;
pub mod link;
pub mod ndc;
pub mod status;
pub mod sync;

pub use code::{Code, CodeSystem};
pub use decision::{Decision, DecisionError};
pub use exception::{Action, ExceptionKind, ExceptionState, Severity};
pub use ids::{LinkId, PatientId, ProviderId, SourceName};
pub use link::LinkState;
pub use ndc::{Ndc11, Ndc12, NdcError, NdcReading, ParsedNdc};
pub use status::MedStatus;
pub use sync::{SyncOutcome, Trigger};
