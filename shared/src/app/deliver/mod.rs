//! The sender's use case: what happens to each queued record. Each is
//! checked (its attempt still current, the guest not opted out, a
//! reminder's guest not answered), counted against the daily budget (one
//! take for the batch), claimed just before its send slot, rendered, and
//! sent through the messenger; the messenger's outcome decides what the
//! invitation becomes. Nothing here knows the queue's or the provider's
//! wire formats.

mod lookups;
mod pacer;

pub use pacer::{JITTER_MARGIN, Pacer, PacingError};

pub use lookups::BatchLookups;

use crate::app::lifecycle;
use crate::app::waiting::{self, HeldBack, WaitingStore};
use crate::domain::budget::{self, BudgetRules, DailyLimit, SenderProfile};
use crate::domain::guest::ListedGuest;
use crate::domain::reason::{
    ANSWERED, EVENT_MISSING, GUEST_REMOVED, MARKETING_TO_US, NUMBER_CHANGED, SEND_UNCONFIRMED,
    TEMPLATE_MISSING,
};
use crate::domain::reminder::is_reminder;
use crate::domain::render::{self, TemplateContext};
use crate::domain::{
    EventId, GuestId, Invitation, InvitationId, MessageContent, OptOut, OptOuts, Status, now,
};
use crate::ports::{
    Annotation, BudgetClaim, BudgetTake, ErrorInfo, EventStore, GuestStore, MessageRef, Messenger,
    OptOutStore, OutboundMessage, ProviderError, Refusal, SEND_TIMEOUT, SendMessage, SendQueue,
    StoreError, TemplateStore,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What the sender reads and moves: the invitation, its event and template
/// version, the guest's opt-out, and the daily budget.
pub trait SenderStore: WaitingStore + ContentStore + OptOutStore + GuestStore {}
impl<T: WaitingStore + ContentStore + OptOutStore + GuestStore + ?Sized> SenderStore for T {}

/// What an invitation's message is made of: its event and template version.
pub trait ContentStore: EventStore + TemplateStore {}
impl<T: EventStore + TemplateStore + ?Sized> ContentStore for T {}

pub struct Deps {
    pub store: Arc<dyn SenderStore>,
    pub messenger: Arc<dyn Messenger>,
    pub queue: Arc<dyn SendQueue>,
    /// The stack's RSVP page, which invitations' links open when their
    /// event has no RSVP app of its own.
    pub rsvp_page_url: String,
    pub pacer: Pacer,
    /// The WhatsApp sender's limits (the pacer holds its rate).
    pub profile: SenderProfile,
    /// Receives after which a retryable failure is final (the queue's maxReceiveCount).
    pub max_receive_count: u32,
    pub backoff: Backoff,
}

/// One record as the queue delivered it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuedRecord {
    /// The queue's id of the message (what a batch reports as failed).
    pub id: String,
    pub body: String,
    /// How many times the queue has delivered it, this time included.
    pub receive_count: u32,
    /// What hides or shows it again (a backoff), when the queue gave one.
    pub receipt_handle: Option<String>,
}

/// What became of a record that is done with (not returned to the queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The provider accepted the message.
    Sent,
    /// Nothing to do: a stale or repeated delivery, or a claim another took.
    Dropped,
    /// Not sent on purpose (an opt-out, an answer before a reminder).
    Skipped,
    /// Waits for the daily limit's window.
    Waiting,
    /// The send's outcome is unknown: flagged, never resent automatically.
    Flagged,
    /// The provider failed it for good, with the code recorded on the invitation.
    Failed { code: String },
    /// Not sent: its message could not be made (the event or template
    /// gone, a rule of the template's category); failed with that reason.
    Unsendable { code: String },
    /// Not a send request: moved to the dead-letter queue.
    DeadLettered,
}

/// Why a record goes back to the queue.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("message is not a send request: {0}")]
    Poison(String),
    #[error("provider asked us to retry: {0}")]
    Retry(String),
    #[error("no send slot before the invocation's deadline; left unclaimed for another")]
    OutOfTime,
    #[error(transparent)]
    Store(#[from] StoreError),
}

type RecordResult = Result<Delivered, RecordError>;

/// The longest a send may take from its slot to its recorded answer: the
/// messenger's timeout and the store writes around it. A record whose
/// slot leaves less than this before the deadline is not claimed.
pub const SEND_BUDGET: Duration = Duration::from_secs(SEND_TIMEOUT.as_secs() + 2);

