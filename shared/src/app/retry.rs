//! Retry: a failed, undelivered or skipped invitation (or a flagged send
//! the organizer decided on) sent again as a new attempt, so callbacks for
//! the old attempt are then ignored; or every failed one of a job or event
//! at once. Only a guest's latest invitation is retried: a failure a newer
//! invitation replaced stays as it is, so a retry never gives a guest a
//! second message.

use crate::app::{AppError, guest_list, lifecycle, send};
use crate::domain::{EventId, Invitation, InvitationId, JobId, Status, now};
use crate::ports::{EventStore, GuestStore, InvitationStore, JobStore, ListQuery, SendQueue};

/// What retry reads and moves: invitations, the job or event named, and
/// the guests' latest invitations (only those are sent again).
pub trait RetryStore: InvitationStore + JobStore + EventStore + GuestStore {}
impl<T: InvitationStore + JobStore + EventStore + GuestStore + ?Sized> RetryStore for T {}

/// Queues the organizer's invitation `id` again; answers its new attempt.
pub async fn retry(
    store: &dyn RetryStore,
    queue: &dyn SendQueue,
    owner: &str,
    id: &InvitationId,
) -> Result<u32, AppError> {
    let inv = store.get_invitation(id).await?;
    let inv = inv
        .filter(|i| i.owner == owner)
        .ok_or_else(|| AppError::NotFound(format!("invitation {id}")))?;
    // A flagged send (outcome unknown) may be retried once the organizer decides to.
    let flagged_send = inv.status == Status::Sending && inv.flag.is_some();
    // A skipped one (the guest had opted out) may be tried again, say after
    // the guest sent START; the sender skips it again if they still are.
    let skipped = inv.status == Status::Skipped;
    if !inv.status.is_retryable() && !flagged_send && !skipped {
        return Err(AppError::Conflict(format!(
            "invitation is {}; only failed, undelivered or skipped invitations can be retried",
            inv.status
        )));
    }
    let replaced =
        guest_list::superseded(store, owner, &inv.event_id, std::slice::from_ref(&inv)).await?;
    if let Some(newer) = replaced.get(&inv.invitation_id) {
        return Err(AppError::Conflict(format!(
            "guest {} has a newer invitation ({newer}); retry that one, so they get one message",
            inv.guest.guest_id
        )));
    }
    let attempt = inv.attempt + 1;
    if !lifecycle::force(store, &inv, Status::Queued, &now(), Some(attempt), None).await? {
        return Err(AppError::Conflict(
            "invitation changed while retrying; reload and try again".into(),
        ));
    }
    let queued = store
        .get_invitation(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("invitation {id}")))?;
    send::enqueue(queue, std::slice::from_ref(&queued)).await;
    tracing::info!(invitation_id = %id, attempt, "invitation re-queued");
    Ok(attempt)
}

/// Which failed invitations to retry: a job's, or an event's.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryFailedRequest {
    pub job_id: Option<String>,
    pub event_id: Option<String>,
}

/// Transactions in flight at once while re-queueing many invitations.
const RETRY_PARALLELISM: usize = 16;

