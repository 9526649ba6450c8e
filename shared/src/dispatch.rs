//! Writing invitations and putting them on the send queue, shared by the
//! single and bulk send routes and by retry.

use crate::domain::{Invitation, Job, Status};
use crate::lifecycle;
use crate::ports::{ErrorInfo, QueueError, SendMessage, SendQueue, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<DispatchError> for crate::http::ApiError {
    fn from(err: DispatchError) -> Self {
        crate::http::ApiError::Internal(err.to_string())
    }
}

/// Code recorded on invitations that were written but could not be queued.
pub const NOT_QUEUED: &str = "not_queued";

/// Writes the job and its invitations, then enqueues one message for each
/// queued one (a skipped invitation is written only, never sent).
/// If enqueueing fails the invitations are marked failed (so the counters
/// stay exact and the organizer can retry them) and the error is returned.
pub async fn create_and_enqueue(
    store: &dyn Store,
    queue: &dyn SendQueue,
    job: &Job,
    invitations: &[Invitation],
) -> Result<(), DispatchError> {
    store.create_job(job, invitations).await?;
    let queued: Vec<Invitation> = invitations
        .iter()
        .filter(|i| i.status == Status::Queued)
        .cloned()
        .collect();
    if queued.is_empty() {
        return Ok(());
    }
    enqueue_or_fail(store, queue, &queued).await
}

/// The error code and reason of an invitation not sent because its guest opted out.
pub const OPTED_OUT: &str = "opted_out";
pub const OPTED_OUT_MESSAGE: &str =
    "The guest opted out of WhatsApp messages from this sender (STOP); not sent";

/// Marks the invitations of opted-out guests skipped, so they are written
/// and counted but never queued. Answers which were.
pub async fn skip_opted_out(
    store: &dyn Store,
    invitations: Vec<Invitation>,
    now: &str,
) -> Result<Vec<Invitation>, StoreError> {
    let phones: Vec<_> = invitations.iter().map(|i| i.guest.phone.clone()).collect();
    let opted_out = store.opted_out_among(&phones).await?;
    Ok(invitations
        .into_iter()
        .map(|inv| {
            if opted_out.contains(inv.guest.phone.as_str()) {
                inv.skipped(OPTED_OUT, OPTED_OUT_MESSAGE, now)
            } else {
                inv
            }
        })
        .collect())
}

/// Enqueues the current attempt of each (queued) invitation.
pub async fn enqueue_or_fail(
    store: &dyn Store,
    queue: &dyn SendQueue,
    invitations: &[Invitation],
) -> Result<(), DispatchError> {
    let messages: Vec<SendMessage> = invitations
        .iter()
        .map(|i| SendMessage {
            invitation_id: i.invitation_id.clone(),
            attempt: i.attempt,
        })
        .collect();
    let Err(err) = queue.enqueue(&messages).await else {
        return Ok(());
    };
    tracing::error!(error = %err, count = invitations.len(), "enqueue failed; marking invitations failed");
    let now = lifecycle::now();
    let error = ErrorInfo {
        code: NOT_QUEUED.into(),
        message: "could not be queued for sending; retry it".into(),
    };
    for inv in invitations {
        // Some of the batch may have been queued; the forced move only
        // applies to those still queued on this attempt, and a sender that
        // later finds one failed leaves it alone.
        lifecycle::force(store, inv, Status::Failed, &now, None, Some(error.clone())).await?;
    }
    Err(err.into())
}
