//! Progress: `GET /api/whatsapp/status/{jobId}` (from the job's counters,
//! never a scan, with when it will finish under the sender's limits),
//! `GET /api/whatsapp/invitations/{eventId}` (per guest), and
//! `GET /api/whatsapp/sender` (the WhatsApp sender's profile and budget).

use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::adapters::twilio::codes;
use shared::domain::budget::{self, BudgetState, DailyLimit, SenderProfile};
use shared::domain::reason::Action;
use shared::domain::{EventId, Invitation, JobId, Status, timestamp};
use shared::edge::http::{self, ApiError, ApiResult};
use shared::ports::{BudgetStore, EventStore, InvitationStore, JobStore, ListQuery};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

/// What status reads: jobs' counters, events, an event's invitations, and
/// the daily budget.
pub trait StatusStore: JobStore + EventStore + InvitationStore + BudgetStore {}
impl<T: JobStore + EventStore + InvitationStore + BudgetStore + ?Sized> StatusStore for T {}

pub struct Deps {
    pub store: Arc<dyn StatusStore>,
    /// The WhatsApp sender's limits, which decide when a job finishes.
    pub profile: SenderProfile,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    let result = if http::has_path_param(&req, "jobId") {
        job_status(deps, &req).await
    } else if http::has_path_param(&req, "eventId") {
        list_invitations(deps, &req).await
    } else {
        sender_profile(deps, &req).await
    };
    http::respond(result)
}

fn at(epoch_seconds: i64) -> String {
    timestamp(
        OffsetDateTime::from_unix_timestamp(epoch_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH),
    )
}

/// The daily budget as it stands, when the limit applies.
async fn budget(deps: &Deps) -> Result<Option<(u32, BudgetState)>, ApiError> {
    match deps.profile.daily_limit {
        DailyLimit::Unlimited => Ok(None),
        DailyLimit::Limited(limit) => Ok(Some((
            limit,
            deps.store.budget_state(budget::STACK_SENDER).await?,
        ))),
    }
}

/// The sender every organizer's sends share: its rate and daily limit
/// (the operator's, read-only here) and how much of the window is used.
async fn sender_profile(deps: &Deps, req: &Request) -> ApiResult {
    http::organizer(req)?;
    let now = budget::epoch_seconds();
    let profile = &deps.profile;
    let (counted, free, next_free_at, paused_until) = match budget(deps).await? {
        None => (None, None, None, None),
        Some((limit, state)) => (
            Some(state.held(limit, now)),
            Some(state.free_now(limit, now)),
            state.next_free_at(limit, now).map(at),
            (state.paused_until > now).then(|| at(state.paused_until)),
        ),
    };
    Ok(http::json(
        200,
        &serde_json::json!({
            "rate_per_second": profile.rate_per_second,
            "daily_unique_recipients": profile.daily_limit,
            "window_seconds": profile.window_seconds,
            "counted_in_window": counted,
            "free_now": free,
            "next_free_at": next_free_at,
            "paused_until": paused_until,
        }),
    ))
}

