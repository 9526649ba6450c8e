//! `POST /api/whatsapp/send-invitation`: one guest, queued for sending. The
//! decisions are [`shared::app::send::send_one`]'s.

use lambda_http::{Body, Request, Response};
use shared::app::send::{self, SendStore};
use shared::domain::SendRequest;
use shared::edge::http::{self, ApiResult};
use shared::ports::SendQueue;
use std::sync::Arc;

const MAX_BODY_BYTES: usize = 16 * 1024;

pub struct Deps {
    pub store: Arc<dyn SendStore>,
    pub queue: Arc<dyn SendQueue>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(send_one(deps, &req).await)
}

async fn send_one(deps: &Deps, req: &Request) -> ApiResult {
    let owner = http::organizer(req)?;
    let input: SendRequest = http::parse_json(req, MAX_BODY_BYTES)?;
    let store = deps.store.as_ref();
    let (sent, invitation) = send::send_one(store, deps.queue.as_ref(), &owner, input).await?;
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
