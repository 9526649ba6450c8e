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
//!   guest since the claim): a message found settles the invitation; none
//!   found means nothing was sent, and the claim is released and enqueued.
//! - `sent` for longer than [`Thresholds::sent`]: the delivery callbacks
//!   never came; the message is fetched by id and its status applied.
//!
//! Whatever is looked at and left as it was is "touched", so it is looked at
//! again only after its threshold.

use super::lifecycle::{self, StatusReport};
use super::send;
use super::waiting::{self, WaitingStore};
use crate::domain::JobId;
use crate::domain::budget::SenderProfile;
use crate::domain::{Invitation, Status, parse_timestamp, timestamp};
use crate::ports::{
    Annotation, InvitationStore, JobStore, Messenger, ProviderMessage, SendQueue, StoreError,
};
use std::collections::HashSet;

/// What reconciliation reads and moves (the daily budget: a refusal for
/// its limit pauses it).
pub trait ReconcileStore: WaitingStore + JobStore {}
impl<T: WaitingStore + JobStore + ?Sized> ReconcileStore for T {}
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
    now: OffsetDateTime,
) -> Result<Report, StoreError> {
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
            .map(|inv| Box::pin(settle(store, queue, messenger, profile, inv, now)) as _)
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

async fn settle(
    store: &dyn ReconcileStore,
    queue: &dyn SendQueue,
    messenger: &dyn Messenger,
    profile: &SenderProfile,
    inv: &Invitation,
    now: OffsetDateTime,
) -> Result<Found, String> {
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
                // Newest first: the claim's message is the oldest since it.
                messenger
                    .sent_to(&inv.guest.phone, &since)
                    .await
                    .map(|found| found.into_iter().next_back())
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
            if lifecycle::release(store, inv, at)
                .await
                .map_err(|e| e.to_string())?
            {
                let released = Invitation {
                    status: Status::Queued,
                    ..inv.clone()
                };
                send::enqueue(queue, std::slice::from_ref(&released)).await;
                tracing::info!(invitation_id = %inv.invitation_id, attempt = inv.attempt, "claim released: no message at the provider");
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
        fn has(&self, to: &PhoneNumber, sid: &str, status: Status) {
            self.messages.lock().unwrap().push((
                to.clone(),
                ProviderMessage {
                    sid: sid.into(),
                    status: Some(status),
                    error: None::<ErrorInfo>,
                    over_daily_limit: false,
                    created_at: now(),
                },
            ));
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
        provider.messages.lock().unwrap().push((
            claimed.guest.phone.clone(),
            ProviderMessage {
                sid: "SM1".into(),
                status: Some(Status::Failed),
                error: Some(ErrorInfo {
                    code: "63018".into(),
                    message: "over the limit".into(),
                }),
                over_daily_limit: true,
                created_at: now(),
            },
        ));
        let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
        run(&store, &queue, &provider, NONE, &PROFILE, later)
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
        provider.has(&claimed_sent.guest.phone, "SM1", Status::Delivered);
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
        provider.has(&sent.guest.phone, "SM3", Status::Read);

        let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
        let report = run(&store, &queue, &provider, NONE, &PROFILE, later)
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
        let report = run(&store, &queue, &Provider::default(), NONE, &PROFILE, later)
            .await
            .unwrap();
        assert_eq!((report.orphaned, report.requeued), (1, 0));
        assert!(queue.messages().is_empty());
    }
}
