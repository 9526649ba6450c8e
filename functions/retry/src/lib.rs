//! `POST /api/whatsapp/retry/{invitationId}`: a failed invitation, sent again
//! as a new attempt (callbacks for the old attempt are then ignored).

use lambda_http::{Body, Request, Response};
use shared::app::{guests, lifecycle, send};
use shared::domain::{EventId, Invitation, InvitationId, JobId, Status, now};
use shared::edge::http::{self, ApiError, ApiResult};
use shared::ports::{EventStore, GuestStore, InvitationStore, JobStore, ListQuery, SendQueue};
use std::sync::Arc;

/// What retry reads and moves: invitations, the job or event named, and
/// the guests' latest invitations (only those are sent again).
pub trait RetryStore: InvitationStore + JobStore + EventStore + GuestStore {}
impl<T: InvitationStore + JobStore + EventStore + GuestStore + ?Sized> RetryStore for T {}

pub struct Deps {
    pub store: Arc<dyn RetryStore>,
    pub queue: Arc<dyn SendQueue>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    let one = http::has_path_param(&req, "invitationId");
    http::respond(if one {
        retry(deps, req).await
    } else {
        retry_failed(deps, req).await
    })
}

async fn retry(deps: &Deps, req: Request) -> ApiResult {
    let owner = http::organizer(&req)?;
    let id = http::path_param(&req, "invitationId", InvitationId::parse)?;
    let inv = deps.store.get_invitation(&id).await?;
    let inv = inv
        .filter(|i| i.owner == owner)
        .ok_or_else(|| ApiError::NotFound(format!("invitation {id}")))?;
    // A flagged send (outcome unknown) may be retried once the organizer decides to.
    let flagged_send = inv.status == Status::Sending && inv.flag.is_some();
    // A skipped one (the guest had opted out) may be tried again, say after
    // the guest sent START; the sender skips it again if they still are.
    let skipped = inv.status == Status::Skipped;
    if !inv.status.is_retryable() && !flagged_send && !skipped {
        return Err(ApiError::Conflict(format!(
            "invitation is {}; only failed, undelivered or skipped invitations can be retried",
            inv.status
        )));
    }
    let replaced = guests::superseded(
        deps.store.as_ref(),
        &owner,
        &inv.event_id,
        std::slice::from_ref(&inv),
    )
    .await?;
    if let Some(newer) = replaced.get(&inv.invitation_id) {
        return Err(ApiError::Conflict(format!(
            "guest {} has a newer invitation ({newer}); retry that one, so they get one message",
            inv.guest.guest_id
        )));
    }
    let attempt = inv.attempt + 1;
    if !lifecycle::force(
        deps.store.as_ref(),
        &inv,
        Status::Queued,
        &now(),
        Some(attempt),
        None,
    )
    .await?
    {
        return Err(ApiError::Conflict(
            "invitation changed while retrying; reload and try again".into(),
        ));
    }
    let queued = deps
        .store
        .get_invitation(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("invitation {id}")))?;
    send::enqueue(deps.queue.as_ref(), std::slice::from_ref(&queued)).await;
    tracing::info!(invitation_id = %id, attempt, "invitation re-queued");
    Ok(http::json(
        202,
        &serde_json::json!({"invitation_id": id, "attempt": attempt, "status": Status::Queued}),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryFailedRequest {
    job_id: Option<String>,
    event_id: Option<String>,
}

/// Transactions in flight at once while re-queueing many invitations.
const RETRY_PARALLELISM: usize = 16;

/// `POST /api/whatsapp/retry-failed` `{"job_id"}` or `{"event_id"}`: every
/// failed or undelivered invitation of the job or event, as new attempts.
async fn retry_failed(deps: &Deps, req: Request) -> ApiResult {
    use futures::StreamExt;
    let owner = http::organizer(&req)?;
    let input: RetryFailedRequest = http::parse_json(&req, 4096)?;
    let (event_id, job_id) = match (input.job_id, input.event_id) {
        (Some(job), None) => {
            let job_id = JobId::parse(&job).map_err(|e| ApiError::invalid("job_id", e))?;
            let job = deps
                .store
                .get_job(&job_id)
                .await?
                .filter(|j| j.owner == owner);
            let job = job.ok_or_else(|| ApiError::NotFound(format!("job {job_id}")))?;
            (job.event_id, Some(job_id))
        }
        (None, Some(event)) => {
            let event_id = EventId::parse(&event).map_err(|e| ApiError::invalid("event_id", e))?;
            if deps.store.get_event(&owner, &event_id).await?.is_none() {
                return Err(ApiError::NotFound(format!("event {event_id}")));
            }
            (event_id, None)
        }
        _ => {
            return Err(ApiError::invalid(
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
                owner: owner.clone(),
                event_id: event_id.clone(),
                status: Some(status),
                limit: 200,
                cursor,
            };
            let page = deps.store.list_invitations(&query).await?;
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
    let replaced = guests::superseded(deps.store.as_ref(), &owner, &event_id, &candidates).await?;
    candidates.retain(|i| !replaced.contains_key(&i.invitation_id));
    let at = now();
    let store = deps.store.as_ref();
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
    send::enqueue(deps.queue.as_ref(), &queued).await;
    if let Some(e) = first_error {
        tracing::error!(%event_id, retried = queued.len(), "some failed invitations could not be re-queued");
        return Err(e.into());
    }
    tracing::info!(%event_id, retried = queued.len(), "failed invitations re-queued");
    let ids: Vec<&str> = queued.iter().map(|i| i.invitation_id.as_str()).collect();
    Ok(http::json(
        202,
        &serde_json::json!({"retried": queued.len(), "invitation_ids": ids}),
    ))
}
