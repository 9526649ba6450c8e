//! The status rules (DESIGN "Rules that make it correct") applied through a
//! [`Store`]: read the invitation, decide, write conditionally, and re-read
//! if another writer got there first.

use crate::domain::{Invitation, InvitationId, Status};
use crate::ports::{Annotation, ErrorInfo, Store, StoreError, Transition};

/// How many times a conditional write is retried after losing a race.
const MAX_RACES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied {
        from: Status,
    },
    /// The update was for an earlier (or unknown later) attempt.
    OtherAttempt {
        current: u32,
    },
    /// The invitation is already at or past that status.
    NotForward {
        current: Status,
    },
    NotFound,
}

/// A status report about one attempt (a Twilio callback, or the sender's own finding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub invitation_id: InvitationId,
    pub attempt: u32,
    pub status: Status,
    pub at: String,
    pub message_sid: Option<String>,
    pub error: Option<ErrorInfo>,
}

/// Applies a report under the forward-only rule; duplicates and late
/// arrivals change nothing but may fill in a missing timestamp.
pub async fn apply_report(store: &dyn Store, report: &StatusReport) -> Result<Outcome, StoreError> {
    for _ in 0..MAX_RACES {
        let Some(inv) = store.get_invitation(&report.invitation_id).await? else {
            return Ok(Outcome::NotFound);
        };
        if inv.attempt != report.attempt {
            return Ok(Outcome::OtherAttempt {
                current: inv.attempt,
            });
        }
        if !inv.status.can_advance_to(report.status) {
            record_late_facts(store, &inv, report).await?;
            return Ok(Outcome::NotForward {
                current: inv.status,
            });
        }
        let transition = Transition {
            invitation_id: inv.invitation_id.clone(),
            job_id: inv.job_id.clone(),
            attempt: inv.attempt,
            from: inv.status,
            to: report.status,
            at: report.at.clone(),
            new_attempt: None,
            message_sid: report
                .message_sid
                .clone()
                .filter(|_| inv.message_sid.is_none()),
            error: report.error.clone(),
        };
        if store.transition(&transition).await? {
            return Ok(Outcome::Applied { from: inv.status });
        }
    }
    Err(StoreError::Backend(format!(
        "invitation {} kept changing; gave up after {MAX_RACES} tries",
        report.invitation_id
    )))
}

async fn record_late_facts(
    store: &dyn Store,
    inv: &Invitation,
    report: &StatusReport,
) -> Result<(), StoreError> {
    // Only successes are back-filled: a late "failed" after "delivered" is noise.
    let late_timestamp = (matches!(report.status, Status::Sent | Status::Delivered)
        && !inv.timestamps.contains_key(&report.status))
    .then(|| (report.status, report.at.clone()));
    let message_sid = report
        .message_sid
        .clone()
        .filter(|_| inv.message_sid.is_none());
    if late_timestamp.is_none() && message_sid.is_none() {
        return Ok(());
    }
    let note = Annotation {
        message_sid,
        late_timestamp,
        flag: None,
    };
    store
        .annotate(&inv.invitation_id, inv.attempt, &note)
        .await
        .map(|_| ())
}

/// Moves an invitation between two given statuses on its current attempt,
/// ignoring the forward-only rule (the sender releasing its claim, a retry).
/// Ok(None) when the invitation was not in `from` on `attempt`.
pub async fn force(
    store: &dyn Store,
    inv: &Invitation,
    to: Status,
    at: &str,
    new_attempt: Option<u32>,
    error: Option<ErrorInfo>,
) -> Result<bool, StoreError> {
    store
        .transition(&Transition {
            invitation_id: inv.invitation_id.clone(),
            job_id: inv.job_id.clone(),
            attempt: inv.attempt,
            from: inv.status,
            to,
            at: at.to_owned(),
            new_attempt,
            message_sid: None,
            error,
        })
        .await
}

/// The current time as stored: RFC 3339, UTC, millisecond precision.
pub fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC time formats as RFC 3339")
}