async fn job_status(deps: &Deps, req: &Request) -> ApiResult {
    let owner = http::organizer(req)?;
    let job_id = http::path_param(req, "jobId", JobId::parse)?;
    let job = deps.store.get_job(&job_id).await?;
    // Another organizer's job answers exactly like a missing one.
    let job = job
        .filter(|j| j.owner == owner)
        .ok_or_else(|| ApiError::NotFound(format!("job {job_id}")))?;
    let counts: BTreeMap<&str, i64> = Status::ALL
        .into_iter()
        .map(|s| (s.as_str(), job.count(s)))
        .collect();
    let now = budget::epoch_seconds();
    // Still to leave: what is queued and what waits for the window.
    let waiting = job.count(Status::Waiting).max(0) as u64;
    let remaining = job.count(Status::Queued).max(0) as u64 + waiting;
    let in_flight = remaining + job.count(Status::Sending).max(0) as u64;
    // The budget's ring is read only when the job waits for it: otherwise
    // the rate decides, and a dashboard's polls stay one query.
    let state = match waiting {
        0 => None,
        _ => budget(deps).await?,
    };
    let expected_finish = (in_flight > 0).then(|| {
        at(deps
            .profile
            .expected_finish(state.as_ref().map(|(_, s)| s), now, remaining))
    });
    let waiting = (waiting > 0).then(|| {
        let next_at = state
            .as_ref()
            .and_then(|(limit, s)| s.next_free_at(*limit, now))
            .map(at);
        serde_json::json!({
            "count": waiting,
            "reason": Action::WaitForDailyLimit,
            "words": Action::WaitForDailyLimit.what_to_do(),
            "daily_unique_recipients": deps.profile.daily_limit,
            "next_at": next_at,
        })
    });
    Ok(http::json(
        200,
        &serde_json::json!({
            "job_id": job.job_id,
            "event_id": job.event_id,
            "total": job.total,
            "done": job.is_done(),
            "counts": counts,
            "created_at": job.created_at,
            "expected_finish": expected_finish,
            "waiting": waiting,
        }),
    ))
}

/// One guest's invitation as the API shows it.
#[derive(Serialize)]
pub struct InvitationView<'a> {
    pub invitation_id: &'a str,
    pub job_id: &'a str,
    pub guest_id: &'a str,
    pub name: &'a str,
    pub status: Status,
    pub attempt: u32,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    /// What the error means: what the product does about it, or what the
    /// organizer can ([`codes::action`]).
    pub error_action: Option<Action>,
    /// The same, in the organizer's words.
    pub what_to_do: Option<&'static str>,
    pub flag: Option<&'a str>,
    pub message_sid: Option<&'a str>,
    pub template_id: Option<&'a str>,
    pub template_version: Option<u32>,
    pub updated_at: &'a str,
    pub timestamps: BTreeMap<&'static str, &'a str>,
}

impl<'a> From<&'a Invitation> for InvitationView<'a> {
    fn from(i: &'a Invitation) -> Self {
        let action = i
            .error_code
            .as_deref()
            .map(|c| codes::action_in(c, i.status));
        Self {
            invitation_id: i.invitation_id.as_str(),
            job_id: i.job_id.as_str(),
            guest_id: i.guest.guest_id.as_str(),
            name: &i.guest.name,
            status: i.status,
            attempt: i.attempt,
            error_code: i.error_code.as_deref(),
            error_message: i.error_message.as_deref(),
            error_action: action,
            what_to_do: action.map(Action::what_to_do),
            flag: i.flag.as_deref(),
            message_sid: i.message_sid.as_deref(),
            template_id: i.template.as_ref().map(|t| t.template_id.as_str()),
            template_version: i.template.as_ref().map(|t| t.version),
            updated_at: &i.updated_at,
            timestamps: i
                .timestamps
                .iter()
                .map(|(s, at)| (s.as_str(), at.as_str()))
                .collect(),
        }
    }
}

async fn list_invitations(deps: &Deps, req: &Request) -> ApiResult {
    let owner = http::organizer(req)?;
    let event_id = http::path_param(req, "eventId", EventId::parse)?;
    let status = http::query_param(req, "status")
        .map(str::parse::<Status>)
        .transpose()
        .map_err(|e| ApiError::invalid("status", e))?;
    let limit = http::page_limit(req, DEFAULT_PAGE, MAX_PAGE)?;
    if deps.store.get_event(&owner, &event_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("event {event_id}")));
    }
    let query = ListQuery {
        owner,
        event_id,
        status,
        limit,
        cursor: http::query_param(req, "cursor").map(str::to_owned),
    };
    let page = deps.store.list_invitations(&query).await?;
    let items: Vec<InvitationView> = page.items.iter().map(InvitationView::from).collect();
    Ok(http::json_compressed(
        req,
        200,
        &serde_json::json!({ "items": items, "next_cursor": page.next_cursor }),
    ))
}
