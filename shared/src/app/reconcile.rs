//! Reconciliation: settles what no callback settled, so nothing is
//! stranded and every job finishes (DESIGN.md, "Nothing is stranded").
//!
//! - `queued` for longer than [`Thresholds::queued`]: written but perhaps
//!   never enqueued (an enqueue that failed, a function that timed out
//!   mid-way). Enqueued again; a message that was there after all only
//!   makes a second one, which the sender's claim turns away. Invitations
//!   whose job was never written (their request failed before it was
//!   accepted; a retry of it rewrites them) are left alone and counted.
//! - `sending` for longer than [`Thresholds::sending`]: claimed, and the
//!   send's answer or its callbacks never came. The provider is asked (by
//!   message id when the sender recorded one, else the messages to the
//!   guest since the claim). Only the invitation's own message settles it:
//!   to its guest, since its claim, with exactly the content the sender
//!   sends for it, and no other invitation's (its id recorded on another,
//!   or taken by another in this run); an earlier attempt's message with
//!   the same text went out before the claim, so the newest is its own.
//!   None of its content there means nothing was sent: the claim is
//!   released, as a new attempt, and enqueued. When it cannot tell (a
//!   template whose text the provider renders), it settles nothing and
//!   flags the invitation for the organizer.
//! - `sent` for longer than [`Thresholds::sent`]: the delivery callbacks
//!   never came; the message is fetched by id and its status applied.
//!
//! Whatever is looked at and left as it was is "touched", so it is looked at
//! again only after its threshold. One run at a time: a run that finds
//! another at work does nothing.

use super::deliver::{self, BatchLookups, ContentStore};
use super::lifecycle::{self, StatusReport};
use super::send;
use super::waiting::{self, WaitingStore};
use crate::domain::budget::SenderProfile;
use crate::domain::reason::SEND_UNCONFIRMED;
use crate::domain::{Invitation, JobId, MessageContent, Status, parse_timestamp, timestamp};
use crate::ports::{
    Annotation, IdempotencyClaim, IdempotencyStore, InvitationStore, JobStore, KeyClaim, Messenger,
    ProviderMessage, RsvpStore, SendQueue, StoreError,
};
use std::collections::HashSet;
use std::sync::Mutex;

/// What reconciliation reads and moves (the daily budget: a refusal for
/// its limit pauses it; what an invitation's message is, and which
/// invitations reached a number, to know its own message; the run's lease).
pub trait ReconcileStore:
    WaitingStore + JobStore + ContentStore + RsvpStore + IdempotencyStore
{
}
impl<T: WaitingStore + JobStore + ContentStore + RsvpStore + IdempotencyStore + ?Sized>
    ReconcileStore for T
{
}

/// The run's lease: held while a run is at work, so no two run at once. A
/// run that died leaves it to be taken over once it ends.
const LEASE_OWNER: &str = "system";
const LEASE_KEY: &str = "reconcile-run";
const LEASE_SECONDS: i64 = 4 * 60;
use futures::StreamExt;
use std::time::Duration;
use time::OffsetDateTime;

/// How long an invitation may sit in each in-flight status before it is
/// looked into.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub queued: Duration,
    pub sending: Duration,
    pub sent: Duration,
}

impl Thresholds {
    /// The deployed defaults: past any queue backlog at the configured rate
    /// and the sender's backoff (queued), past the sender's timeout and
    /// Twilio's callbacks (sending), and long after WhatsApp reports
    /// delivery (sent).
    pub const DEPLOYED: Thresholds = Thresholds {
        queued: Duration::from_secs(30 * 60),
        sending: Duration::from_secs(10 * 60),
        sent: Duration::from_secs(6 * 3600),
    };
}

/// Invitations looked at per status per run.
pub const BATCH: usize = 500;
/// Provider reads and store writes in flight at once.
const PARALLELISM: usize = 8;
/// Clocks differ: a message the provider created up to this long before
/// our recorded claim still counts as the claim's.
const CLOCK_SKEW: time::Duration = time::Duration::seconds(60);

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Queued invitations enqueued again.
    pub requeued: usize,
    /// Claimed or sent invitations whose message the provider had: settled
    /// from it.
    pub settled: usize,
    /// Claims with no message at the provider: released and enqueued.
    pub released: usize,
    /// Looked at and still waiting (the provider had no news).
    pub unchanged: usize,
    /// Could not be looked at this time (the provider or the store failed);
    /// the next run tries again.
    pub errors: usize,
    /// Queued invitations whose job was never written: left alone.
    pub orphaned: usize,
    /// Waiting invitations the daily limit's window let go again
    /// ([`super::waiting`]).
    pub unwaited: usize,
    /// Guests reminded by reminder times that came ([`super::remind`]).
    pub reminded: usize,
    /// Chunks of large sends left undone, enqueued again ([`super::admission`]).
    pub readmitted: usize,
}

enum Found {
    Requeued,
    Settled,
    Released,
    Unchanged,
}

