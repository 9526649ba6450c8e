//! Events: `PUT/GET /api/whatsapp/events/{eventId}`, `GET /api/whatsapp/events`.
//! The decisions are [`shared::app::events`]'s.

use lambda_http::{Body, Request, Response};
use shared::app::events::{self, EventView, Put};
use shared::domain::{EventId, EventInput};
use shared::edge::http::{self, ApiError, ApiResult};
use std::sync::Arc;

pub use shared::app::events::EventsStore;

const MAX_BODY_BYTES: usize = 16 * 1024;

pub struct Deps {
    pub store: Arc<dyn EventsStore>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(route(deps, req).await)
}

async fn route(deps: &Deps, req: Request) -> ApiResult {
    let owner = http::organizer(&req)?;
    let store = deps.store.as_ref();
    let id = || http::path_param(&req, "eventId", EventId::parse);
    match (req.method().as_str(), http::has_path_param(&req, "eventId")) {
        ("PUT", true) => {
            let id = id()?;
            let input: EventInput = http::parse_json(&req, MAX_BODY_BYTES)?;
            let (put, event) = events::put(store, &owner, id, input).await?;
            let status = if put == Put::Created { 201 } else { 200 };
            Ok(http::json(status, &EventView::now(event)))
        }
        ("GET", true) => {
            let event = events::get(store, &owner, &id()?).await?;
            Ok(http::json(200, &EventView::now(event)))
        }
        ("GET", false) => {
            let items: Vec<EventView> = events::list(store, &owner)
                .await?
                .into_iter()
                .map(EventView::now)
                .collect();
            Ok(http::json(200, &serde_json::json!({ "items": items })))
        }
        _ => Err(ApiError::NotFound("route".into())),
    }
}
