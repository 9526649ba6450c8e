//! `POST /api/whatsapp/send-invitation`: one guest, queued for sending.

use lambda_http::{Body, Request, Response};
use shared::dispatch;
use shared::domain::{EventId, Invitation, Job, JobId, SendRequest, TemplateId};
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
    let event_id = http::required("event_id", input.event_id, EventId::parse)?;
    let guest = input
        .guest
        .ok_or_else(|| ApiError::invalid("guest", "is required"))?
        .parse("guest.")?;
    let requested = requested_template(input.template_id)?;
    let store = deps.store.as_ref();
    let Some(event) = store.get_event(&owner, &event_id).await? else {
        return Err(ApiError::invalid(
            "event_id",
            format!("no event '{event_id}'; create it first"),
        ));
    };
    let template = template::choose(store, &owner, requested.as_ref(), &event).await?;

    let now = now();
    let job_id = JobId::generate();
    let invitation = Invitation::new_queued(
        event_id.clone(),
        job_id.clone(),
        &owner,
        guest,
        Some(template.reference()),
        &now,
    );
    // A guest who opted out is recorded, counted and shown as skipped, never queued.
    let mut invitations = dispatch::skip_opted_out(store, vec![invitation], &now).await?;
    let job = Job::of(job_id, event_id, &owner, &invitations, &now);
    dispatch::create_and_enqueue(store, deps.queue.as_ref(), &job, &invitations).await?;
    let invitation = invitations.remove(0);
    tracing::info!(invitation_id = %invitation.invitation_id, job_id = %job.job_id, to = %invitation.guest.phone, status = %invitation.status, "invitation accepted");
    Ok(http::json(
        202,
        &serde_json::json!({
            "invitation_id": invitation.invitation_id,
            "job_id": job.job_id,
            "status": invitation.status,
            "template_id": template.template_id,
            "template_version": template.version,
            "error_code": invitation.error_code,
            "error_message": invitation.error_message,
        }),
    ))
}

/// The template a send request names, if any (its existence is checked by
/// [`template::choose`]).
pub fn requested_template(raw: Option<String>) -> Result<Option<TemplateId>, ApiError> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(id) => TemplateId::parse(id)
            .map(Some)
            .map_err(|e| ApiError::invalid("template_id", e)),
    }
}