/// How long before its slot a record's claim is made: time for the claim's
/// write and the rendering, so the send itself leaves on the slot.
const CLAIM_LEAD: Duration = Duration::from_millis(250);

/// What a batch reads once for all its records: their invitations, which
/// of their guests opted out, and their guests as the list has them now.
struct Prefetched {
    invitations: HashMap<InvitationId, Invitation>,
    opt_outs: OptOuts,
    /// By (owner, event, guest); a guest missing here was removed.
    guests: HashMap<(String, EventId, GuestId), ListedGuest>,
}

/// One batch that must be done by `deadline`: one result per record, in
/// order; an Err goes back to the queue (an out-of-time record visible
/// again at once, for an instance with time to send it).
pub async fn deliver(
    deps: &Deps,
    records: &[QueuedRecord],
    deadline: Instant,
) -> Vec<RecordResult> {
    let lookups = BatchLookups::new();
    let messages: Vec<Result<SendMessage, String>> = records
        .iter()
        .map(|record| {
            serde_json::from_str(&record.body).map_err(|e: serde_json::Error| e.to_string())
        })
        .collect();
    let results: Vec<RecordResult> = match prefetch(deps, &messages).await {
        Ok(prefetched) => {
            let checked =
                futures::future::join_all(records.iter().zip(&messages).map(
                    |(record, message)| check_or_dead_letter(deps, &prefetched, record, message),
                ))
                .await;
            send_ready(deps, &lookups, records, checked, deadline).await
        }
        Err(error) => {
            tracing::error!(%error, "could not read the batch's invitations; all returned to the queue");
            records
                .iter()
                .map(|_| Err(RecordError::Retry(error.to_string())))
                .collect()
        }
    };
    for (record, result) in records.iter().zip(&results) {
        let Err(err) = result else { continue };
        tracing::warn!(message_id = %record.id, error = %err, "record returned to the queue");
        if matches!(err, RecordError::OutOfTime)
            && let Some(handle) = &record.receipt_handle
        {
            // Visible again at once, for an instance with time to send it.
            let _ = deps.queue.delay(handle, 0).await;
        }
    }
    results
}

/// Reads the batch's invitations and opt-outs in one request each.
async fn prefetch(
    deps: &Deps,
    messages: &[Result<SendMessage, String>],
) -> Result<Prefetched, StoreError> {
    let ids: Vec<InvitationId> = messages
        .iter()
        .flatten()
        .map(|m| m.invitation_id.clone())
        .collect();
    let store = deps.store.as_ref();
    let invitations: HashMap<InvitationId, Invitation> = store
        .get_invitations(&ids)
        .await?
        .into_iter()
        .map(|inv| (inv.invitation_id.clone(), inv))
        .collect();
    let wanted: Vec<_> = invitations
        .values()
        .map(|i| (i.owner.clone(), i.guest.phone.clone()))
        .collect();
    let opt_outs = store.opt_outs_for(&wanted).await?;
    // The guests, one read per event (a batch is usually one event's).
    let mut by_event: HashMap<(String, EventId), Vec<GuestId>> = HashMap::new();
    for inv in invitations.values() {
        by_event
            .entry((inv.owner.clone(), inv.event_id.clone()))
            .or_default()
            .push(inv.guest.guest_id.clone());
    }
    let mut guests = HashMap::new();
    for ((owner, event), ids) in by_event {
        for listed in store.get_guests(&owner, &event, &ids).await? {
            let key = (owner.clone(), event.clone(), listed.guest.guest_id.clone());
            guests.insert(key, listed);
        }
    }
    Ok(Prefetched {
        invitations,
        opt_outs,
        guests,
    })
}

/// A record after its checks: done with (dropped, skipped, dead-lettered,
/// or returned), or an invitation ready to send.
enum Checked {
    Done(RecordResult),
    Ready(Box<Invitation>),
}