/// Every failed or undelivered invitation of the job or event, as new
/// attempts; answers those queued again.
pub async fn retry_failed(
    store: &dyn RetryStore,
    queue: &dyn SendQueue,
    owner: &str,
    input: RetryFailedRequest,
) -> Result<Vec<InvitationId>, AppError> {
    use futures::StreamExt;
    let (event_id, job_id) = match (input.job_id, input.event_id) {
        (Some(job), None) => {
            let job_id = JobId::parse(&job).map_err(|e| AppError::invalid("job_id", e))?;
            let job = store.get_job(&job_id).await?.filter(|j| j.owner == owner);
            let job = job.ok_or_else(|| AppError::NotFound(format!("job {job_id}")))?;
            (job.event_id, Some(job_id))
        }
        (None, Some(event)) => {
            let event_id = EventId::parse(&event).map_err(|e| AppError::invalid("event_id", e))?;
            if store.get_event(owner, &event_id).await?.is_none() {
                return Err(AppError::NotFound(format!("event {event_id}")));
            }
            (event_id, None)
        }
        _ => {
            return Err(AppError::invalid(
                "job_id",
                "give exactly one of job_id and event_id",
            ));
        }
    };
    let mut candidates = Vec::new();
    for status in [Status::Failed, Status::Undelivered] {
        let mut cursor = None;
        loop {
            let query = ListQuery {
                owner: owner.to_owned(),
                event_id: event_id.clone(),
                status: Some(status),
                limit: 200,
                cursor,
            };
            let page = store.list_invitations(&query).await?;
            candidates.extend(
                page.items
                    .into_iter()
                    .filter(|i| job_id.as_ref().is_none_or(|j| &i.job_id == j)),
            );
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
    }
    // A failure a newer invitation of the same guest replaced stays as it is.
    let replaced = guest_list::superseded(store, owner, &event_id, &candidates).await?;
    candidates.retain(|i| !replaced.contains_key(&i.invitation_id));
    let at = now();
    let moved = futures::stream::iter(candidates.into_iter().map(|inv| {
        let at = at.clone();
        async move {
            let attempt = inv.attempt + 1;
            // One that changed meanwhile (a late delivery receipt) is left alone.
            match lifecycle::force(store, &inv, Status::Queued, &at, Some(attempt), None).await {
                Ok(true) => Ok(Some(Invitation {
                    attempt,
                    status: Status::Queued,
                    ..inv
                })),
                Ok(false) => Ok(None),
                Err(e) => Err(e),
            }
        }
    }))
    .buffer_unordered(RETRY_PARALLELISM)
    .collect::<Vec<Result<Option<Invitation>, _>>>()
    .await;
    // What moved is enqueued even when another move failed: an answer
    // before the enqueue would leave them queued with no message.
    let mut queued = Vec::new();
    let mut first_error = None;
    for result in moved {
        match result {
            Ok(Some(inv)) => queued.push(inv),
            Ok(None) => {}
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    send::enqueue(queue, &queued).await;
    if let Some(e) = first_error {
        tracing::error!(%event_id, retried = queued.len(), "some failed invitations could not be re-queued");
        return Err(e.into());
    }
    tracing::info!(%event_id, retried = queued.len(), "failed invitations re-queued");
    Ok(queued.into_iter().map(|i| i.invitation_id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemoryQueue, MemoryStore};
    use crate::app::fixtures::{OWNER, invited};
    use crate::ports::ErrorInfo;

    /// `n` guests invited; the first `failed` of them failed.
    async fn given(n: u32, failed: usize) -> (MemoryStore, MemoryQueue, Vec<Invitation>) {
        let (store, queue, invitations) = invited(n).await;
        let error = ErrorInfo {
            code: "30008".into(),
            message: "Delivery failed".into(),
        };
        for inv in &invitations[..failed] {
            lifecycle::force(
                &store,
                inv,
                Status::Failed,
                &now(),
                None,
                Some(error.clone()),
            )
            .await
            .unwrap();
        }
        (store, queue, invitations)
    }

    #[tokio::test]
    async fn given_a_failed_invitation_then_it_is_queued_again_as_a_new_attempt() {
        let (store, queue, invitations) = given(1, 1).await;
        let id = &invitations[0].invitation_id;
        let before = queue.messages().len();
        assert_eq!(retry(&store, &queue, OWNER, id).await.unwrap(), 2);
        let now = store.get_invitation(id).await.unwrap().unwrap();
        assert_eq!((now.status, now.attempt), (Status::Queued, 2));
        assert_eq!(queue.messages().len(), before + 1);
        assert_eq!(queue.messages().last().unwrap().attempt, 2);
    }

    #[tokio::test]
    async fn given_an_invitation_on_its_way_or_anothers_then_retry_refuses() {
        let (store, queue, invitations) = given(1, 0).await;
        let id = &invitations[0].invitation_id;
        assert!(matches!(
            retry(&store, &queue, OWNER, id).await,
            Err(AppError::Conflict(_))
        ));
        assert!(matches!(
            retry(&store, &queue, "someone-else", id).await,
            Err(AppError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn given_a_job_with_failures_then_retry_failed_queues_each_once() {
        let (store, queue, invitations) = given(3, 2).await;
        let input = RetryFailedRequest {
            job_id: Some(invitations[0].job_id.to_string()),
            event_id: None,
        };
        let mut retried = retry_failed(&store, &queue, OWNER, input).await.unwrap();
        retried.sort();
        let mut expected: Vec<_> = invitations[..2]
            .iter()
            .map(|i| i.invitation_id.clone())
            .collect();
        expected.sort();
        assert_eq!(retried, expected);
        // Nothing failed is left: a second run retries nothing.
        let again = RetryFailedRequest {
            job_id: None,
            event_id: Some(invitations[0].event_id.to_string()),
        };
        assert!(
            retry_failed(&store, &queue, OWNER, again)
                .await
                .unwrap()
                .is_empty()
        );
        let both = RetryFailedRequest {
            job_id: Some("j".into()),
            event_id: Some("e".into()),
        };
        let Err(AppError::Invalid(e)) = retry_failed(&store, &queue, OWNER, both).await else {
            panic!("refused")
        };
        assert_eq!(e.field, "job_id");
    }
}
