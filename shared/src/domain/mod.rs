//! Domain types. Each parses its input once; a value that exists is valid.

mod event;
mod ids;
mod invitation;
mod opt_out;
mod phone;
mod status;
mod template;

pub use event::{Event, EventInput};
pub use ids::{EventId, GuestId, IdError, InvitationId, JobId, RsvpToken, TemplateId};
pub use invitation::{Guest, GuestInput, Invitation, Job, SendRequest};
pub use opt_out::{Keyword, OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, OptOut, OptOutSource};
pub use phone::{PhoneError, PhoneNumber};
pub use status::{Status, StatusError};
pub use template::{MessageTemplate, TemplateInput, TemplateRef};

/// A validation failure that names the offending field (dotted path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl ToString) -> Self {
        Self {
            field: field.into(),
            message: message.to_string(),
        }
    }
}
