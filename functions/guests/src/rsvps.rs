//! `/api/whatsapp/rsvps/{eventId}`: who is coming. `GET` answers the
//! headcount over the whole list and a page of guests with their answers
//! (filter `answer=yes|no|maybe|no_answer`); `GET .../{guestId}` one guest's
//! answers, oldest first; `PUT .../{guestId}` records or corrects one as
//! the organizer. `GET /api/whatsapp/replies/{eventId}`: what guests wrote
//! back that was not an answer.

use lambda_http::Request;
use serde::{Deserialize, Serialize};
use shared::app::rsvp::{self, AnswerFilter, AnswerStore};
use shared::domain::guest::ListedGuest;
use shared::domain::rsvp::{Answer, AnswerVia, Rsvp, RsvpHistory};
use shared::domain::{EventId, GuestId};
use shared::edge::http::{self, ApiError, ApiResult};
use shared::ports::Recorded;

pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1_000;
const MAX_ONE_BYTES: usize = 4 * 1024;
/// Kept messages answered at most.
const MAX_REPLIES: u32 = 500;

/// An answer as the API shows it.
#[derive(Serialize)]
pub struct RsvpView<'a> {
    pub answer: Answer,
    pub companions: u32,
    pub via: AnswerVia,
    pub at: &'a str,
}

impl<'a> From<&'a Rsvp> for RsvpView<'a> {
    fn from(r: &'a Rsvp) -> Self {
        Self {
            answer: r.answer,
            companions: r.companions,
            via: r.via,
            at: &r.at,
        }
    }
}

#[derive(Serialize)]
struct Row<'a> {
    guest_id: &'a str,
    name: &'a str,
    phone: &'a str,
    rsvp: Option<RsvpView<'a>>,
}

fn row(g: &ListedGuest) -> Row<'_> {
    Row {
        guest_id: g.guest.guest_id.as_str(),
        name: &g.guest.name,
        phone: g.guest.phone.as_str(),
        rsvp: g.rsvp.as_ref().map(RsvpView::from),
    }
}

fn history_views(history: &RsvpHistory) -> Vec<RsvpView<'_>> {
    history.all().iter().map(RsvpView::from).collect()
}

pub async fn list(
    store: &dyn AnswerStore,
    owner: &str,
    event_id: &EventId,
    req: &Request,
) -> ApiResult {
    let limit = http::page_limit(req, DEFAULT_PAGE, MAX_PAGE)? as usize;
    let filter = http::query_param(req, "answer")
        .map(|raw| {
            raw.parse::<AnswerFilter>()
                .map_err(|e| ApiError::invalid("answer", e))
        })
        .transpose()?;
    let cursor = http::query_param(req, "cursor");
    let found = rsvp::answers(store, owner, event_id, filter, cursor, limit).await?;
    let items: Vec<Row<'_>> = found.rows.iter().map(row).collect();
    Ok(http::json_compressed(
        req,
        200,
        &serde_json::json!({
            "event_id": event_id,
            "guests": found.guests,
            "headcount": found.headcount,
            "items": items,
            "next_cursor": found.next_cursor,
        }),
    ))
}

pub async fn one(
    store: &dyn AnswerStore,
    owner: &str,
    event_id: &EventId,
    guest: &GuestId,
) -> ApiResult {
    let (listed, history) = rsvp::history(store, owner, event_id, guest).await?;
    Ok(http::json(
        200,
        &serde_json::json!({
            "guest_id": listed.guest.guest_id,
            "name": listed.guest.name,
            "rsvp": listed.rsvp.as_ref().map(RsvpView::from),
            "history": history_views(&history),
        }),
    ))
}

/// The body of `PUT /rsvps/{eventId}/{guestId}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerInput {
    answer: Option<String>,
    companions: Option<i64>,
}

pub async fn record(
    store: &dyn AnswerStore,
    owner: &str,
    event_id: &EventId,
    guest: &GuestId,
    req: &Request,
) -> ApiResult {
    let input: AnswerInput = http::parse_json(req, MAX_ONE_BYTES)?;
    let answer = http::required("answer", input.answer, |a| a.parse::<Answer>())?;
    let companions = shared::domain::rsvp::companions(input.companions, "companions")?;
    if answer != Answer::Yes && companions > 0 {
        return Err(ApiError::invalid(
            "companions",
            "counts who comes with a guest: give it with answer yes only",
        ));
    }
    let (recorded, history) =
        rsvp::record_by_organizer(store, owner, event_id, guest, answer, companions).await?;
    Ok(http::json(
        200,
        &serde_json::json!({
            "guest_id": guest,
            "recorded": recorded == Recorded::Recorded,
            "rsvp": history.latest().map(RsvpView::from),
            "history": history_views(&history),
        }),
    ))
}

pub async fn replies(
    store: &dyn AnswerStore,
    owner: &str,
    event_id: &EventId,
    req: &Request,
) -> ApiResult {
    let limit = http::page_limit(req, 100, MAX_REPLIES)? as usize;
    let found = rsvp::replies(store, owner, event_id, limit).await?;
    let items: Vec<serde_json::Value> = found
        .iter()
        .map(|r| {
            serde_json::json!({
                "guest_id": r.guest_id,
                "text": r.text,
                "at": r.at,
            })
        })
        .collect();
    Ok(http::json(200, &serde_json::json!({ "items": items })))
}
