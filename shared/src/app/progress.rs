//! Progress as an organizer follows it: a job's counts (from its counters,
//! never a scan of its invitations) with when it will finish under the
//! sender's rate and daily limit; an event's invitations a page at a time,
//! each with what its error means; and the WhatsApp sender's profile.

use crate::app::AppError;
use crate::domain::budget::{self, BudgetState, DailyLimit, SenderProfile};
use crate::domain::reason::Action;
use crate::domain::{Invitation, JobId, Status, timestamp};
use crate::ports::{BudgetStore, ErrorCodes, EventStore, InvitationStore, JobStore, ListQuery};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// What progress reads: jobs' counters, events, an event's invitations,
/// and the daily budget.
pub trait ProgressStore: JobStore + EventStore + InvitationStore + BudgetStore {}
impl<T: JobStore + EventStore + InvitationStore + BudgetStore + ?Sized> ProgressStore for T {}

fn at(epoch_seconds: i64) -> String {
    timestamp(
        OffsetDateTime::from_unix_timestamp(epoch_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH),
    )
}

/// The daily budget as it stands, when the limit applies.
async fn budget(
    store: &dyn BudgetStore,
    profile: &SenderProfile,
) -> Result<Option<(u32, BudgetState)>, AppError> {
    match profile.daily_limit {
        DailyLimit::Unlimited => Ok(None),
        DailyLimit::Limited(limit) => Ok(Some((
            limit,
            store.budget_state(budget::STACK_SENDER).await?,
        ))),
    }
}

/// The sender every organizer's sends share: its rate and daily limit
/// (the operator's, read-only here) and how much of the window is used.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SenderView {
    pub rate_per_second: u32,
    pub daily_unique_recipients: DailyLimit,
    pub window_seconds: i64,
    pub counted_in_window: Option<u32>,
    pub free_now: Option<u32>,
    pub next_free_at: Option<String>,
    /// The unique recipients the provider allows in the window, as its
    /// refusal for the limit (63018) showed, while lower than configured.
    pub learned_limit: Option<u32>,
}

pub async fn sender(
    store: &dyn BudgetStore,
    profile: &SenderProfile,
) -> Result<SenderView, AppError> {
    let now = budget::epoch_seconds();
    let window = profile.window_seconds;
    let (counted, free, next_free_at, learned_limit) = match budget(store, profile).await? {
        None => (None, None, None, None),
        Some((limit, state)) => (
            Some(state.held(now)),
            Some(state.free_now(limit, window, now)),
            state.next_free_at(limit, window, now).map(at),
            state.learned_limit(limit, window, now),
        ),
    };
    Ok(SenderView {
        rate_per_second: profile.rate_per_second,
        daily_unique_recipients: profile.daily_limit,
        window_seconds: profile.window_seconds,
        counted_in_window: counted,
        free_now: free,
        next_free_at,
        learned_limit,
    })
}

/// A job's progress.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobView {
    pub job_id: JobId,
    pub event_id: crate::domain::EventId,
    pub total: u64,
    pub done: bool,
    pub counts: BTreeMap<&'static str, i64>,
    pub created_at: String,
    /// While anything is still to leave or in flight.
    pub expected_finish: Option<String>,
    /// Invitations waiting for the daily limit's window, and when the
    /// next place frees.
    pub waiting: Option<serde_json::Value>,
    /// A large send's admission behind its answer; None for a send
    /// admitted with its answer.
    pub admission: Option<AdmissionView>,
}

/// How far a large send's admission has got.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AdmissionView {
    /// `admitting` until every guest is invited, skipped or left out, then `admitted`.
    pub state: &'static str,
    /// Guests the send accepted.
    pub guests: u64,
    /// Of those, guests not yet admitted (about: a chunk at a time).
    pub pending: u64,
    /// Guests not invited because an earlier invitation holds them.
    pub left_out: u64,
}

