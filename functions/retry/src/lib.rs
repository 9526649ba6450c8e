//! `POST /api/whatsapp/retry/{invitationId}`: a failed invitation, sent again
//! as a new attempt (callbacks for the old attempt are then ignored).

use lambda_http::{Body, Request, Response};
use shared::dispatch;
use shared::domain::{InvitationId, Status};
use shared::http::{self, ApiError, ApiResult};
use shared::lifecycle::{self, now};
use shared::ports::{SendQueue, Store};
use std::sync::Arc;

pub struct Deps {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn SendQueue>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(retry(deps, req).await)
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
    if !inv.status.is_retryable() && !flagged_send {
        return Err(ApiError::Conflict(format!(
            "invitation is {}; only failed or undelivered invitations can be retried",
            inv.status
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
    dispatch::enqueue_or_fail(
        deps.store.as_ref(),
        deps.queue.as_ref(),
        std::slice::from_ref(&queued),
    )
    .await?;
    tracing::info!(invitation_id = %id, attempt, "invitation re-queued");
    Ok(http::json(
        202,
        &serde_json::json!({"invitation_id": id, "attempt": attempt, "status": Status::Queued}),
    ))
}
