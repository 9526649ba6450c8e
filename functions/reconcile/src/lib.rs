//! `reconcile`: run on a schedule (EventBridge), queues again the
//! invitations the daily limit's window frees ([`shared::app::waiting`]),
//! settles the invitations no callback settled and re-queues those no
//! message carries ([`shared::app::reconcile`]), sends the reminders whose
//! time has come ([`shared::app::remind`]), then logs and counts what it did.

use shared::app::reconcile::{self, ReconcileStore, Report, Thresholds};
use shared::app::remind::{self, RemindStore};
use shared::app::waiting;
use shared::domain::budget::SenderProfile;
use shared::edge::metrics;
use shared::ports::ReminderStore;
use shared::ports::{Messenger, SendQueue};
use std::sync::Arc;

/// What a scheduled run reads and writes: reconciliation's store, and
/// what reminders need.
pub trait ScheduledStore: ReconcileStore + RemindStore + ReminderStore {}
impl<T: ReconcileStore + RemindStore + ReminderStore + ?Sized> ScheduledStore for T {}

pub struct Deps {
    pub store: Arc<dyn ScheduledStore>,
    pub queue: Arc<dyn SendQueue>,
    pub messenger: Arc<dyn Messenger>,
    pub thresholds: Thresholds,
    pub profile: SenderProfile,
}

/// One run. A store failure ends the run early (the next run starts over);
/// a failure on one invitation is counted and the others go on.
pub async fn handle(deps: &Deps) -> Result<Report, shared::ports::StoreError> {
    let now = time::OffsetDateTime::now_utc();
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
        now,
    )
    .await
    .inspect_err(|error| tracing::error!(%error, "reconciliation stopped"))?;
    report.unwaited = unwaited;
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
    metrics::counts(&[
        (metrics::RECONCILED_REQUEUED, report.requeued as u64),
        (metrics::RECONCILED_SETTLED, report.settled as u64),
        (metrics::RECONCILED_RELEASED, report.released as u64),
        (
            metrics::STILL_STUCK,
            (report.unchanged + report.errors) as u64,
        ),
    ]);
    Ok(report)
}
