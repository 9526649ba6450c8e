//! `POST /api/whatsapp/send-invitation`: one guest, queued for sending.

use lambda_http::{Body, Request, Response};
use shared::app::send::{self, SendStore};
use shared::app::templates;
use shared::domain::guest::already_invited_words;
use shared::domain::{EventId, SendRequest};
use shared::edge::http::{self, ApiError, ApiResult};
use shared::ports::SendQueue;
use std::sync::Arc;

const MAX_BODY_BYTES: usize = 16 * 1024;

pub struct Deps {
    pub store: Arc<dyn SendStore>,
    pub queue: Arc<dyn SendQueue>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(send_one(deps, req).await)
}

async fn send_one(deps: &Deps, req: Request) -> ApiResult {
    let owner = http::organizer(&req)?;
    let input: SendRequest = http::parse_json(&req, MAX_BODY_BYTES)?;
    let event_id = http::required("event_id", input.event_id, EventId::parse)?;
    let guest = input
        .guest
        .ok_or_else(|| ApiError::invalid("guest", "is required"))?
        .parse("guest.")?;
    let requested = templates::requested(input.template_id)?;
    let store = deps.store.as_ref();
    let plan = send::plan(store, &owner, &event_id, requested.as_ref()).await?;
    let sent = send::send(
        store,
        deps.queue.as_ref(),
        plan,
        vec![guest],
        send::NewJob::Fresh,
        input.resend,
    )
    .await?;
    if let Some(left) = sent.left_out.first() {
        // The request is sound; the guest's state refuses it.
        return Err(ApiError::Conflict(format!(
            "guest {} {}",
            left.held_by.guest.guest_id,
            already_invited_words(left.held_by.status)
        )));
    }
    let invitation = &sent.invitations[0];
    tracing::info!(invitation_id = %invitation.invitation_id, job_id = %sent.job.job_id, to = %invitation.guest.phone, status = %invitation.status, "invitation accepted");
    Ok(http::json(
        202,
        &serde_json::json!({
            "invitation_id": invitation.invitation_id,
            "job_id": sent.job.job_id,
            "status": invitation.status,
            "template_id": sent.template.template_id,
            "template_version": sent.template.version,
            "error_code": invitation.error_code,
            "error_message": invitation.error_message,
        }),
    ))
}
