//! Use cases: what the functions do, written once against the ports.
//! Nothing here knows DynamoDB, SQS, Twilio or HTTP.

pub mod admission;
pub mod answers;
pub mod deliver;
pub mod events;
pub mod facts;
#[cfg(test)]
mod fixtures;
pub mod guest_list;
pub mod idempotency;
pub mod inbound_message;
pub mod lifecycle;
pub mod opt_outs;
pub mod progress;
pub mod reconcile;
pub mod remind;
pub mod retry;
pub mod rsvp;
pub mod rsvp_page;
pub mod scheduled;
pub mod send;
pub mod send_bulk;
pub mod status_callback;
pub mod templates;
pub mod waiting;

use crate::domain::{Event, EventId, FieldError};
use crate::ports::{EventStore, QueueError, StoreError};

/// Why a use case could not do its work. The HTTP edge maps it to a
/// status code, in one place (`edge::http`).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input was wrong; names the field.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("{0} not found")]
    NotFound(String),
    /// The thing is in a state that does not allow the request.
    #[error("{0}")]
    Conflict(String),
    /// The request disagrees with what is stored (a stale copy of a guest);
    /// names the field.
    #[error("{0}")]
    Stale(FieldError),
    /// The same request is still being processed; the client should send it
    /// again shortly.
    #[error("{0}")]
    InProgress(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Something the product wrote is not as it should be; the detail is
    /// logged, never answered.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn invalid(field: impl Into<String>, message: impl ToString) -> Self {
        AppError::Invalid(FieldError::new(field, message))
    }
}

/// A required input, parsed; errors name the field.
pub fn required<T, E: std::fmt::Display>(
    field: &str,
    value: Option<String>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, AppError> {
    let value = value.ok_or_else(|| AppError::invalid(field, "is required"))?;
    parse(&value).map_err(|e| AppError::invalid(field, e))
}

/// The organizer's event; another organizer's answers like a missing one.
pub async fn event(store: &dyn EventStore, owner: &str, id: &EventId) -> Result<Event, AppError> {
    store
        .get_event(owner, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("event {id}")))
}
