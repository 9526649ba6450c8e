//! Who is coming: `GET /api/whatsapp/rsvps/{eventId}` answers the headcount
//! over the whole list and a page of guests with their answers (filter
//! `answer=yes|no|maybe|no_answer`); `GET .../{guestId}` one guest's
//! answers, oldest first; `PUT .../{guestId}` records or corrects one as
//! the organizer. `GET /api/whatsapp/replies/{eventId}`: what guests wrote
//! back that was not an answer. The decisions are [`shared::app::answers`]'s.

use lambda_http::{Body, Request, Response};
use shared::app::answers::{self, AnswerInput, MAX_REPLIES};
use shared::app::rsvp::AnswerStore;
use shared::domain::guest::MAX_PAGE;
use shared::domain::{EventId, GuestId};
use shared::edge::http::{self, ApiError, ApiResult};
use std::sync::Arc;

pub const DEFAULT_PAGE: u32 = 100;
const MAX_ONE_BYTES: usize = 4 * 1024;

pub struct Deps {
    pub store: Arc<dyn AnswerStore>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(route(deps, req).await)
}

async fn route(deps: &Deps, req: Request) -> ApiResult {
    let owner = http::organizer(&req)?;
    let event_id = http::path_param(&req, "eventId", EventId::parse)?;
    let store = deps.store.as_ref();
    let id = || http::path_param(&req, "guestId", GuestId::parse);
    // The replies' route is the one without "rsvps" in its path.
    if !req.uri().path().contains("/rsvps/") {
        let limit = http::page_limit(&req, DEFAULT_PAGE, MAX_REPLIES)? as usize;
        let body = answers::replies_listing(store, &owner, &event_id, limit).await?;
        return Ok(http::json(200, &body));
    }
    let body = match (req.method().as_str(), http::has_path_param(&req, "guestId")) {
        ("GET", false) => {
            let limit = http::page_limit(&req, DEFAULT_PAGE, MAX_PAGE as u32)? as usize;
            let filter = http::query_param(&req, "answer");
            let cursor = http::query_param(&req, "cursor");
            let body = answers::listing(store, &owner, &event_id, filter, cursor, limit).await?;
            return Ok(http::json_compressed(&req, 200, &body));
        }
        ("GET", true) => answers::one(store, &owner, &event_id, &id()?).await?,
        ("PUT", true) => {
            let id = id()?;
            let input: AnswerInput = http::parse_json(&req, MAX_ONE_BYTES)?;
            answers::record(store, &owner, &event_id, &id, input).await?
        }
        _ => return Err(ApiError::NotFound("route".into())),
    };
    Ok(http::json(200, &body))
}
