//! An event's guest list: `POST /api/whatsapp/guests/{eventId}` imports up
//! to 10,000 guests (JSON, or CSV with a header row) and merges them by id,
//! else by phone; `GET` lists them a page at a time (filter by invitation
//! status, opt-out, search) or only what changed since a cursor; `PUT` and
//! `DELETE .../{guestId}` edit and remove one. Each row carries the guest's
//! latest invitation for the event, whether they opted out, and their
//! answer. The RSVP routes ([`rsvps`]) are served here too: answers hang
//! on the guest list.

pub mod rsvps;

use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::adapters::twilio::codes;
use shared::app::guests::{self, Filter, GuestListStore, GuestRow, Imported};
use shared::app::rsvp::AnswerStore;
use shared::domain::guest::{GuestEntry, GuestEntryInput, Search, StatusFilter};
use shared::domain::reason::Action;
use shared::domain::{EventId, FieldError, GuestId, OptOutSource, Status};
use shared::edge::http::{self, ApiError, ApiResult};
use shared::edge::routes;
use std::sync::Arc;

/// Lambda's synchronous payload limit.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
const MAX_ONE_BYTES: usize = 16 * 1024;
pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1_000;
/// A changes answer holds about this many guests at most; `next_cursor` goes on.
const MAX_CHANGES: usize = 1_000;
/// The CSV columns, by header name.
const CSV_COLUMNS: [&str; 4] = ["guest_id", "name", "phone", "rsvp_token"];

/// The guest list and the answers on it.
pub trait GuestsStore: GuestListStore + AnswerStore {}
impl<T: GuestListStore + AnswerStore + ?Sized> GuestsStore for T {}

pub struct Deps {
    pub store: Arc<dyn GuestsStore>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(route(deps, req).await)
}

async fn route(deps: &Deps, req: Request) -> ApiResult {
    let owner = http::organizer(&req)?;
    let event_id = http::path_param(&req, "eventId", EventId::parse)?;
    let store = deps.store.as_ref();
    let one = http::has_path_param(&req, "guestId");
    let path = req.uri().path();
    if path.starts_with(routes::RSVPS_PATH) {
        return match (req.method().as_str(), one) {
            ("GET", false) => rsvps::list(store, &owner, &event_id, &req).await,
            ("GET", true) => {
                let id = http::path_param(&req, "guestId", GuestId::parse)?;
                rsvps::one(store, &owner, &event_id, &id).await
            }
            ("PUT", true) => {
                let id = http::path_param(&req, "guestId", GuestId::parse)?;
                rsvps::record(store, &owner, &event_id, &id, &req).await
            }
            _ => Err(ApiError::NotFound("route".into())),
        };
    }
    if path.starts_with(routes::REPLIES_PATH) {
        return rsvps::replies(store, &owner, &event_id, &req).await;
    }
    match (req.method().as_str(), one) {
        ("POST", false) => import(store, &owner, &event_id, &req).await,
        ("GET", false) => list(store, &owner, &event_id, &req).await,
        ("PUT", true) => edit(store, &owner, &event_id, &req).await,
        ("DELETE", true) => {
            let id = http::path_param(&req, "guestId", GuestId::parse)?;
            guests::remove(store, &owner, &event_id, &id).await?;
            Ok(http::no_content())
        }
        _ => Err(ApiError::NotFound("route".into())),
    }
}

/// A guest as the API shows them.
#[derive(Serialize)]
pub struct GuestView<'a> {
    pub guest_id: &'a str,
    pub name: &'a str,
    pub phone: &'a str,
    pub rsvp_token: &'a str,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    pub opted_out: bool,
    /// Who opted the number out, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_out: Option<OptOutSummary<'a>>,
    pub invitation: Option<InvitationSummary<'a>>,
    /// The guest's answer that counts, if they answered.
    pub rsvp: Option<rsvps::RsvpView<'a>>,
}

#[derive(Serialize)]
pub struct OptOutSummary<'a> {
    pub source: OptOutSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<&'a str>,
    pub updated_at: &'a str,
}

/// The guest's latest invitation, as much as a row shows (the invitations
/// listing has the rest): absent fields are null.
#[derive(Serialize)]
pub struct InvitationSummary<'a> {
    pub invitation_id: &'a str,
    pub job_id: &'a str,
    pub status: Status,
    pub attempt: u32,
    pub updated_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_action: Option<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_to_do: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<&'a str>,
}

