//! Events: `PUT/GET /api/whatsapp/events/{eventId}`, `GET /api/whatsapp/events`.

use lambda_http::{Body, Request, Response};
use shared::app::templates;
use shared::domain::now;
use shared::domain::{EventId, EventInput};
use shared::edge::http::{self, ApiError, ApiResult};
use shared::ports::{EventStore, TemplateStore};
use std::sync::Arc;

const MAX_BODY_BYTES: usize = 16 * 1024;

/// Events, and templates (an event may name its default one).
pub trait EventsStore: EventStore + TemplateStore {}
impl<T: EventStore + TemplateStore + ?Sized> EventsStore for T {}

pub struct Deps {
    pub store: Arc<dyn EventsStore>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(route(deps, req).await)
}

async fn route(deps: &Deps, req: Request) -> ApiResult {
    let owner = http::organizer(&req)?;
    let has_id = http::has_path_param(&req, "eventId");
    match (req.method().as_str(), has_id) {
        ("PUT", true) => put_event(deps, &owner, &req).await,
        ("GET", true) => get_event(deps, &owner, &req).await,
        ("GET", false) => list_events(deps, &owner).await,
        _ => Err(ApiError::NotFound("route".into())),
    }
}

async fn put_event(deps: &Deps, owner: &str, req: &Request) -> ApiResult {
    let event_id = http::path_param(req, "eventId", EventId::parse)?;
    let input: EventInput = http::parse_json(req, MAX_BODY_BYTES)?;
    let existed = deps.store.get_event(owner, &event_id).await?.is_some();
    let event = input.parse(event_id, owner, &now())?;
    if let Some(template_id) = &event.default_template_id
        && templates::current(deps.store.as_ref(), owner, template_id)
            .await?
            .is_none()
    {
        return Err(ApiError::invalid(
            "default_template_id",
            format!("no template '{template_id}'"),
        ));
    }
    deps.store.put_event(&event).await?;
    Ok(http::json(if existed { 200 } else { 201 }, &event))
}

async fn get_event(deps: &Deps, owner: &str, req: &Request) -> ApiResult {
    let event_id = http::path_param(req, "eventId", EventId::parse)?;
    let event = deps.store.get_event(owner, &event_id).await?;
    let event = event.ok_or_else(|| ApiError::NotFound(format!("event {event_id}")))?;
    Ok(http::json(200, &event))
}

async fn list_events(deps: &Deps, owner: &str) -> ApiResult {
    let mut events = deps.store.list_events(owner).await?;
    // By instant: the texts carry different offsets.
    events.sort_by_key(|e| e.starts_at_instant());
    Ok(http::json(200, &serde_json::json!({ "items": events })))
}
