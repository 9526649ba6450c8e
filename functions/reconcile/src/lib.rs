//! `reconcile`: run on a schedule (EventBridge); the run is
//! [`shared::app::scheduled`]'s. This counts what it did as metrics.

use shared::app::reconcile::Report;
use shared::edge::metrics;

pub use shared::app::scheduled::{Deps, ScheduledStore};

/// One run. A store failure ends the run early (the next run starts over);
/// a failure on one invitation is counted and the others go on.
pub async fn handle(deps: &Deps) -> Result<Report, shared::ports::StoreError> {
    let report = shared::app::scheduled::run(deps, time::OffsetDateTime::now_utc()).await?;
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