/// The records ready to send take their places in the daily budget
/// together (one transaction for the batch), then go out at the pace; those
/// over the budget wait for the window.
async fn send_ready(
    deps: &Deps,
    lookups: &BatchLookups,
    records: &[QueuedRecord],
    checked: Vec<Checked>,
    deadline: Instant,
) -> Vec<RecordResult> {
    let ready: Vec<&Invitation> = checked
        .iter()
        .filter_map(|c| match c {
            Checked::Ready(inv) => Some(inv.as_ref()),
            Checked::Done(_) => None,
        })
        .collect();
    let mut budget = match take_budgets(deps, &ready).await {
        Ok(takes) => takes.into_iter(),
        Err(error) => {
            tracing::warn!(%error, "could not count the batch against the daily budget; returned to the queue");
            return checked
                .into_iter()
                .map(|c| match c {
                    Checked::Done(result) => result,
                    Checked::Ready(_) => Err(RecordError::Retry(error.to_string())),
                })
                .collect();
        }
    };
    let runs = checked.into_iter().zip(records).map(|(c, record)| {
        let over_budget = match &c {
            Checked::Ready(_) => budget.next().flatten(),
            Checked::Done(_) => None,
        };
        async move {
            match (c, over_budget) {
                (Checked::Done(result), _) => result,
                (Checked::Ready(inv), Some(until)) => {
                    wait_for_budget(deps.store.as_ref(), &inv, until).await
                }
                (Checked::Ready(inv), None) => {
                    let (result, reached) =
                        send_paced(deps, lookups, record, (*inv).clone(), deadline).await;
                    if !reached {
                        give_back(deps, &inv).await;
                    }
                    result
                }
            }
        }
    });
    futures::future::join_all(runs).await
}

/// A poison message goes straight to the dead-letter queue (and its alarm)
/// instead of being received again and again; the batch's others go on.
async fn check_or_dead_letter(
    deps: &Deps,
    prefetched: &Prefetched,
    record: &QueuedRecord,
    message: &Result<SendMessage, String>,
) -> Checked {
    let result = match message {
        Err(reason) => Err(RecordError::Poison(reason.clone())),
        Ok(message) => match check(deps, prefetched, message).await {
            Ok(Ok(inv)) => return Checked::Ready(Box::new(inv)),
            Ok(Err(done)) => Ok(done),
            Err(e) => Err(e),
        },
    };
    Checked::Done(match result {
        Err(RecordError::Poison(reason)) => {
            tracing::error!(message_id = %record.id, %reason, "poison message moved to the dead-letter queue");
            deps.queue
                .dead_letter(&record.body, &reason)
                .await
                .map(|()| Delivered::DeadLettered)
                .map_err(|e| RecordError::Retry(format!("dead-lettering failed: {e}")))
        }
        other => other,
    })
}

/// Whether a record's invitation is to be sent now: Ok(invitation) when it
/// is queued on the message's attempt and its guest has not opted out,
/// else what became of it.
async fn check(
    deps: &Deps,
    prefetched: &Prefetched,
    message: &SendMessage,
) -> Result<Result<Invitation, Delivered>, RecordError> {
    let store = deps.store.as_ref();
    let Some(inv) = prefetched.invitations.get(&message.invitation_id).cloned() else {
        return Err(RecordError::Poison(format!(
            "invitation {} does not exist",
            message.invitation_id
        )));
    };
    if inv.attempt != message.attempt {
        tracing::info!(invitation_id = %inv.invitation_id, message_attempt = message.attempt, current = inv.attempt, "stale message dropped");
        return Ok(Err(Delivered::Dropped));
    }
    match inv.status {
        Status::Queued => {}
        Status::Sending if inv.message_sid.is_none() => {
            // Redelivered mid-send (or after a crash): whether the provider
            // took the first try is unknown; its report or reconciliation
            // will settle it. Never send a second time.
            tracing::warn!(invitation_id = %inv.invitation_id, "redelivered while sending; flagged, not resent");
            return flag_unconfirmed(store, &inv).await.map(Err);
        }
        _ => {
            tracing::info!(invitation_id = %inv.invitation_id, status = %inv.status, "already handled; redelivery dropped");
            return Ok(Err(Delivered::Dropped));
        }
    }
    // Checked at the last read: an opt-out may arrive after the send was queued.
    if let Some(reason) = prefetched.opt_outs.reason(&inv.owner, &inv.guest.phone) {
        let error = Some(reason.into());
        if lifecycle::force(store, &inv, Status::Skipped, &now(), None, error).await? {
            tracing::info!(invitation_id = %inv.invitation_id, to = %inv.guest.phone, "guest opted out; skipped");
        }
        return Ok(Err(Delivered::Skipped));
    }
    // The list wins: a guest removed, or whose number changed, since the
    // invitation was queued is not sent to.
    let key = (
        inv.owner.clone(),
        inv.event_id.clone(),
        inv.guest.guest_id.clone(),
    );
    let listed = prefetched.guests.get(&key);
    let off_the_list = match listed {
        None => Some((GUEST_REMOVED, "guest removed from the list; skipped")),
        Some(g) if g.guest.phone != inv.guest.phone => Some((
            NUMBER_CHANGED,
            "guest's number changed on the list; skipped",
        )),
        Some(_) => None,
    };
    if let Some((reason, words)) = off_the_list {
        let error = Some(reason.into());
        if lifecycle::force(store, &inv, Status::Skipped, &now(), None, error).await? {
            tracing::info!(invitation_id = %inv.invitation_id, "{words}");
        }
        return Ok(Err(Delivered::Skipped));
    }
    // A reminder whose guest answered meanwhile is not sent.
    if is_reminder(&inv.job_id) && listed.is_some_and(|g| g.rsvp.is_some()) {
        let error = Some(ANSWERED.into());
        if lifecycle::force(store, &inv, Status::Skipped, &now(), None, error).await? {
            tracing::info!(invitation_id = %inv.invitation_id, "the guest answered; reminder skipped");
        }
        return Ok(Err(Delivered::Skipped));
    }
    Ok(Ok(inv))
}