pub async fn run(
    store: &dyn ReconcileStore,
    queue: &dyn SendQueue,
    messenger: &dyn Messenger,
    thresholds: Thresholds,
    profile: &SenderProfile,
    rsvp_page_url: &str,
    now: OffsetDateTime,
) -> Result<Report, StoreError> {
    let lease = KeyClaim {
        request_hash: LEASE_KEY.into(),
        token: uuid::Uuid::new_v4().simple().to_string(),
        now: now.unix_timestamp(),
        lease_until: now.unix_timestamp() + LEASE_SECONDS,
    };
    let claimed = store
        .claim_idempotency_key(LEASE_OWNER, LEASE_KEY, &lease)
        .await?;
    if claimed != IdempotencyClaim::New {
        tracing::info!("another reconciliation run is at work; this one does nothing");
        return Ok(Report::default());
    }
    // The messages this run has settled invitations with: one message
    // settles one invitation.
    let taken = Mutex::new(HashSet::new());
    let lookups = BatchLookups::new();
    let run = Run {
        store,
        queue,
        messenger,
        profile,
        rsvp_page_url,
        taken: &taken,
        lookups: &lookups,
        now,
    };
    let ran = reconcile(&run, thresholds).await;
    if let Err(error) = store.release_idempotency_key(LEASE_OWNER, LEASE_KEY).await {
        tracing::warn!(%error, "could not end the run's lease; the next run waits for it to end");
    }
    ran
}

async fn reconcile(run: &Run<'_>, thresholds: Thresholds) -> Result<Report, StoreError> {
    let Run { store, now, .. } = *run;
    let mut report = Report::default();
    for (status, threshold) in [
        (Status::Queued, thresholds.queued),
        (Status::Sending, thresholds.sending),
        (Status::Sent, thresholds.sent),
    ] {
        let before = timestamp(now - threshold);
        let mut stale = store.in_flight_since(status, &before, BATCH).await?;
        if status == Status::Queued {
            let jobs = existing_jobs(store, &stale).await?;
            let before_orphans = stale.len();
            stale.retain(|inv| jobs.contains(&inv.job_id));
            report.orphaned += before_orphans - stale.len();
        }
        // Boxed: a lazy map here trips the spawned task's lifetime inference.
        let settles: Vec<std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>>> = stale
            .iter()
            .map(|inv| Box::pin(settle(run, inv)) as _)
            .collect();
        let results: Vec<Result<Found, String>> = futures::stream::iter(settles)
            .buffer_unordered(PARALLELISM)
            .collect()
            .await;
        for result in results {
            match result {
                Ok(Found::Requeued) => report.requeued += 1,
                Ok(Found::Settled) => report.settled += 1,
                Ok(Found::Released) => report.released += 1,
                Ok(Found::Unchanged) => report.unchanged += 1,
                Err(error) => {
                    report.errors += 1;
                    tracing::warn!(%error, "reconciling an invitation failed; the next run retries it");
                }
            }
        }
    }
    Ok(report)
}

/// The jobs of `invitations` that exist.
async fn existing_jobs(
    store: &dyn ReconcileStore,
    invitations: &[Invitation],
) -> Result<HashSet<JobId>, StoreError> {
    let wanted: HashSet<&JobId> = invitations.iter().map(|i| &i.job_id).collect();
    let mut found = HashSet::new();
    for job_id in wanted {
        if store.get_job(job_id).await?.is_some() {
            found.insert(job_id.clone());
        }
    }
    Ok(found)
}

/// What one run works with.
struct Run<'a> {
    store: &'a dyn ReconcileStore,
    queue: &'a dyn SendQueue,
    messenger: &'a dyn Messenger,
    profile: &'a SenderProfile,
    rsvp_page_url: &'a str,
    taken: &'a Mutex<HashSet<String>>,
    /// Events and template versions read, once per run.
    lookups: &'a BatchLookups,
    now: OffsetDateTime,
}

