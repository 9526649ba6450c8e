//! `POST /api/whatsapp/send-invitation`: one guest, queued for sending.

use lambda_http::{Body, Request, Response};
use shared::dispatch;
use shared::domain::{EventId, Invitation, Job, JobId, SendRequest};
use shared::http::{self, ApiError, ApiResult};
use shared::lifecycle::now;
use shared::ports::{SendQueue, Store};
use shared::template;
use std::sync::Arc;

const MAX_BODY_BYTES: usize = 16 * 1024;

pub struct Deps {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn SendQueue>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(send(deps, req).await)
}

async fn send(deps: &Deps, req: Request) -> ApiResult {
    let owner = http::organizer(&req)?;
    let input: SendRequest = http::parse_json(&req, MAX_BODY_BYTES)?;
    let event_id = input
        .event_id
        .ok_or_else(|| ApiError::invalid("event_id", "is required"))?;
    let event_id = EventId::parse(&event_id).map_err(|e| ApiError::invalid("event_id", e))?;
    let guest = input
        .guest
        .ok_or_else(|| ApiError::invalid("guest", "is required"))?
        .parse("guest.")?;
    let template_id = resolve_template(input.template_id)?;
    if deps.store.get_event(&owner, &event_id).await?.is_none() {
        return Err(ApiError::invalid(
            "event_id",
            format!("no event '{event_id}'; create it first"),
        ));
    }

    let now = now();
    let job = Job::new(JobId::generate(), event_id.clone(), &owner, 1, &now);
    let invitation = Invitation::new_queued(
        event_id,
        job.job_id.clone(),
        &owner,
        guest,
        template_id,
        &now,
    );
    dispatch::create_and_enqueue(
        deps.store.as_ref(),
        deps.queue.as_ref(),
        &job,
        std::slice::from_ref(&invitation),
    )
    .await?;
    tracing::info!(invitation_id = %invitation.invitation_id, job_id = %job.job_id, to = %invitation.guest.phone, "invitation queued");
    Ok(http::json(
        202,
        &serde_json::json!({
            "invitation_id": invitation.invitation_id,
            "job_id": job.job_id,
            "status": invitation.status,
        }),
    ))
}

/// Only the built-in template exists so far.
pub fn resolve_template(requested: Option<String>) -> Result<Option<String>, ApiError> {
    match requested.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(template::DEFAULT_TEMPLATE_ID) => Ok(Some(template::DEFAULT_TEMPLATE_ID.to_owned())),
        Some(other) => Err(ApiError::invalid(
            "template_id",
            format!("no template '{other}'"),
        )),
    }
}
