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
//!   or taken by another in this run). None of its content there means
//!   nothing was sent: the claim is released, as a new attempt, and
//!   enqueued. When it cannot tell (two such messages, or a template whose
//!   text the provider renders), it settles nothing and flags the
//!   invitation for the organizer.
//! - `sent` for longer than [`Thresholds::sent`]: the delivery callbacks
//!   never came; the message is fetched by id and its status applied.
//!
//! Whatever is looked at and left as it was is "touched", so it is looked at
//! again only after its threshold. One run at a time: a run that finds
//! another at work does nothing.

use super::deliver::{self, ContentStore};
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
    let ran = reconcile(
        store,
        queue,
        messenger,
        thresholds,
        profile,
        rsvp_page_url,
        now,
    )
    .await;
    if let Err(error) = store.release_idempotency_key(LEASE_OWNER, LEASE_KEY).await {
        tracing::warn!(%error, "could not end the run's lease; the next run waits for it to end");
    }
    ran
}

async fn reconcile(
    store: &dyn ReconcileStore,
    queue: &dyn SendQueue,
    messenger: &dyn Messenger,
    thresholds: Thresholds,
    profile: &SenderProfile,
    rsvp_page_url: &str,
    now: OffsetDateTime,
) -> Result<Report, StoreError> {
    let mut report = Report::default();
    // The messages this run has settled invitations with: one message
    // settles one invitation.
    let taken = Mutex::new(HashSet::new());
    let run = Run {
        store,
        queue,
        messenger,
        profile,
        rsvp_page_url,
        taken: &taken,
        now,
    };
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
            .map(|inv| Box::pin(settle(&run, inv)) as _)
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
    let content = deliver::content_of(run.store, inv, run.rsvp_page_url)
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
    let mut same: Vec<ProviderMessage> = free
        .into_iter()
        .filter(|m| m.body.as_deref() == Some(text.as_str()))
        .collect();
    match same.len() {
        0 => Ok(Own::None),
        1 => {
            let message = same.remove(0);
            let first = run
                .taken
                .lock()
                .expect("taken lock")
                .insert(message.sid.clone());
            if first {
                Ok(Own::Found(message))
            } else {
                Ok(Own::Unsure("its message settled another invitation"))
            }
        }
        _ => Ok(Own::Unsure("more than one message with its content")),
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
mod tests {
    use super::*;
    use crate::app::fixtures::{OWNER, guest, with_event};
    use crate::app::lifecycle::force;
    use crate::domain::{Job, PhoneNumber, now};
    use crate::ports::{ErrorInfo, OutboundMessage, ProviderError};
    use async_trait::async_trait;
    use std::sync::Mutex;

    /// What the provider has: messages by recipient and id.
    #[derive(Default)]
    struct Provider {
        messages: Mutex<Vec<(PhoneNumber, ProviderMessage)>>,
    }

    impl Provider {
        fn has(&self, to: &PhoneNumber, sid: &str, status: Status, body: Option<String>) {
            self.messages.lock().unwrap().push((
                to.clone(),
                ProviderMessage {
                    sid: sid.into(),
                    status: Some(status),
                    error: None::<ErrorInfo>,
                    body,
                    over_daily_limit: false,
                    created_at: now(),
                },
            ));
        }
    }

    /// The text the sender sends for the invitation.
    async fn body(store: &dyn ReconcileStore, inv: &Invitation) -> Option<String> {
        match deliver::content_of(store, inv, PAGE).await.unwrap() {
            Some(MessageContent::Body(text)) => Some(text),
            _ => None,
        }
    }

    #[async_trait]
    impl Messenger for Provider {
        async fn send(&self, _: &OutboundMessage) -> Result<String, ProviderError> {
            unreachable!("reconciliation never sends")
        }
        async fn sent_to(
            &self,
            to: &PhoneNumber,
            _since: &str,
        ) -> Result<Vec<ProviderMessage>, ProviderError> {
            let all = self.messages.lock().unwrap();
            Ok(all
                .iter()
                .filter(|(t, _)| t == to)
                .map(|(_, m)| m.clone())
                .collect())
        }
        async fn fetch(&self, sid: &str) -> Result<Option<ProviderMessage>, ProviderError> {
            let all = self.messages.lock().unwrap();
            Ok(all
                .iter()
                .find(|(_, m)| m.sid == sid)
                .map(|(_, m)| m.clone()))
        }
    }

    const PAGE: &str = "https://api.example.com/r/";

    const NONE: Thresholds = Thresholds {
        queued: Duration::ZERO,
        sending: Duration::ZERO,
        sent: Duration::ZERO,
    };

    const PROFILE: SenderProfile = SenderProfile {
        rate_per_second: 80,
        daily_limit: crate::domain::budget::DailyLimit::Unlimited,
        window_seconds: crate::domain::budget::DAY_SECONDS,
    };

    /// Four invitations of one job, one per guest, all `queued`.
    async fn job_of_four() -> (
        crate::adapters::memory::MemoryStore,
        crate::adapters::memory::MemoryQueue,
        Vec<Invitation>,
    ) {
        crate::app::fixtures::queued_job(4, &now()).await
    }

    async fn claim(store: &dyn InvitationStore, inv: &Invitation) -> Invitation {
        assert!(
            force(store, inv, Status::Sending, &now(), None, None)
                .await
                .unwrap()
        );
        store
            .get_invitation(&inv.invitation_id)
            .await
            .unwrap()
            .unwrap()
    }

    async fn status(store: &dyn InvitationStore, inv: &Invitation) -> Status {
        store
            .get_invitation(&inv.invitation_id)
            .await
            .unwrap()
            .unwrap()
            .status
    }

    #[tokio::test]
    async fn a_send_twilio_refused_for_the_daily_limit_waits_instead_of_failing() {
        let (store, queue, invs) = job_of_four().await;
        let provider = Provider::default();
        let claimed = claim(&store, &invs[0]).await;
        let own = body(&store, &claimed).await;
        provider.messages.lock().unwrap().push((
            claimed.guest.phone.clone(),
            ProviderMessage {
                sid: "SM1".into(),
                status: Some(Status::Failed),
                error: Some(ErrorInfo {
                    code: "63018".into(),
                    message: "over the limit".into(),
                }),
                body: own,
                over_daily_limit: true,
                created_at: now(),
            },
        ));
        let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
        run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later)
            .await
            .unwrap();
        let inv = store
            .get_invitation(&claimed.invitation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((inv.status, inv.attempt), (Status::Waiting, 2));
    }

    #[tokio::test]
    async fn each_stale_state_is_settled_its_own_way() {
        let (store, queue, invs) = job_of_four().await;
        let provider = Provider::default();
        // 0: queued with no message. 1: claimed, the provider has its message
        // (delivered). 2: claimed, nothing reached the provider. 3: sent, the
        // provider says read.
        let claimed_sent = claim(&store, &invs[1]).await;
        let own = body(&store, &claimed_sent).await;
        provider.has(&claimed_sent.guest.phone, "SM1", Status::Delivered, own);
        let claimed_lost = claim(&store, &invs[2]).await;
        let sent = claim(&store, &invs[3]).await;
        assert!(
            force(&store, &sent, Status::Sent, &now(), None, None)
                .await
                .unwrap()
        );
        let note = Annotation {
            message_sid: Some("SM3".into()),
            ..Default::default()
        };
        store.annotate(&sent.invitation_id, 1, &note).await.unwrap();
        provider.has(&sent.guest.phone, "SM3", Status::Read, None);

        let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
        let report = run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later)
            .await
            .unwrap();
        assert_eq!(
            (
                report.requeued,
                report.settled,
                report.released,
                report.unchanged,
                report.errors
            ),
            (1, 2, 1, 0, 0),
            "{report:?}"
        );
        assert_eq!(status(&store, &invs[0]).await, Status::Queued);
        assert_eq!(status(&store, &invs[1]).await, Status::Delivered);
        assert_eq!(
            status(&store, &claimed_lost).await,
            Status::Queued,
            "released"
        );
        assert_eq!(status(&store, &invs[3]).await, Status::Read);
        let queued: HashSet<_> = queue
            .messages()
            .into_iter()
            .map(|m| m.invitation_id)
            .collect();
        let expected: HashSet<_> = [&invs[0], &invs[2]].map(|i| i.invitation_id.clone()).into();
        assert_eq!(
            queued, expected,
            "the queued one and the released one are enqueued"
        );
        let job = store.get_job(&invs[0].job_id).await.unwrap().unwrap();
        assert_eq!(
            (
                job.count(Status::Queued),
                job.count(Status::Delivered),
                job.count(Status::Read)
            ),
            (2, 1, 1),
            "counters follow"
        );
    }

    #[tokio::test]
    async fn nothing_younger_than_its_threshold_is_touched() {
        let (store, queue, invs) = job_of_four().await;
        claim(&store, &invs[0]).await;
        let report = run(
            &store,
            &queue,
            &Provider::default(),
            Thresholds::DEPLOYED,
            &PROFILE,
            PAGE,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
        assert_eq!(report, Report::default());
        assert!(queue.messages().is_empty());
    }

    #[tokio::test]
    async fn invitations_whose_job_was_never_written_are_left_alone() {
        let (store, queue, event) = with_event().await;
        let orphan = Invitation::new_queued(
            event.event_id.clone(),
            JobId::generate(),
            OWNER,
            guest(1),
            None,
            &now(),
        );
        // Written as a failed request leaves them: invitations, no job item.
        let job = Job::of(
            orphan.job_id.clone(),
            event.event_id.clone(),
            OWNER,
            std::slice::from_ref(&orphan),
            &now(),
        );
        store
            .create_job(&job, std::slice::from_ref(&orphan))
            .await
            .unwrap();
        store.forget_job(&orphan.job_id);
        let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
        let report = run(
            &store,
            &queue,
            &Provider::default(),
            NONE,
            &PROFILE,
            PAGE,
            later,
        )
        .await
        .unwrap();
        assert_eq!((report.orphaned, report.requeued), (1, 0));
        assert!(queue.messages().is_empty());
    }

    /// An invitation claimed (no message id) a second ago.
    async fn claimed_one() -> (
        crate::adapters::memory::MemoryStore,
        crate::adapters::memory::MemoryQueue,
        Invitation,
    ) {
        let (store, queue, invs) = job_of_four().await;
        let claimed = claim(&store, &invs[0]).await;
        (store, queue, claimed)
    }

    async fn now_of(store: &dyn InvitationStore, inv: &Invitation) -> Invitation {
        store
            .get_invitation(&inv.invitation_id)
            .await
            .unwrap()
            .unwrap()
    }

    fn later() -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(1)
    }

    #[tokio::test]
    async fn given_another_message_to_the_same_number_then_the_claim_is_not_settled_with_it() {
        let (store, queue, claimed) = claimed_one().await;
        let provider = Provider::default();
        // Since the claim the guest got another organizer's invitation (or a
        // confirmation), and it was read: it is not this invitation's.
        let other = Some("Another event: see you there".to_owned());
        provider.has(&claimed.guest.phone, "SM9", Status::Read, other);
        let report = run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
            .await
            .unwrap();
        assert_eq!((report.settled, report.released), (0, 1), "{report:?}");
        let inv = now_of(&store, &claimed).await;
        // Released as a new attempt, and enqueued as such.
        assert_eq!((inv.status, inv.attempt), (Status::Queued, 2));
        assert_eq!(inv.message_sid, None);
        let sent = queue.messages();
        assert_eq!(sent.last().map(|m| m.attempt), Some(2));
    }

    #[tokio::test]
    async fn given_a_message_another_invitation_recorded_then_it_is_not_adopted() {
        let (store, queue, invs) = job_of_four().await;
        let claimed = claim(&store, &invs[0]).await;
        let own = body(&store, &claimed).await;
        // The same guest's earlier invitation holds SM1 as its own.
        let (_, _, earlier) = crate::app::fixtures::queued_job(1, &now()).await;
        let mut holder = earlier[0].clone();
        holder.guest = claimed.guest.clone();
        holder.invitation_id = crate::domain::InvitationId::generate();
        let job = Job::of(
            holder.job_id.clone(),
            holder.event_id.clone(),
            OWNER,
            std::slice::from_ref(&holder),
            &now(),
        );
        store
            .create_job(&job, std::slice::from_ref(&holder))
            .await
            .unwrap();
        let note = Annotation {
            message_sid: Some("SM1".into()),
            ..Default::default()
        };
        store
            .annotate(&holder.invitation_id, holder.attempt, &note)
            .await
            .unwrap();
        let provider = Provider::default();
        provider.has(&claimed.guest.phone, "SM1", Status::Delivered, own);
        run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
            .await
            .unwrap();
        let inv = now_of(&store, &claimed).await;
        assert_ne!(inv.message_sid.as_deref(), Some("SM1"));
        assert_ne!(inv.status, Status::Delivered);
    }

    #[tokio::test]
    async fn given_two_messages_with_its_content_then_it_is_flagged_not_settled() {
        let (store, queue, claimed) = claimed_one().await;
        let own = body(&store, &claimed).await;
        let provider = Provider::default();
        provider.has(&claimed.guest.phone, "SM1", Status::Delivered, own.clone());
        provider.has(&claimed.guest.phone, "SM2", Status::Read, own);
        let report = run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
            .await
            .unwrap();
        assert_eq!(
            (report.settled, report.released, report.unchanged),
            (0, 0, 1)
        );
        let inv = now_of(&store, &claimed).await;
        assert_eq!((inv.status, inv.attempt), (Status::Sending, 1));
        assert_eq!(inv.flag.as_deref(), Some(SEND_UNCONFIRMED));
    }

    #[tokio::test]
    async fn given_its_own_message_then_the_claim_is_settled_with_it_once() {
        let (store, queue, claimed) = claimed_one().await;
        let own = body(&store, &claimed).await;
        let provider = Provider::default();
        provider.has(&claimed.guest.phone, "SM7", Status::Delivered, own);
        provider.has(
            &claimed.guest.phone,
            "SM8",
            Status::Read,
            Some("Thanks!".into()),
        );
        run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
            .await
            .unwrap();
        let inv = now_of(&store, &claimed).await;
        assert_eq!(inv.status, Status::Delivered);
        assert_eq!(inv.message_sid.as_deref(), Some("SM7"));
    }

    #[tokio::test]
    async fn a_stale_release_frees_no_fresh_claim() {
        let (store, _queue, claimed) = claimed_one().await;
        // One run releases the claim (a new attempt) and the sender claims it again.
        assert_eq!(
            lifecycle::release(&store, &claimed, &now()).await.unwrap(),
            Some(2)
        );
        let queued = now_of(&store, &claimed).await;
        let fresh = claim(&store, &queued).await;
        assert_eq!((fresh.status, fresh.attempt), (Status::Sending, 2));
        // A second run, which read the first claim, releases it late: nothing moves.
        assert_eq!(
            lifecycle::release(&store, &claimed, &now()).await.unwrap(),
            None
        );
        let inv = now_of(&store, &claimed).await;
        assert_eq!((inv.status, inv.attempt), (Status::Sending, 2));
    }

    #[tokio::test]
    async fn one_run_at_a_time() {
        let (store, queue, claimed) = claimed_one().await;
        // Another run holds the lease.
        let held = KeyClaim {
            request_hash: LEASE_KEY.into(),
            token: "other".into(),
            now: OffsetDateTime::now_utc().unix_timestamp(),
            lease_until: OffsetDateTime::now_utc().unix_timestamp() + LEASE_SECONDS,
        };
        let claimed_lease = store
            .claim_idempotency_key(LEASE_OWNER, LEASE_KEY, &held)
            .await
            .unwrap();
        assert_eq!(claimed_lease, IdempotencyClaim::New);
        let provider = Provider::default();
        let report = run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
            .await
            .unwrap();
        assert_eq!(report, Report::default());
        assert_eq!(now_of(&store, &claimed).await.status, Status::Sending);
        // Once it ended, the next run does the work.
        store
            .release_idempotency_key(LEASE_OWNER, LEASE_KEY)
            .await
            .unwrap();
        let report = run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
            .await
            .unwrap();
        assert_eq!(report.released, 1);
    }

    #[tokio::test]
    async fn given_a_template_the_provider_renders_then_a_message_there_flags_instead_of_settling()
    {
        let (store, queue, invs) = job_of_four().await;
        let input: crate::domain::TemplateInput = serde_json::from_value(serde_json::json!({
            "template_id": "ct",
            "name": "Content",
            "content_sid": "HX0123456789abcdef0123456789abcdef",
            "content_variables": {"1": "{guest_name}"},
            "category": "utility",
        }))
        .unwrap();
        let template = crate::app::templates::library::create(&store, OWNER, input)
            .await
            .unwrap();
        // Written with the Content template (as a send that chose it would).
        let mut inv = invs[0].clone();
        inv.invitation_id = crate::domain::InvitationId::generate();
        inv.template = Some(crate::domain::TemplateRef {
            template_id: template.template_id.clone(),
            version: template.version,
        });
        let job = Job::of(
            inv.job_id.clone(),
            inv.event_id.clone(),
            OWNER,
            std::slice::from_ref(&inv),
            &now(),
        );
        store
            .create_job(&job, std::slice::from_ref(&inv))
            .await
            .unwrap();
        let claimed = claim(&store, &inv).await;
        let provider = Provider::default();
        provider.has(
            &claimed.guest.phone,
            "SM1",
            Status::Read,
            Some("Hi Guest 1".into()),
        );
        run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
            .await
            .unwrap();
        let now = now_of(&store, &claimed).await;
        assert_eq!((now.status, now.attempt), (Status::Sending, 1));
        assert_eq!(now.flag.as_deref(), Some(SEND_UNCONFIRMED));
        assert_eq!(now.message_sid, None);
    }
}