/// A job's progress; another organizer's job is not found, like a missing one.
pub async fn job(
    store: &dyn ProgressStore,
    profile: &SenderProfile,
    owner: &str,
    job_id: &JobId,
) -> Result<JobView, AppError> {
    let job = store
        .get_job(job_id)
        .await?
        .filter(|j| j.owner == owner)
        .ok_or_else(|| AppError::NotFound(format!("job {job_id}")))?;
    let counts: BTreeMap<&str, i64> = Status::ALL
        .into_iter()
        .map(|s| (s.as_str(), job.count(s)))
        .collect();
    let now = budget::epoch_seconds();
    // Still to leave: what is queued and what waits for the window.
    let waiting = job.count(Status::Waiting).max(0) as u64;
    let remaining = job.count(Status::Queued).max(0) as u64 + waiting;
    let admission = job.admission.as_ref().map(|a| AdmissionView {
        state: if a.is_done() { "admitted" } else { "admitting" },
        guests: a.guests,
        pending: a.guests.saturating_sub(job.total + a.left_out),
        left_out: a.left_out,
    });
    // Guests still to be admitted leave after those queued now.
    let remaining = remaining + admission.as_ref().map_or(0, |a| a.pending);
    let in_flight = remaining + job.count(Status::Sending).max(0) as u64;
    // The budget's ring is read only when the job waits for it: otherwise
    // the rate decides, and a dashboard's polls stay one query.
    let state = match waiting {
        0 => None,
        _ => budget(store, profile).await?,
    };
    let expected_finish = (in_flight > 0)
        .then(|| at(profile.expected_finish(state.as_ref().map(|(_, s)| s), now, remaining)));
    let waiting = (waiting > 0).then(|| {
        let next_at = state
            .as_ref()
            .and_then(|(limit, s)| s.next_free_at(*limit, profile.window_seconds, now))
            .map(at);
        serde_json::json!({
            "count": waiting,
            "reason": Action::WaitForDailyLimit,
            "words": Action::WaitForDailyLimit.what_to_do(),
            "daily_unique_recipients": profile.daily_limit,
            "next_at": next_at,
        })
    });
    Ok(JobView {
        done: job.is_done(),
        job_id: job.job_id,
        event_id: job.event_id,
        total: job.total,
        counts,
        created_at: job.created_at,
        expected_finish,
        waiting,
        admission,
    })
}

/// What an invitation's error means: what the product does about it, or
/// what the organizer can, and the same in the organizer's words.
pub fn error_action(
    codes: &dyn ErrorCodes,
    invitation: &Invitation,
) -> (Option<Action>, Option<&'static str>) {
    let action = invitation
        .error_code
        .as_deref()
        .map(|c| codes.action(c, invitation.status));
    (action, action.map(Action::what_to_do))
}

/// One guest's invitation as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InvitationView {
    pub invitation_id: String,
    pub job_id: String,
    pub guest_id: String,
    pub name: String,
    pub status: Status,
    pub attempt: u32,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub error_action: Option<Action>,
    pub what_to_do: Option<&'static str>,
    pub flag: Option<String>,
    pub message_sid: Option<String>,
    pub template_id: Option<String>,
    pub template_version: Option<u32>,
    pub updated_at: String,
    /// While waiting: not sent before then (WhatsApp held its marketing
    /// message back; the next try's time).
    pub due_at: Option<String>,
    pub timestamps: BTreeMap<&'static str, String>,
}

impl InvitationView {
    pub fn new(i: Invitation, codes: &dyn ErrorCodes) -> Self {
        let (error_action, what_to_do) = error_action(codes, &i);
        Self {
            invitation_id: i.invitation_id.to_string(),
            job_id: i.job_id.to_string(),
            guest_id: i.guest.guest_id.to_string(),
            name: i.guest.name,
            status: i.status,
            attempt: i.attempt,
            error_code: i.error_code,
            error_message: i.error_message,
            error_action,
            what_to_do,
            flag: i.flag,
            message_sid: i.message_sid,
            template_id: i.template.as_ref().map(|t| t.template_id.to_string()),
            template_version: i.template.as_ref().map(|t| t.version),
            updated_at: i.updated_at,
            due_at: i.due_at,
            timestamps: i
                .timestamps
                .into_iter()
                .map(|(s, at)| (s.as_str(), at))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InvitationsPage {
    pub items: Vec<InvitationView>,
    pub next_cursor: Option<String>,
}

/// A page of an event's invitations, oldest first, filtered by status.
pub async fn invitations(
    store: &dyn ProgressStore,
    codes: &dyn ErrorCodes,
    query: ListQuery,
) -> Result<InvitationsPage, AppError> {
    if store
        .get_event(&query.owner, &query.event_id)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound(format!("event {}", query.event_id)));
    }
    let page = store.list_invitations(&query).await?;
    Ok(InvitationsPage {
        items: page
            .items
            .into_iter()
            .map(|i| InvitationView::new(i, codes))
            .collect(),
        next_cursor: page.next_cursor,
    })
}

#[cfg(test)]
mod tests;
