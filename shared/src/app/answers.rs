//! The organizer's view of answers: the headcount over the whole list with
//! a page of guests and their answers (filtered by answer), one guest's
//! history, an answer recorded or corrected by the organizer, and what
//! guests wrote back that was not an answer.

use super::guest_list::views::RsvpView;
use super::guest_list::{cursor_after, everyone, guest_after};
use super::rsvp::AnswerStore;
use super::{AppError, event};
use crate::domain::guest::ListedGuest;
use crate::domain::rsvp::{Answer, AnswerVia, Headcount, Reply, Rsvp, RsvpHistory, companions};
use crate::domain::{EventId, GuestId, now};
use crate::ports::Recorded;
use serde::{Deserialize, Serialize};

/// Kept messages answered at most.
pub const MAX_REPLIES: u32 = 500;

/// The event's kept messages, newest first.
pub async fn replies(
    store: &dyn AnswerStore,
    owner: &str,
    event_id: &EventId,
    limit: usize,
) -> Result<Vec<Reply>, AppError> {
    event(store, owner, event_id).await?;
    Ok(store.replies(owner, event_id, limit).await?)
}

/// The organizer records or corrects a guest's answer.
pub async fn record_by_organizer(
    store: &dyn AnswerStore,
    owner: &str,
    event_id: &EventId,
    guest: &GuestId,
    answer: Answer,
    companions: u32,
) -> Result<(Recorded, RsvpHistory), AppError> {
    event(store, owner, event_id).await?;
    let rsvp = Rsvp {
        answer,
        companions,
        via: AnswerVia::Organizer,
        at: now(),
    };
    let recorded = store.record_rsvp(owner, event_id, guest, &rsvp).await?;
    if recorded == Recorded::NoSuchGuest {
        return Err(AppError::NotFound(format!("guest {guest}")));
    }
    let history = store.rsvp_history(owner, event_id, guest).await?;
    Ok((recorded, history))
}

/// A guest's answers, oldest first.
pub async fn history(
    store: &dyn AnswerStore,
    owner: &str,
    event_id: &EventId,
    guest: &GuestId,
) -> Result<(ListedGuest, RsvpHistory), AppError> {
    event(store, owner, event_id).await?;
    let listed = store
        .get_guests(owner, event_id, std::slice::from_ref(guest))
        .await?
        .pop()
        .ok_or_else(|| AppError::NotFound(format!("guest {guest}")))?;
    // A guest removed and added again starts afresh.
    let since = listed.created_at.clone();
    let history = store.rsvp_history(owner, event_id, guest).await?;
    let history = RsvpHistory::new(
        history
            .all()
            .iter()
            .filter(|r| r.at >= since)
            .cloned()
            .collect(),
    );
    Ok((listed, history))
}

/// Which guests an answers listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFilter {
    Answered(Answer),
    NoAnswer,
}

impl std::str::FromStr for AnswerFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == NO_ANSWER {
            return Ok(AnswerFilter::NoAnswer);
        }
        s.parse::<Answer>()
            .map(AnswerFilter::Answered)
            .map_err(|_| format!("must be yes, no, maybe or {NO_ANSWER}"))
    }
}

/// How the API names guests without an answer.
pub const NO_ANSWER: &str = "no_answer";

impl AnswerFilter {
    fn matches(self, rsvp: Option<&Rsvp>) -> bool {
        match self {
            AnswerFilter::NoAnswer => rsvp.is_none(),
            AnswerFilter::Answered(a) => rsvp.is_some_and(|r| r.answer == a),
        }
    }
}

/// The event's headcount and a page of its guests' answers.
#[derive(Debug, Clone)]
pub struct Answers {
    pub headcount: Headcount,
    /// Guests on the list.
    pub guests: u64,
    pub rows: Vec<ListedGuest>,
    pub next_cursor: Option<String>,
}

