//! An event's guest list: `POST /api/whatsapp/guests/{eventId}` imports up
//! to 10,000 guests (JSON, or CSV with a header row) and merges them by id,
//! else by phone; `GET` lists them a page at a time (filter by invitation
//! status, opt-out, search) or only what changed since a cursor; `PUT` and
//! `DELETE .../{guestId}` edit and remove one. Each row carries the guest's
//! latest invitation for the event, whether they opted out, and their
//! answer. The decisions are [`shared::app::guest_list`]'s.

use lambda_http::{Body, Request, Response};
use shared::app::guest_list::entries::{self, ImportAnswer};
use shared::app::guest_list::views::{GuestView, views};
use shared::app::guest_list::{self, Filter, GuestListStore, Imported, Read};
use shared::domain::guest::{GuestEntryInput, MAX_PAGE};
use shared::domain::{EventId, GuestId};
use shared::edge::http::{self, ApiError, ApiResult};
use shared::ports::ErrorCodes;
use std::sync::Arc;

/// Lambda's synchronous payload limit.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
const MAX_ONE_BYTES: usize = 16 * 1024;
pub const DEFAULT_PAGE: u32 = 100;

pub struct Deps {
    pub store: Arc<dyn GuestListStore>,
    /// What the provider's error codes mean.
    pub codes: &'static dyn ErrorCodes,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(route(deps, req).await)
}

async fn route(deps: &Deps, req: Request) -> ApiResult {
    let owner = http::organizer(&req)?;
    let event_id = http::path_param(&req, "eventId", EventId::parse)?;
    let store = deps.store.as_ref();
    let id = || http::path_param(&req, "guestId", GuestId::parse);
    match (req.method().as_str(), http::has_path_param(&req, "guestId")) {
        ("POST", false) => {
            let answer = import(store, &owner, &event_id, &req).await?;
            Ok(http::json(200, &answer))
        }
        ("GET", false) => list(deps, &owner, &event_id, &req).await,
        ("PUT", true) => {
            let id = id()?;
            let input: GuestEntryInput = http::parse_json(&req, MAX_ONE_BYTES)?;
            let (answer, row) = guest_list::edit_entry(store, &owner, &event_id, id, input).await?;
            let status = if matches!(answer, Imported::Created(_)) {
                201
            } else {
                200
            };
            Ok(http::json(status, &GuestView::new(&row, deps.codes)))
        }
        ("DELETE", true) => {
            guest_list::remove(store, &owner, &event_id, &id()?).await?;
            Ok(http::no_content())
        }
        _ => Err(ApiError::NotFound("route".into())),
    }
}

fn is_csv(req: &Request) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("text/csv"))
}

#[derive(serde::Deserialize)]
struct ImportRequest {
    guests: Option<Vec<serde_json::Value>>,
}

async fn import(
    store: &dyn GuestListStore,
    owner: &str,
    event_id: &EventId,
    req: &Request,
) -> Result<ImportAnswer, ApiError> {
    let entries = if is_csv(req) {
        let bytes = http::raw_body(req);
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::TooLarge(MAX_BODY_BYTES));
        }
        entries::from_csv(bytes)?
    } else {
        let input: ImportRequest = http::parse_json(req, MAX_BODY_BYTES)?;
        let guests = input
            .guests
            .ok_or_else(|| ApiError::invalid("guests", "is required"))?;
        entries::from_json(guests)
    };
    Ok(entries::import_entries(store, owner, event_id, entries).await?)
}

async fn list(deps: &Deps, owner: &str, event_id: &EventId, req: &Request) -> ApiResult {
    let limit = http::page_limit(req, DEFAULT_PAGE, MAX_PAGE as u32)? as usize;
    let query = |name| http::query_param(req, name);
    let filter = Filter::parse(query("status"), query("opted_out"), query("q"))?;
    let read = guest_list::read(
        deps.store.as_ref(),
        owner,
        event_id,
        filter,
        query("since"),
        query("cursor"),
        limit,
    )
    .await?;
    let body = match read {
        Read::Page { listing, changes } => serde_json::json!({
            "items": views(&listing.rows, deps.codes),
            "next_cursor": listing.next_cursor,
            "changes": changes,
        }),
        Read::Changes(changes) => serde_json::json!({
            "items": views(&changes.rows, deps.codes),
            "removed": changes.removed,
            "changes": changes.cursor,
            "next_cursor": changes.more.then_some(&changes.cursor),
        }),
    };
    Ok(http::json_compressed(req, 200, &body))
}
