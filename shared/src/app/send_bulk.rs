//! Send-bulk: up to 10,000 guests in one request. Each guest is parsed on
//! its own (a bad one comes back with its index, field and reason; a guest
//! named twice, by id or by number, is sent once); the good ones are
//! written and queued by the send pipeline ([`crate::app::send`]). A dry
//! run answers what the send would do (who would be queued, skipped or
//! left out, when it would finish under the sender's rate and daily limit,
//! what it would cost), writing nothing. An idempotency key makes a
//! repeated request return the first answer.

use crate::app::admission::AdmitStore;
use crate::app::send::{self, NewJob};
use crate::app::{AppError, admission, idempotency, required, templates};
use crate::domain::admission::INLINE_GUESTS;
use crate::domain::budget::{self, DailyLimit, SenderProfile};
use crate::domain::cost::Rates;
use crate::domain::guest::{ALREADY_INVITED, MAX_PER_REQUEST, already_invited_words, parse_nth};
use crate::domain::{EventId, Guest, GuestInput, Invitation, Status, timestamp};
use crate::ports::{AdmissionQueue, BudgetStore, IdempotencyStore, SendQueue};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// What send-bulk reads and writes: the send pipeline's store, a large
/// send's chunks, idempotency keys, and (for a dry run's estimate) the
/// daily budget.
pub trait BulkStore: AdmitStore + IdempotencyStore + BudgetStore {}
impl<T: AdmitStore + IdempotencyStore + BudgetStore + ?Sized> BulkStore for T {}

pub struct Deps {
    pub store: Arc<dyn BulkStore>,
    pub queue: Arc<dyn SendQueue>,
    /// Where a large send's chunks wait to be admitted behind the answer.
    pub admissions: Arc<dyn AdmissionQueue>,
    /// The WhatsApp sender's limits: when a send would finish.
    pub profile: SenderProfile,
    /// What messages cost, for a dry run's estimate.
    pub rates: Rates,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct BulkRequest {
    pub event_id: Option<String>,
    pub guests: Option<Vec<serde_json::Value>>,
    pub template_id: Option<String>,
    /// Answer what the send would do, writing and sending nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Invite again guests whose invitation for the event is on its way or arrived.
    #[serde(default)]
    pub resend: bool,
}

/// What send-bulk answers: a dry run's findings, or the queued job.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    DryRun(serde_json::Value),
    Queued(serde_json::Value),
}

/// A guest the request named that will not be sent to, and why.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    pub guest_id: Option<String>,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Duplicate {
    pub index: usize,
    pub guest_id: Option<String>,
    /// Index of the entry that will be sent.
    pub duplicate_of: usize,
}

/// A guest not sent to although valid (opted out), and why.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub index: usize,
    pub guest_id: String,
    pub code: String,
    pub message: String,
}

/// A valid guest not invited because an earlier invitation holds them.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct LeftOutView {
    pub index: usize,
    pub guest_id: String,
    pub reason: &'static str,
    pub message: String,
    pub invitation_id: String,
    pub status: Status,
}

/// The guests split into those to send and those not to, with reasons.
#[derive(Debug, Default)]
pub struct Triage {
    /// With each guest's index in the request.
    pub accepted: Vec<(usize, Guest)>,
    pub rejected: Vec<Rejected>,
    pub duplicates: Vec<Duplicate>,
}

/// Parses each guest on its own; one guest (by id, or by the WhatsApp user
/// the phone reaches) is sent once.
pub fn triage(raw: Vec<serde_json::Value>) -> Triage {
    let mut triage = Triage::default();
    let mut seen_ids: HashMap<String, usize> = HashMap::new();
    let mut seen_phones: HashMap<String, usize> = HashMap::new();
    for (index, value) in raw.into_iter().enumerate() {
        let (raw_id, parsed) = parse_nth(index, value, |g: GuestInput, prefix| g.parse(prefix));
        let guest = match parsed {
            Ok(guest) => guest,
            Err(e) => {
                triage.rejected.push(Rejected {
                    index,
                    guest_id: raw_id,
                    field: e.field,
                    message: e.message,
                });
                continue;
            }
        };
        // One WhatsApp user is one guest, in whichever form the number
        // came (+55 11 9xxxx-xxxx and +55 11 xxxx-xxxx reach the same one).
        let identity = guest.phone.whatsapp_identity();
        let first = seen_ids
            .get(guest.guest_id.as_str())
            .or_else(|| seen_phones.get(&identity))
            .copied();
        if let Some(duplicate_of) = first {
            triage.duplicates.push(Duplicate {
                index,
                guest_id: raw_id,
                duplicate_of,
            });
            continue;
        }
        seen_ids.insert(guest.guest_id.as_str().to_owned(), index);
        seen_phones.insert(identity, index);
        triage.accepted.push((index, guest));
    }
    triage
}

