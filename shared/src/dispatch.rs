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

/// Writes the job and its queued invitations, then enqueues one message each.
/// If enqueueing fails the invitations are marked failed (so the counters
/// stay exact and the organizer can retry them) and the error is returned.
pub async fn create_and_enqueue(
    store: &dyn Store,
    queue: &dyn SendQueue,
    job: &Job,
    invitations: &[Invitation],
) -> Result<(), DispatchError> {
    store.create_job(job, invitations).await?;
    enqueue_or_fail(store, queue, invitations).await
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