impl<'a> From<&'a GuestRow> for GuestView<'a> {
    fn from(row: &'a GuestRow) -> Self {
        let g = &row.listed;
        let opt_out = row
            .opt_out
            .effective()
            .filter(|r| r.opted_out)
            .map(|r| OptOutSummary {
                source: r.source,
                keyword: r.keyword.as_deref(),
                updated_at: &r.updated_at,
            });
        let invitation = row.invitation.as_ref().map(|i| {
            let action = i
                .error_code
                .as_deref()
                .map(|c| codes::action_in(c, i.status));
            InvitationSummary {
                invitation_id: i.invitation_id.as_str(),
                job_id: i.job_id.as_str(),
                status: i.status,
                attempt: i.attempt,
                updated_at: &i.updated_at,
                error_code: i.error_code.as_deref(),
                error_message: i.error_message.as_deref(),
                error_action: action,
                what_to_do: action.map(Action::what_to_do),
                flag: i.flag.as_deref(),
            }
        });
        GuestView {
            guest_id: g.guest.guest_id.as_str(),
            name: &g.guest.name,
            phone: g.guest.phone.as_str(),
            rsvp_token: g.guest.rsvp_token.as_str(),
            created_at: &g.created_at,
            updated_at: &g.updated_at,
            opted_out: opt_out.is_some(),
            opt_out,
            invitation,
            rsvp: g.rsvp.as_ref().map(rsvps::RsvpView::from),
        }
    }
}

fn views(rows: &[GuestRow]) -> Vec<GuestView<'_>> {
    rows.iter().map(GuestView::from).collect()
}

/// An entry the import did not write, and why.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    /// The CSV line (1 is the header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_id: Option<String>,
    pub field: String,
    pub message: String,
}

/// The entries of an import, each parsed on its own: where it came from
/// (index, CSV line, the id as given), and the guest or the field at fault.
struct Entry {
    line: Option<u64>,
    raw_id: Option<String>,
    /// The field names' prefix in errors: `guests[3].` for JSON, none for CSV.
    prefix: String,
    parsed: Result<GuestEntry, FieldError>,
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

fn json_entries(req: &Request) -> Result<Vec<Entry>, ApiError> {
    let input: ImportRequest = http::parse_json(req, MAX_BODY_BYTES)?;
    let guests = input
        .guests
        .ok_or_else(|| ApiError::invalid("guests", "is required"))?;
    Ok(guests
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let raw_id = value
                .get("guest_id")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            let prefix = format!("guests[{index}].");
            let parsed = serde_json::from_value::<GuestEntryInput>(value)
                .map_err(|e| FieldError::new(format!("guests[{index}]"), e))
                .and_then(|g| g.parse(&prefix));
            Entry {
                line: None,
                raw_id,
                prefix,
                parsed,
            }
        })
        .collect())
}

/// CSV with a header row naming its columns (`name` and `phone`, and
/// optionally `guest_id` and `rsvp_token`), separated by commas,
/// semicolons or tabs (as the header row shows).
fn csv_entries(req: &Request) -> Result<Vec<Entry>, ApiError> {
    let bytes = http::raw_body(req);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(MAX_BODY_BYTES));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::invalid("body", "CSV must be UTF-8 text"))?;
    let text = text.trim_start_matches('\u{feff}');
    let header_line = text.lines().next().unwrap_or_default();
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| header_line.bytes().filter(|b| b == d).count())
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ApiError::invalid("body", format!("line 1: {e}")))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| {
            h.eq_ignore_ascii_case(name) || h.eq_ignore_ascii_case(&name.replace('_', " "))
        })
    };
    for required in ["name", "phone"] {
        if column(required).is_none() {
            return Err(ApiError::invalid(
                "body",
                format!(
                    "line 1: the header row has no {required} column (columns: {})",
                    CSV_COLUMNS.join(", ")
                ),
            ));
        }
    }
    let [id_at, name_at, phone_at, token_at] = CSV_COLUMNS.map(column);
    let mut entries = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line());
                entries.push(Entry {
                    line,
                    raw_id: None,
                    prefix: String::new(),
                    parsed: Err(FieldError::new("line", e.to_string())),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let cell = |at: Option<usize>| at.and_then(|i| record.get(i)).map(str::to_owned);
        let raw_id = cell(id_at).filter(|id| !id.is_empty());
        let input = GuestEntryInput {
            guest_id: raw_id.clone(),
            name: cell(name_at),
            phone: cell(phone_at).map(|p| {
                // Numbers as people write them: spaces, dashes, dots and brackets dropped.
                p.chars()
                    .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
                    .collect()
            }),
            rsvp_token: cell(token_at),
        };
        entries.push(Entry {
            line,
            raw_id,
            prefix: String::new(),
            parsed: input.parse(""),
        });
    }
    Ok(entries)
}