/// Runs the request: a dry run, or the send (once per idempotency key,
/// given the request's raw `body` to tell a repeat from another request).
pub async fn send_bulk(
    deps: &Deps,
    owner: &str,
    input: BulkRequest,
    key: Option<&str>,
    body: &[u8],
) -> Result<Answer, AppError> {
    if input.dry_run {
        // Nothing is written, so there is nothing to make idempotent.
        return Ok(Answer::DryRun(dry_run(deps, owner, input).await?));
    }
    let answer = match key {
        None => process(deps, owner, input, NewJob::Fresh).await?,
        Some(raw) => {
            let key = idempotency::Key::parse(raw)?;
            let job = NewJob::Resumable(key.job_id(owner));
            idempotency::once(deps.store.as_ref(), owner, &key, body, || {
                process(deps, owner, input, job)
            })
            .await?
        }
    };
    Ok(Answer::Queued(answer))
}

/// The request checked: its plan (event and template) and its guests
/// sorted into those to send (with their index) and those not to.
struct Checked {
    plan: send::Plan,
    indexes: Vec<usize>,
    guests: Vec<Guest>,
    rejected: Vec<Rejected>,
    duplicates: Vec<Duplicate>,
}

async fn check(deps: &Deps, owner: &str, input: BulkRequest) -> Result<Checked, AppError> {
    let event_id = required("event_id", input.event_id, EventId::parse)?;
    let guests = input
        .guests
        .ok_or_else(|| AppError::invalid("guests", "is required"))?;
    if guests.is_empty() || guests.len() > MAX_PER_REQUEST {
        return Err(AppError::invalid(
            "guests",
            format!("must list 1 to {MAX_PER_REQUEST} guests"),
        ));
    }
    let requested = templates::requested(input.template_id)?;
    let plan = send::plan(deps.store.as_ref(), owner, &event_id, requested.as_ref()).await?;
    let triage = triage(guests);
    if triage.accepted.is_empty() {
        let first = triage
            .rejected
            .first()
            .map(|r| format!("{}: {}", r.field, r.message))
            .unwrap_or_default();
        return Err(AppError::invalid(
            "guests",
            format!("no guest can be sent to; first problem: {first}"),
        ));
    }
    let (indexes, guests): (Vec<usize>, Vec<Guest>) = triage.accepted.into_iter().unzip();
    let guests = send::as_listed(deps.store.as_ref(), owner, &event_id, guests, |i| {
        format!("guests[{}].", indexes[i])
    })
    .await?;
    Ok(Checked {
        plan,
        indexes,
        guests,
        rejected: triage.rejected,
        duplicates: triage.duplicates,
    })
}

/// The left-out guests, by request index.
fn left_out(indexes: &[usize], guests: &[Guest], left: &[send::LeftOut]) -> Vec<LeftOutView> {
    left.iter()
        .map(|l| LeftOutView {
            index: indexes[l.position],
            guest_id: guests[l.position].guest_id.to_string(),
            reason: ALREADY_INVITED,
            message: already_invited_words(l.held_by.status),
            invitation_id: l.held_by.invitation_id.to_string(),
            status: l.held_by.status,
        })
        .collect()
}

/// The request indexes of the guests a send invited, in order.
fn invited_indexes(indexes: &[usize], left: &[send::LeftOut]) -> Vec<usize> {
    send::invited_positions(indexes.len(), left)
        .into_iter()
        .map(|p| indexes[p])
        .collect()
}

/// The accepted guests whose invitations are skipped, by request index.
fn skipped(indexes: &[usize], invitations: &[Invitation]) -> Vec<Skipped> {
    indexes
        .iter()
        .zip(invitations)
        .filter(|(_, inv)| inv.status == Status::Skipped)
        .map(|(index, inv)| Skipped {
            index: *index,
            guest_id: inv.guest.guest_id.to_string(),
            code: inv.error_code.clone().unwrap_or_default(),
            message: inv.error_message.clone().unwrap_or_default(),
        })
        .collect()
}

