//! `POST /api/whatsapp/remind/{eventId}` ("remind now"): the event's
//! reminder to guests reached by an invitation who have not answered,
//! through the send pipeline; once a day per event, so a second press (or
//! a retried request) sends nothing more. The decisions are
//! [`shared::app::remind`]'s.

use lambda_http::{Body, Request, Response};
use shared::app::remind::{self, RemindStore};
use shared::domain::EventId;
use shared::edge::http::{self, ApiResult};
use shared::ports::SendQueue;
use std::sync::Arc;

pub struct Deps {
    pub store: Arc<dyn RemindStore>,
    pub queue: Arc<dyn SendQueue>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(remind_now(deps, &req).await)
}

async fn remind_now(deps: &Deps, req: &Request) -> ApiResult {
    let owner = http::organizer(req)?;
    let event_id = http::path_param(req, "eventId", EventId::parse)?;
    let now = time::OffsetDateTime::now_utc();
    let done = remind::remind_now(
        deps.store.as_ref(),
        deps.queue.as_ref(),
        &owner,
        &event_id,
        now,
    )
    .await?;
    Ok(http::json(
        202,
        &serde_json::json!({
            "job_id": done.job_id,
            "reminded": done.reminded,
            "already": done.already,
            "wrote": done.wrote,
        }),
    ))
}