/// The headcount over the whole list, and a page (in guest id order) of the
/// guests the filter keeps.
pub async fn answers(
    store: &dyn AnswerStore,
    owner: &str,
    event_id: &EventId,
    filter: Option<AnswerFilter>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Answers, AppError> {
    let after = cursor.map(guest_after).transpose()?;
    event(store, owner, event_id).await?;
    let all = everyone(store, owner, event_id).await?;
    let headcount = Headcount::of(all.iter().map(|g| g.rsvp.as_ref()));
    let guests = all.len() as u64;
    let mut rows: Vec<ListedGuest> = all
        .into_iter()
        .filter(|g| after.as_ref().is_none_or(|a| g.guest.guest_id > *a))
        .filter(|g| filter.is_none_or(|f| f.matches(g.rsvp.as_ref())))
        .take(limit + 1)
        .collect();
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = more
        .then(|| rows.last().map(|g| cursor_after(&g.guest.guest_id)))
        .flatten();
    Ok(Answers {
        headcount,
        guests,
        rows,
        next_cursor,
    })
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

/// The headcount and a page of answers, as the API shows them; `filter`
/// as a client gives it (`yes`, `no`, `maybe` or `no_answer`).
pub async fn listing(
    store: &dyn AnswerStore,
    owner: &str,
    event_id: &EventId,
    filter: Option<&str>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<serde_json::Value, AppError> {
    let filter = filter
        .map(|raw| {
            raw.parse::<AnswerFilter>()
                .map_err(|e| AppError::invalid("answer", e))
        })
        .transpose()?;
    let found = answers(store, owner, event_id, filter, cursor, limit).await?;
    let items: Vec<Row<'_>> = found.rows.iter().map(row).collect();
    Ok(serde_json::json!({
        "event_id": event_id,
        "guests": found.guests,
        "headcount": found.headcount,
        "items": items,
        "next_cursor": found.next_cursor,
    }))
}

/// One guest's answer and history, as the API shows them.
pub async fn one(
    store: &dyn AnswerStore,
    owner: &str,
    event_id: &EventId,
    guest: &GuestId,
) -> Result<serde_json::Value, AppError> {
    let (listed, history) = history(store, owner, event_id, guest).await?;
    Ok(serde_json::json!({
        "guest_id": listed.guest.guest_id,
        "name": listed.guest.name,
        "rsvp": listed.rsvp.as_ref().map(RsvpView::from),
        "history": history_views(&history),
    }))
}

/// The body of an organizer's answer for a guest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    pub answer: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::whole_number")]
    pub companions: Option<i64>,
}

/// Records the organizer's answer for a guest; answers their history.
pub async fn record(
    store: &dyn AnswerStore,
    owner: &str,
    event_id: &EventId,
    guest: &GuestId,
    input: AnswerInput,
) -> Result<serde_json::Value, AppError> {
    let answer = input
        .answer
        .ok_or_else(|| AppError::invalid("answer", "is required"))?
        .parse::<Answer>()
        .map_err(|e| AppError::invalid("answer", e))?;
    let companions = companions(input.companions, "companions")?;
    if answer != Answer::Yes && companions > 0 {
        return Err(AppError::invalid(
            "companions",
            "counts who comes with a guest: give it with answer yes only",
        ));
    }
    let (recorded, history) =
        record_by_organizer(store, owner, event_id, guest, answer, companions).await?;
    Ok(serde_json::json!({
        "guest_id": guest,
        "recorded": recorded == Recorded::Recorded,
        "rsvp": history.latest().map(RsvpView::from),
        "history": history_views(&history),
    }))
}

/// What guests wrote back, newest first, as the API shows it.
pub async fn replies_listing(
    store: &dyn AnswerStore,
    owner: &str,
    event_id: &EventId,
    limit: usize,
) -> Result<serde_json::Value, AppError> {
    let found = replies(store, owner, event_id, limit).await?;
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
    Ok(serde_json::json!({ "items": items }))
}