/// What the send would do, writing and sending nothing: who would be
/// queued and skipped, when it would finish under the sender's rate and
/// daily limit, and what it would cost.
async fn dry_run(
    deps: &Deps,
    owner: &str,
    input: BulkRequest,
) -> Result<serde_json::Value, AppError> {
    let resend = input.resend;
    let checked = check(deps, owner, input).await?;
    let store = deps.store.as_ref();
    let dry = send::dry_run(store, &checked.plan, checked.guests.clone(), resend).await?;
    let invitations = dry.invitations;
    let left_out = left_out(&checked.indexes, &checked.guests, &dry.left_out);
    let skipped = skipped(
        &invited_indexes(&checked.indexes, &dry.left_out),
        &invitations,
    );
    let queued: Vec<_> = invitations
        .iter()
        .filter(|i| i.status == Status::Queued)
        .map(|i| &i.guest.phone)
        .collect();
    let now = budget::epoch_seconds();
    let (state, free) = match deps.profile.daily_limit {
        DailyLimit::Unlimited => (None, queued.len()),
        DailyLimit::Limited(limit) => {
            let state = store.budget_state(budget::STACK_SENDER).await?;
            let free = state.free_now(limit, deps.profile.window_seconds, now) as usize;
            (Some(state), free)
        }
    };
    let finish = deps
        .profile
        .expected_finish(state.as_ref(), now, queued.len() as u64);
    let template = &checked.plan.template;
    let cost = deps
        .rates
        .estimate(template.category, queued.iter().copied());
    Ok(serde_json::json!({
        "dry_run": true,
        "accepted": invitations.len(),
        "queued": queued.len(),
        "skipped": skipped,
        "left_out": left_out,
        "resends": dry.resends,
        "rejected": checked.rejected,
        "duplicates": checked.duplicates,
        "template_id": template.template_id,
        "template_version": template.version,
        "category": template.category,
        "would_wait": queued.len().saturating_sub(free),
        "daily_unique_recipients": deps.profile.daily_limit,
        "expected_finish": timestamp(
            OffsetDateTime::from_unix_timestamp(finish).unwrap_or(OffsetDateTime::UNIX_EPOCH)
        ),
        "cost": cost,
    }))
}

async fn process(
    deps: &Deps,
    owner: &str,
    input: BulkRequest,
    job: NewJob,
) -> Result<serde_json::Value, AppError> {
    let resend = input.resend;
    let checked = check(deps, owner, input).await?;
    if checked.guests.len() > INLINE_GUESTS {
        return accept_for_admission(deps, checked, job, resend).await;
    }
    let store = deps.store.as_ref();
    let sent = send::send(
        store,
        deps.queue.as_ref(),
        checked.plan,
        checked.guests.clone(),
        job,
        resend,
    )
    .await?;
    let left_out = left_out(&checked.indexes, &checked.guests, &sent.left_out);
    let skipped = skipped(
        &invited_indexes(&checked.indexes, &sent.left_out),
        &sent.invitations,
    );
    let triage = (checked.rejected, checked.duplicates);
    let accepted = sent.invitations.len();
    tracing::info!(job_id = %sent.job.job_id, accepted, skipped = skipped.len(), left_out = left_out.len(), rejected = triage.0.len(), duplicates = triage.1.len(), "bulk send queued");
    Ok(serde_json::json!({
        "job_id": sent.job.job_id,
        "admitting": false,
        "accepted": accepted,
        "queued": accepted - skipped.len(),
        "skipped": skipped,
        "left_out": left_out,
        "rejected": triage.0,
        "duplicates": triage.1,
        "template_id": sent.template.template_id,
        "template_version": sent.template.version,
    }))
}

/// A large send answered before its guests are admitted: the job shows
/// how admission goes, who was skipped and how many were left out.
async fn accept_for_admission(
    deps: &Deps,
    checked: Checked,
    job: NewJob,
    resend: bool,
) -> Result<serde_json::Value, AppError> {
    let accepted = checked.guests.len();
    let template = checked.plan.template.reference();
    let job = admission::accept(
        deps.store.as_ref(),
        deps.admissions.as_ref(),
        &checked.plan,
        checked.guests,
        job,
        resend,
    )
    .await?;
    let chunks = job.admission.as_ref().map_or(0, |a| a.chunks);
    tracing::info!(job_id = %job.job_id, accepted, chunks, rejected = checked.rejected.len(), duplicates = checked.duplicates.len(), "bulk send accepted; admitting behind the answer");
    Ok(serde_json::json!({
        "job_id": job.job_id,
        "admitting": true,
        "accepted": accepted,
        "rejected": checked.rejected,
        "duplicates": checked.duplicates,
        "template_id": template.template_id,
        "template_version": template.version,
    }))
}

#[cfg(test)]
mod tests;
