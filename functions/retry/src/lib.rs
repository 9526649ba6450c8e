//! `POST /api/whatsapp/retry/{invitationId}`: a failed invitation, sent again
//! as a new attempt (callbacks for the old attempt are then ignored);
//! `POST /api/whatsapp/retry-failed` `{"job_id"}` or `{"event_id"}`: every
//! failed or undelivered one. The decisions are [`shared::app::retry`]'s.

use lambda_http::{Body, Request, Response};
use shared::app::retry::{self, RetryFailedRequest, RetryStore};
use shared::domain::{InvitationId, Status};
use shared::edge::http::{self, ApiResult};
use shared::ports::SendQueue;
use std::sync::Arc;

pub struct Deps {
    pub store: Arc<dyn RetryStore>,
    pub queue: Arc<dyn SendQueue>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(if http::has_path_param(&req, "invitationId") {
        retry_one(deps, &req).await
    } else {
        retry_failed(deps, &req).await
    })
}

async fn retry_one(deps: &Deps, req: &Request) -> ApiResult {
    let owner = http::organizer(req)?;
    let id = http::path_param(req, "invitationId", InvitationId::parse)?;
    let retried = retry::retry(deps.store.as_ref(), deps.queue.as_ref(), &owner, &id).await?;
    Ok(http::json(
        202,
        &serde_json::json!({
            "invitation_id": id,
            "attempt": retried.attempt,
            "status": Status::Queued,
            "template_id": retried.template.as_ref().map(|t| &t.template_id),
            "template_version": retried.template.as_ref().map(|t| t.version),
            "changed": retried.changed,
            "message": retried.words(),
        }),
    ))
}

async fn retry_failed(deps: &Deps, req: &Request) -> ApiResult {
    let owner = http::organizer(req)?;
    let input: RetryFailedRequest = http::parse_json(req, 4096)?;
    let store = deps.store.as_ref();
    let ids = retry::retry_failed(store, deps.queue.as_ref(), &owner, input).await?;
    Ok(http::json(
        202,
        &serde_json::json!({"retried": ids.len(), "invitation_ids": ids}),
    ))
}