/// Sends a ready invitation on this instance's next slot: its result, and
/// whether the provider may have the message (false: it surely has not).
async fn send_paced(
    deps: &Deps,
    lookups: &BatchLookups,
    record: &QueuedRecord,
    inv: Invitation,
    deadline: Instant,
) -> (RecordResult, bool) {
    let store = deps.store.as_ref();
    // The slot first, then the claim: nothing is claimed that cannot be sent
    // before the deadline, and no claim waits on the pace. The claim is made
    // just ahead of the slot, so its write's latency does not move the send.
    let slot = deps.pacer.reserve().await;
    if slot + SEND_BUDGET > deadline {
        return (Err(RecordError::OutOfTime), false);
    }
    tokio::time::sleep_until(slot.checked_sub(CLAIM_LEAD).unwrap_or(slot)).await;
    match lifecycle::force(store, &inv, Status::Sending, &now(), None, None).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(invitation_id = %inv.invitation_id, "claimed by another delivery");
            return (Ok(Delivered::Dropped), false);
        }
        Err(error) => return (Err(error.into()), false),
    }
    let claimed = Invitation {
        status: Status::Sending,
        ..inv
    };
    send_claimed(deps, lookups, record, claimed, slot).await
}

async fn send_claimed(
    deps: &Deps,
    lookups: &BatchLookups,
    record: &QueuedRecord,
    inv: Invitation,
    slot: Instant,
) -> (RecordResult, bool) {
    let store = deps.store.as_ref();
    let content = match render(store, lookups, &inv, &deps.rsvp_page_url).await {
        Ok(Ok(content)) => content,
        Ok(Err(error)) => {
            tracing::warn!(invitation_id = %inv.invitation_id, code = %error.code, reason = %error.message, "message not rendered; failed");
            let code = error.code.clone();
            let failed = lifecycle::force(store, &inv, Status::Failed, &now(), None, Some(error))
                .await
                .map(|_| Delivered::Unsendable { code })
                .map_err(RecordError::from);
            return (failed, false);
        }
        // Claimed and not sent: redelivered, it is flagged, never resent.
        Err(error) => return (Err(error.into()), false),
    };
    let outbound = OutboundMessage {
        to: inv.guest.phone.clone(),
        content,
        reference: MessageRef {
            invitation_id: inv.invitation_id.clone(),
            job_id: Some(inv.job_id.clone()),
            attempt: inv.attempt,
        },
    };
    tokio::time::sleep_until(slot).await;
    match deps.messenger.send(&outbound).await {
        Ok(sid) => {
            tracing::info!(invitation_id = %inv.invitation_id, attempt = inv.attempt, message_sid = %sid, to = %inv.guest.phone, "sent to the provider");
            let note = Annotation {
                message_sid: Some(sid),
                ..Default::default()
            };
            let result = store
                .annotate(&inv.invitation_id, inv.attempt, &note)
                .await
                .map(|_| Delivered::Sent)
                .map_err(RecordError::from);
            (result, true)
        }
        Err(err) => {
            // Only an unknown outcome may have reached the guest.
            let reached = err.refusal == Refusal::Unknown;
            (refused(deps, record, &inv, err).await, reached)
        }
    }
}

