//! The scheduled run (EventBridge, every few minutes): queues again the
//! invitations the daily limit's window frees ([`super::waiting`]), settles
//! the invitations no callback settled and re-queues those no message
//! carries ([`super::reconcile`]), enqueues again the chunks of large
//! sends left undone as long ([`super::admission`]), then sends the
//! reminders whose time has come ([`super::remind`]). A failure of one part is logged and leaves its
//! work for the next run; the others go on.

use super::admission;
use super::reconcile::{self, ReconcileStore, Report, Thresholds};
use super::remind::{self, RemindStore};
use super::waiting;
use crate::domain::budget::SenderProfile;
use crate::ports::{
    AdmissionQueue, AdmissionStore, Messenger, ReminderStore, SendQueue, StoreError,
};
use std::sync::Arc;

/// What a scheduled run reads and writes: reconciliation's store, and
/// what reminders need.
pub trait ScheduledStore: ReconcileStore + RemindStore + ReminderStore + AdmissionStore {}
impl<T: ReconcileStore + RemindStore + ReminderStore + AdmissionStore + ?Sized> ScheduledStore
    for T
{
}

pub struct Deps {
    pub store: Arc<dyn ScheduledStore>,
    pub queue: Arc<dyn SendQueue>,
    /// Where a large send's undone chunks are enqueued again.
    pub admissions: Arc<dyn AdmissionQueue>,
    pub messenger: Arc<dyn Messenger>,
    pub thresholds: Thresholds,
    pub profile: SenderProfile,
    /// The stack's RSVP page: an invitation's message links to it, so
    /// reconciliation renders it to know the invitation's own message.
    pub rsvp_page_url: String,
}

/// One run at `now`. A store failure of reconciliation ends the run early
/// (the next run starts over); a failure on one invitation is counted and
/// the others go on.
pub async fn run(deps: &Deps, now: time::OffsetDateTime) -> Result<Report, StoreError> {
    // A failure here leaves the waiting for the next run; the rest goes on.
    let unwaited = waiting::release(deps.store.as_ref(), deps.queue.as_ref(), &deps.profile, now)
        .await
        .inspect_err(|error| tracing::error!(%error, "queuing waiting invitations failed; the next run tries again"))
        .unwrap_or(0);
    let mut report = reconcile::run(
        deps.store.as_ref(),
        deps.queue.as_ref(),
        deps.messenger.as_ref(),
        deps.thresholds,
        &deps.profile,
        &deps.rsvp_page_url,
        now,
    )
    .await
    .inspect_err(|error| tracing::error!(%error, "reconciliation stopped"))?;
    report.unwaited = unwaited;
    // A chunk undone as long as a queued invitation may wait: its message
    // was lost or went to the dead-letter queue.
    let before = crate::domain::timestamp(now - deps.thresholds.queued);
    match admission::requeue_stalled(deps.store.as_ref(), deps.admissions.as_ref(), &before).await {
        Ok(chunks) => report.readmitted = chunks,
        Err(error) => {
            tracing::error!(%error, "enqueueing undone chunks failed; the next run tries again")
        }
    }
    // Reminders after reconciliation: a failure leaves them for the next run.
    let store = deps.store.as_ref();
    match remind::run_due(store, store, deps.queue.as_ref(), now).await {
        Ok(reminders) => report.reminded = reminders.reminded,
        Err(error) => tracing::error!(%error, "reminders stopped; the next run tries again"),
    }
    let moved = report.requeued + report.settled + report.released;
    if moved + report.unchanged + report.errors + report.orphaned > 0 {
        tracing::warn!(
            orphaned = report.orphaned,
            requeued = report.requeued,
            settled = report.settled,
            released = report.released,
            still_stuck = report.unchanged + report.errors,
            "reconciliation found invitations no callback or message had moved on"
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemoryMessenger, MemoryQueue, MemoryStore};
    use crate::app::fixtures::queued_job;
    use crate::domain::budget::{DAY_SECONDS, DailyLimit};
    use std::time::Duration;

    fn deps(store: MemoryStore, queue: Arc<MemoryQueue>) -> Deps {
        Deps {
            store: Arc::new(store),
            admissions: queue.clone(),
            queue,
            messenger: Arc::new(MemoryMessenger::new()),
            thresholds: Thresholds {
                queued: Duration::from_secs(60),
                sending: Duration::from_secs(60),
                sent: Duration::from_secs(60),
            },
            profile: SenderProfile {
                rate_per_second: 10,
                daily_limit: DailyLimit::Limited(250),
                window_seconds: DAY_SECONDS,
            },
            rsvp_page_url: "https://api.example.com/r/".into(),
        }
    }

    #[tokio::test]
    async fn given_invitations_no_message_moved_when_the_run_comes_then_they_are_queued_again() {
        let (store, queue, invitations) = queued_job(2, "2026-01-01T00:00:00.000Z").await;
        let queue = Arc::new(queue);
        let deps = deps(store, queue.clone());
        let report = run(&deps, time::OffsetDateTime::now_utc()).await.unwrap();
        assert_eq!(report.requeued, 2);
        assert_eq!((report.errors, report.reminded, report.unwaited), (0, 0, 0));
        let queued: Vec<_> = queue
            .messages()
            .into_iter()
            .map(|m| m.invitation_id)
            .collect();
        assert!(
            invitations
                .iter()
                .all(|i| queued.contains(&i.invitation_id))
        );
    }

    #[tokio::test]
    async fn given_nothing_in_flight_then_the_run_does_nothing() {
        let queue = Arc::new(MemoryQueue::new());
        let deps = deps(MemoryStore::new(), queue.clone());
        let report = run(&deps, time::OffsetDateTime::now_utc()).await.unwrap();
        assert_eq!(report, Report::default());
        assert!(queue.messages().is_empty());
    }
}