/// Which of the provider's messages to a number is an invitation's own.
enum Own {
    Found(ProviderMessage),
    /// None of them: nothing was sent for the claim.
    None,
    /// It cannot tell: nothing is settled.
    Unsure(&'static str),
}

async fn settle(run: &Run<'_>, inv: &Invitation) -> Result<Found, String> {
    let Run {
        store,
        queue,
        messenger,
        profile,
        now,
        ..
    } = *run;
    let at = &timestamp(now);
    let found = match inv.status {
        Status::Queued => {
            touch(store, inv, at).await?;
            send::enqueue(queue, std::slice::from_ref(inv)).await;
            return Ok(Found::Requeued);
        }
        Status::Sending => match &inv.message_sid {
            Some(sid) => messenger.fetch(sid).await,
            None => {
                let claimed = inv
                    .timestamps
                    .get(&Status::Sending)
                    .and_then(|t| parse_timestamp(t))
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                let since = timestamp(claimed - CLOCK_SKEW);
                let listed = messenger
                    .sent_to(&inv.guest.phone, &since)
                    .await
                    .map_err(|e| e.to_string())?;
                match own_message(run, inv, listed).await? {
                    Own::Found(message) => Ok(Some(message)),
                    Own::None => Ok(None),
                    Own::Unsure(why) => {
                        tracing::warn!(invitation_id = %inv.invitation_id, attempt = inv.attempt, why, "cannot tell which message is the invitation's; flagged, not settled");
                        flag(store, inv, at).await?;
                        return Ok(Found::Unchanged);
                    }
                }
            }
        },
        Status::Sent => match &inv.message_sid {
            Some(sid) => messenger.fetch(sid).await,
            None => Ok(None),
        },
        _ => return Ok(Found::Unchanged),
    }
    .map_err(|e| e.to_string())?;
    match found {
        Some(message) if message.over_daily_limit => {
            // Refused for WhatsApp's daily limit: it waits, as the webhook
            // would have had it, and sending pauses.
            waiting::refused_for_limit(store, &inv.invitation_id, inv.attempt, profile, now)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Found::Settled)
        }
        Some(message) => apply(store, inv, message, at).await,
        None if inv.status == Status::Sending && inv.message_sid.is_none() => {
            // Nothing reached the provider: the claim goes back and is sent.
            let released = lifecycle::release(store, inv, at)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(attempt) = released {
                let released = Invitation {
                    status: Status::Queued,
                    attempt,
                    ..inv.clone()
                };
                send::enqueue(queue, std::slice::from_ref(&released)).await;
                tracing::info!(invitation_id = %inv.invitation_id, attempt, "claim released as a new attempt: no message at the provider");
                return Ok(Found::Released);
            }
            Ok(Found::Unchanged)
        }
        None => {
            touch(store, inv, at).await?;
            Ok(Found::Unchanged)
        }
    }
}

/// Applies what the provider says of the invitation's message.
async fn apply(
    store: &dyn InvitationStore,
    inv: &Invitation,
    message: ProviderMessage,
    at: &str,
) -> Result<Found, String> {
    let moves_on = message.status.is_some_and(|s| inv.status.can_advance_to(s));
    let Some(status) = message.status.filter(|_| moves_on) else {
        // Known to the provider, no further yet: keep its id, look later.
        let note = Annotation {
            message_sid: Some(message.sid),
            touched_at: Some(at.to_owned()),
            ..Default::default()
        };
        store
            .annotate(&inv.invitation_id, inv.attempt, &note)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(Found::Unchanged);
    };
    let report = StatusReport {
        invitation_id: inv.invitation_id.clone(),
        job_id: Some(inv.job_id.clone()),
        attempt: inv.attempt,
        status,
        at: at.to_owned(),
        message_sid: Some(message.sid),
        error: message.error,
    };
    lifecycle::apply_report(store, &report)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(invitation_id = %inv.invitation_id, attempt = inv.attempt, from = %inv.status, to = %status, "settled from the provider's record");
    Ok(Found::Settled)
}

/// The invitation's own message among those the provider sent its guest
/// since the claim (`listed`).
async fn own_message(
    run: &Run<'_>,
    inv: &Invitation,
    listed: Vec<ProviderMessage>,
) -> Result<Own, String> {
    // Messages other invitations to the number recorded as theirs.
    let others: HashSet<String> = run
        .store
        .invitations_to(&inv.guest.phone, 20)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|i| i.invitation_id != inv.invitation_id)
        .filter_map(|i| i.message_sid)
        .collect();
    let free: Vec<ProviderMessage> = listed
        .into_iter()
        .filter(|m| !others.contains(&m.sid))
        .collect();
    if free.is_empty() {
        return Ok(Own::None);
    }
    let content = deliver::content_of(run.store, run.lookups, inv, run.rsvp_page_url)
        .await
        .map_err(|e| e.to_string())?;
    let text = match content {
        Some(MessageContent::Body(text)) => text,
        Some(MessageContent::Template { .. }) => {
            return Ok(Own::Unsure(
                "the provider renders the template: its text cannot be compared",
            ));
        }
        None => return Ok(Own::Unsure("the invitation's message no longer renders")),
    };
    // One message per attempt, and an earlier attempt's went out before this
    // claim: the newest with its text is the attempt's own (the provider
    // lists newest first).
    let Some(newest) = free
        .into_iter()
        .find(|m| m.body.as_deref() == Some(text.as_str()))
    else {
        return Ok(Own::None);
    };
    let first = run
        .taken
        .lock()
        .expect("taken lock")
        .insert(newest.sid.clone());
    if first {
        Ok(Own::Found(newest))
    } else {
        Ok(Own::Unsure("its message settled another invitation"))
    }
}

/// Leaves the attempt flagged for the organizer, who decides.
async fn flag(store: &dyn InvitationStore, inv: &Invitation, at: &str) -> Result<(), String> {
    let note = Annotation {
        flag: Some(SEND_UNCONFIRMED.into()),
        touched_at: Some(at.to_owned()),
        ..Default::default()
    };
    store
        .annotate(&inv.invitation_id, inv.attempt, &note)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn touch(store: &dyn InvitationStore, inv: &Invitation, at: &str) -> Result<(), String> {
    let note = Annotation {
        touched_at: Some(at.to_owned()),
        ..Default::default()
    };
    store
        .annotate(&inv.invitation_id, inv.attempt, &note)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