/// What a send the messenger did not accept makes of the invitation.
async fn refused(
    deps: &Deps,
    record: &QueuedRecord,
    inv: &Invitation,
    err: ProviderError,
) -> RecordResult {
    let store = deps.store.as_ref();
    match err.refusal {
        Refusal::Unknown => {
            // The provider may have the message: a second send could reach
            // the guest twice. Stay claimed and flagged; the status report
            // settles it, or the organizer decides.
            tracing::warn!(invitation_id = %inv.invitation_id, attempt = inv.attempt, error = %err, "send outcome unknown; flagged, not resent");
            flag_unconfirmed(store, inv).await
        }
        Refusal::DailyLimit => {
            // The provider counts more recipients than the budget does:
            // sending pauses and this one waits for the window instead of failing.
            waiting::refused_for_limit(
                store,
                &inv.invitation_id,
                inv.attempt,
                &deps.profile,
                time::OffsetDateTime::now_utc(),
            )
            .await?;
            Ok(Delivered::Waiting)
        }
        Refusal::MarketingNotDelivered => {
            let now = time::OffsetDateTime::now_utc();
            match waiting::held_back(store, &inv.invitation_id, inv.attempt, now).await? {
                HeldBack::Waits { .. } => Ok(Delivered::Waiting),
                HeldBack::Moved => Ok(Delivered::Dropped),
                HeldBack::Final => fail(store, inv, err).await,
            }
        }
        Refusal::RetryLater if record.receive_count < deps.max_receive_count => {
            // Give the claim back so the redelivery can take it, and back off.
            lifecycle::force(store, inv, Status::Queued, &now(), None, None).await?;
            let delay = deps.backoff.seconds(record.receive_count);
            if let Some(handle) = &record.receipt_handle
                && let Err(e) = deps.queue.delay(handle, delay).await
            {
                tracing::warn!(error = %e, "could not set backoff; the queue's visibility timeout applies");
            }
            Err(RecordError::Retry(err.to_string()))
        }
        _ => fail(store, inv, err).await,
    }
}

/// The provider refused the send for good: the invitation fails with its words.
async fn fail(store: &dyn SenderStore, inv: &Invitation, err: ProviderError) -> RecordResult {
    let error = err.error.clone();
    tracing::warn!(invitation_id = %inv.invitation_id, code = %error.code, error = %err, "send failed permanently");
    if err.refusal == Refusal::OptedOut {
        record_provider_opt_out(store, inv).await?;
    }
    let code = error.code.clone();
    lifecycle::force(store, inv, Status::Failed, &now(), None, Some(error)).await?;
    Ok(Delivered::Failed { code })
}

/// Counts the batch's guests against the daily budget, in one take: for
/// each, None to send, or Some(until) when the budget is spent (the first
/// place frees then). Each place is held from the take until a window after
/// the batch's last send could arrive at the provider.
async fn take_budgets(deps: &Deps, ready: &[&Invitation]) -> Result<Vec<Option<i64>>, StoreError> {
    let DailyLimit::Limited(limit) = deps.profile.daily_limit else {
        return Ok(vec![None; ready.len()]);
    };
    if ready.is_empty() {
        return Ok(Vec::new());
    }
    let claims: Vec<BudgetClaim> = ready.iter().map(|inv| claim(inv)).collect();
    let spread = deps.pacer.interval().as_secs_f64() * claims.len() as f64;
    let now = budget::epoch_seconds();
    let rules = BudgetRules {
        limit,
        window_seconds: deps.profile.window_seconds,
        until: deps.profile.hold_until(now, spread.ceil() as i64),
    };
    let takes = deps
        .store
        .take_budgets(budget::STACK_SENDER, &claims, &rules, now)
        .await?;
    Ok(takes
        .into_iter()
        .map(|take| match take {
            BudgetTake::Counted | BudgetTake::AlreadyCounted => None,
            BudgetTake::Exhausted { until } => Some(until),
        })
        .collect())
}

/// The place an invitation's attempt holds in the daily budget.
fn claim(inv: &Invitation) -> BudgetClaim {
    BudgetClaim {
        recipient: inv.guest.phone.clone(),
        holder: budget::holder(inv.invitation_id.as_str(), inv.attempt),
    }
}

