//! Domain types. Each parses its input once; a value that exists is valid.
//! This layer imports no other layer of the crate.

pub mod budget;
pub mod cost;
mod event;
pub mod guest;
mod ids;
mod invitation;
pub mod opt_out;
mod phone;
pub mod reason;
pub mod reminder;
pub mod render;
pub mod rsvp;
mod status;
mod template;

pub use event::{Event, EventInput};
pub use ids::{EventId, GuestId, IdError, InvitationId, JobId, RsvpToken, TemplateId};
pub use invitation::{Guest, GuestInput, Invitation, Job, SendRequest};
pub use opt_out::{Keyword, OptOut, OptOutSource, OptOuts, SeenOptOuts};
pub use phone::{PhoneError, PhoneNumber, mask_digits};
pub use status::{Status, StatusError};
pub use template::{MessageContent, MessageTemplate, TemplateCategory, TemplateInput, TemplateRef};

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

/// Text made safe inside HTML or XML markup (a page, TwiML): the five
/// characters markup reads, as entities both understand.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The current time as stored: RFC 3339, UTC, millisecond precision.
pub fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// A time as the product writes times: RFC 3339 UTC, to the millisecond.
pub fn timestamp(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let at = at
        .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
        .unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC time formats as RFC 3339")
}

/// Parses a time the product wrote (or any RFC 3339 time).
pub fn parse_timestamp(at: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
}