async fn import(
    store: &dyn GuestListStore,
    owner: &str,
    event_id: &EventId,
    req: &Request,
) -> ApiResult {
    let entries = if is_csv(req) {
        csv_entries(req)?
    } else {
        json_entries(req)?
    };
    if entries.is_empty() || entries.len() > guests::MAX_IMPORT {
        return Err(ApiError::invalid(
            "guests",
            format!("must list 1 to {} guests", guests::MAX_IMPORT),
        ));
    }
    let since = guests::changes_from_now(store);
    let mut rejected = Vec::new();
    let mut good = Vec::new();
    let mut places = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        match entry.parsed {
            Ok(g) => {
                good.push(g);
                places.push((index, entry.line, entry.raw_id, entry.prefix));
            }
            Err(e) => rejected.push(Rejected {
                index,
                line: entry.line,
                guest_id: entry.raw_id,
                field: e.field,
                message: e.message,
            }),
        }
    }
    let answers = if good.is_empty() {
        guests::event(store, owner, event_id).await?;
        Vec::new()
    } else {
        guests::import(store, owner, event_id, good).await?
    };
    let (mut created, mut updated, mut unchanged) = (0, 0, 0);
    for (answer, (index, line, raw_id, prefix)) in answers.into_iter().zip(places) {
        match answer {
            Imported::Created(_) => created += 1,
            Imported::Updated(_) => updated += 1,
            Imported::Unchanged(_) => unchanged += 1,
            Imported::Rejected(e) => rejected.push(Rejected {
                index,
                line,
                guest_id: raw_id,
                field: format!("{prefix}{}", e.field),
                message: e.message,
            }),
        }
    }
    rejected.sort_by_key(|r| r.index);
    tracing::info!(%event_id, created, updated, unchanged, rejected = rejected.len(), "guests imported");
    Ok(http::json(
        200,
        &serde_json::json!({
            "created": created,
            "updated": updated,
            "unchanged": unchanged,
            "rejected": rejected,
            "changes": since,
        }),
    ))
}

fn filter(req: &Request) -> Result<Filter, ApiError> {
    let status = http::query_param(req, "status")
        .map(str::parse::<StatusFilter>)
        .transpose()
        .map_err(|e| ApiError::invalid("status", e))?;
    let opted_out = http::query_param(req, "opted_out")
        .map(|v| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ApiError::invalid("opted_out", "must be true or false")),
        })
        .transpose()?;
    let search = http::query_param(req, "q").and_then(Search::parse);
    Ok(Filter {
        status,
        opted_out,
        search,
    })
}

async fn list(
    store: &dyn GuestListStore,
    owner: &str,
    event_id: &EventId,
    req: &Request,
) -> ApiResult {
    let limit = http::page_limit(req, DEFAULT_PAGE, MAX_PAGE)? as usize;
    let filter = filter(req)?;
    if let Some(since) = http::query_param(req, "since") {
        if filter.status.is_some() || filter.opted_out.is_some() || filter.search.is_some() {
            return Err(ApiError::invalid(
                "since",
                "answers every changed guest: leave out status, opted_out and q",
            ));
        }
        if http::query_param(req, "cursor").is_some() {
            return Err(ApiError::invalid(
                "cursor",
                "pages a listing; to go on with changes, pass their next_cursor as since",
            ));
        }
        let changes = guests::changes(store, owner, event_id, since, limit.min(MAX_CHANGES))
            .await
            .map_err(|e| match e {
                shared::app::AppError::Store(shared::ports::StoreError::BadCursor) => {
                    ApiError::invalid("since", "is not a cursor this listing gave")
                }
                other => other.into(),
            })?;
        return Ok(http::json_compressed(
            req,
            200,
            &serde_json::json!({
                "items": views(&changes.rows),
                "removed": changes.removed,
                "changes": changes.cursor,
                "next_cursor": changes.more.then_some(&changes.cursor),
            }),
        ));
    }
    // Taken before the read: a change made while the pages are read is
    // after it, so following from it misses nothing.
    let since = guests::changes_from_now(store);
    let listing = guests::list(
        store,
        owner,
        event_id,
        &filter,
        http::query_param(req, "cursor"),
        limit,
    )
    .await?;
    Ok(http::json_compressed(
        req,
        200,
        &serde_json::json!({
            "items": views(&listing.rows),
            "next_cursor": listing.next_cursor,
            "changes": since,
        }),
    ))
}

async fn edit(
    store: &dyn GuestListStore,
    owner: &str,
    event_id: &EventId,
    req: &Request,
) -> ApiResult {
    let id = http::path_param(req, "guestId", GuestId::parse)?;
    let input: GuestEntryInput = http::parse_json(req, MAX_ONE_BYTES)?;
    if let Some(given) = input.guest_id.as_deref().filter(|g| *g != id.as_str()) {
        return Err(ApiError::invalid(
            "guest_id",
            format!("'{given}' differs from the path's '{id}'; leave it out"),
        ));
    }
    let entry = input.parse("")?;
    let (answer, row) = guests::edit(store, owner, event_id, id, entry).await?;
    let status = if matches!(answer, Imported::Created(_)) {
        201
    } else {
        200
    };
    Ok(http::json(status, &GuestView::from(&row)))
}