/// A record that took a place and was not sent after all gives it back:
/// a place is held only for a guest messaged. A failure to give it back
/// only holds the place until the window ends.
async fn give_back(deps: &Deps, inv: &Invitation) {
    if deps.profile.daily_limit == DailyLimit::Unlimited {
        return;
    }
    let claim = claim(inv);
    match deps
        .store
        .release_budget(budget::STACK_SENDER, &claim, budget::epoch_seconds())
        .await
    {
        Ok(true) => {
            tracing::info!(invitation_id = %inv.invitation_id, "not sent; its place in the daily limit given back")
        }
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(invitation_id = %inv.invitation_id, %error, "could not give back the place of a message not sent; it frees when the window ends")
        }
    }
}

/// Not attempted: waits for the window to free a place; reconciliation
/// queues it again then, oldest first.
async fn wait_for_budget(store: &dyn SenderStore, inv: &Invitation, until: i64) -> RecordResult {
    if lifecycle::force(store, inv, Status::Waiting, &now(), None, None).await? {
        tracing::info!(invitation_id = %inv.invitation_id, frees_at = until, "over WhatsApp's daily limit; waiting for the window");
    }
    Ok(Delivered::Waiting)
}

/// Marks the attempt as possibly accepted by the provider: nothing resends
/// it automatically; a status report settles it, or the organizer retries.
async fn flag_unconfirmed(store: &dyn SenderStore, inv: &Invitation) -> RecordResult {
    let note = Annotation {
        flag: Some(SEND_UNCONFIRMED.into()),
        ..Default::default()
    };
    store
        .annotate(&inv.invitation_id, inv.attempt, &note)
        .await?;
    Ok(Delivered::Flagged)
}

/// How long a retryable failure waits before its next try, by receive
/// count: `first_seconds`, doubling, at most `cap_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first_seconds: u32,
    pub cap_seconds: u32,
}

impl Backoff {
    pub fn seconds(&self, receive_count: u32) -> u32 {
        let doublings = receive_count.saturating_sub(1).min(16);
        self.first_seconds
            .saturating_mul(1 << doublings)
            .min(self.cap_seconds)
    }
}

/// The provider knows the guest unsubscribed: nothing more is sent to them.
async fn record_provider_opt_out(
    store: &dyn OptOutStore,
    inv: &Invitation,
) -> Result<(), StoreError> {
    let record = OptOut::by_twilio(inv.guest.phone.clone(), &now());
    store.put_opt_out(&record, None).await?;
    tracing::info!(to = %inv.guest.phone, "the provider reports the guest unsubscribed or blocked the sender; opt-out recorded");
    Ok(())
}

/// Renders the invitation's message with the template version it recorded;
/// Ok(Err) is a permanent failure to record.
async fn render(
    store: &dyn ContentStore,
    lookups: &BatchLookups,
    inv: &Invitation,
    rsvp_page_url: &str,
) -> Result<Result<MessageContent, ErrorInfo>, StoreError> {
    let Some(event) = lookups.event(store, &inv.owner, &inv.event_id).await? else {
        return Ok(Err(EVENT_MISSING.into()));
    };
    let found = match &inv.template {
        Some(reference) => lookups.template(store, &inv.owner, reference).await?,
        // Written before templates were versioned: the built-in default.
        None => Some(render::builtin_default(&inv.owner, &inv.updated_at)),
    };
    let Some(message_template) = found else {
        return Ok(Err(TEMPLATE_MISSING.into()));
    };
    // A retried or re-enqueued invitation meets the send's rule again.
    if !message_template.deliverable_to(&inv.guest.phone) {
        return Ok(Err(MARKETING_TO_US.into()));
    }
    let context = TemplateContext::for_invitation(&event, inv, rsvp_page_url);
    Ok(
        render::render_message(&message_template, &context).map_err(|e| ErrorInfo {
            code: e.error.code().into(),
            message: e.to_string(),
        }),
    )
}

/// The message the sender sends for the invitation's current attempt,
/// exactly (None when it cannot be rendered, so none was sent): what
/// reconciliation compares the provider's messages with. `lookups` keeps
/// the events and template versions read, for the caller's other invitations.
pub async fn content_of(
    store: &dyn ContentStore,
    lookups: &BatchLookups,
    inv: &Invitation,
    rsvp_page_url: &str,
) -> Result<Option<MessageContent>, StoreError> {
    let rendered = render(store, lookups, inv, rsvp_page_url).await?;
    Ok(rendered.ok())
}

#[cfg(test)]
mod tests;
