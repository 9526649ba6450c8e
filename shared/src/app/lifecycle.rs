//! Status changes: the forward-only rule (queued < sending < sent <
//! failed/undelivered < delivered < read) and one attempt at a time,
//! applied through an [`InvitationStore`]: read the invitation, decide,
//! write conditionally, and re-read if another writer got there first.

use crate::domain::{Invitation, InvitationId, JobId, Status};
use crate::ports::{Annotation, ErrorInfo, InvitationStore, StoreError, Transition};

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
    /// The invitation's job, when the report knows it (a callback URL says
    /// it): the status can then move without reading the invitation first.
    pub job_id: Option<JobId>,
    pub attempt: u32,
    pub status: Status,
    pub at: String,
    pub message_sid: Option<String>,
    pub error: Option<ErrorInfo>,
}

/// Applies a report under the forward-only rule; duplicates and late
/// arrivals change nothing but may fill in a missing timestamp.
pub async fn apply_report(
    store: &dyn InvitationStore,
    report: &StatusReport,
) -> Result<Outcome, StoreError> {
    // Most reports move the status on from the one before it in the usual
    // order: try that move without a read. Anything else (a late,
    // duplicate or reordered report) is read and decided below.
    if let (Some(job_id), Some(from)) = (&report.job_id, report.status.usual_predecessor()) {
        let predicted = Transition {
            invitation_id: report.invitation_id.clone(),
            job_id: job_id.clone(),
            attempt: report.attempt,
            from,
            to: report.status,
            at: report.at.clone(),
            new_attempt: None,
            message_sid: report.message_sid.clone(),
            error: report.error.clone(),
            clear_flag: true,
            due_at: None,
            renew: None,
        };
        if store.transition(&predicted).await? {
            return Ok(Outcome::Applied { from });
        }
    }
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
            clear_flag: inv.flag.is_some(),
            due_at: None,
            renew: None,
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
    store: &dyn InvitationStore,
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
        touched_at: None,
    };
    store
        .annotate(&inv.invitation_id, inv.attempt, &note)
        .await
        .map(|_| ())
}

/// Moves an invitation between two given statuses on its current attempt,
/// ignoring the forward-only rule (the sender releasing its claim, a retry).
/// Ok(false) when the invitation was no longer at its status on its attempt.
pub async fn force(
    store: &dyn InvitationStore,
    inv: &Invitation,
    to: Status,
    at: &str,
    new_attempt: Option<u32>,
    error: Option<ErrorInfo>,
) -> Result<bool, StoreError> {
    let mut t = forced(inv, to, at);
    t.new_attempt = new_attempt;
    t.error = error;
    store.transition(&t).await
}

/// Gives back a claim no send came of (reconciliation found no message at
/// the provider): `sending` to `queued` as a new attempt, flag cleared. A
/// new attempt, so that a stale release (one that read the claim before
/// another freed it and the sender claimed it again) finds the attempt
/// moved on and frees nothing. Ok(Some(attempt)) when released.
pub async fn release(
    store: &dyn InvitationStore,
    inv: &Invitation,
    at: &str,
) -> Result<Option<u32>, StoreError> {
    let mut t = forced(inv, Status::Queued, at);
    t.from = Status::Sending;
    t.clear_flag = true;
    t.new_attempt = Some(inv.attempt + 1);
    Ok(store.transition(&t).await?.then_some(inv.attempt + 1))
}

/// A move of `inv`'s current attempt from the status it has to `to`.
pub(crate) fn forced(inv: &Invitation, to: Status, at: &str) -> Transition {
    Transition {
        invitation_id: inv.invitation_id.clone(),
        job_id: inv.job_id.clone(),
        attempt: inv.attempt,
        from: inv.status,
        to,
        at: at.to_owned(),
        new_attempt: None,
        message_sid: None,
        error: None,
        clear_flag: false,
        due_at: None,
        renew: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::app::fixtures::{OWNER, guest, with_event};
    use crate::domain::{JobId, now};
    use crate::ports::JobStore;

    /// One queued invitation in its own job.
    async fn queued() -> (MemoryStore, Invitation) {
        let (store, _, event) = with_event().await;
        let job_id = JobId::generate();
        let inv = Invitation::new_queued(event.event_id, job_id, OWNER, guest(1), None, &now());
        crate::app::fixtures::written(&store, &inv).await;
        (store, inv)
    }

    fn report(inv: &Invitation, attempt: u32, status: Status, at: &str) -> StatusReport {
        StatusReport {
            invitation_id: inv.invitation_id.clone(),
            job_id: None,
            attempt,
            status,
            at: at.into(),
            message_sid: Some("SM1".into()),
            error: None,
        }
    }

    async fn counts(store: &MemoryStore, inv: &Invitation) -> Vec<(Status, i64)> {
        let job = store.get_job(&inv.job_id).await.unwrap().unwrap();
        let counts: Vec<_> = Status::ALL
            .into_iter()
            .map(|s| (s, job.count(s)))
            .filter(|(_, n)| *n != 0)
            .collect();
        assert_eq!(counts.iter().map(|(_, n)| n).sum::<i64>(), job.total as i64);
        counts
    }

    #[tokio::test]
    async fn status_moves_only_forward_and_duplicates_change_nothing() {
        let (store, inv) = queued().await;
        assert!(
            force(&store, &inv, Status::Sending, &now(), None, None)
                .await
                .unwrap()
        );
        let delivered = report(&inv, 1, Status::Delivered, "2027-01-01T00:00:02Z");
        assert_eq!(
            apply_report(&store, &delivered).await.unwrap(),
            Outcome::Applied {
                from: Status::Sending
            }
        );
        assert_eq!(
            apply_report(&store, &delivered).await.unwrap(),
            Outcome::NotForward {
                current: Status::Delivered
            }
        );
        // A late "sent" moves nothing back but records when it happened.
        let sent = report(&inv, 1, Status::Sent, "2027-01-01T00:00:01Z");
        assert_eq!(
            apply_report(&store, &sent).await.unwrap(),
            Outcome::NotForward {
                current: Status::Delivered
            }
        );
        let stored = store
            .get_invitation(&inv.invitation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, Status::Delivered);
        assert_eq!(stored.message_sid.as_deref(), Some("SM1"));
        assert_eq!(
            stored.timestamps.get(&Status::Sent).map(String::as_str),
            Some("2027-01-01T00:00:01Z")
        );
        assert_eq!(counts(&store, &inv).await, [(Status::Delivered, 1)]);
    }

    #[tokio::test]
    async fn a_report_naming_its_job_moves_on_or_falls_back_to_reading() {
        let (store, inv) = queued().await;
        let claimed = Invitation {
            status: Status::Sending,
            ..inv.clone()
        };
        assert!(
            force(&store, &inv, Status::Sending, &now(), None, None)
                .await
                .unwrap()
        );
        let with_job = |status, at: &str| StatusReport {
            job_id: Some(inv.job_id.clone()),
            ..report(&claimed, 1, status, at)
        };
        // In order: each moves from the one before it.
        for status in [Status::Sent, Status::Delivered] {
            assert!(matches!(
                apply_report(&store, &with_job(status, &now()))
                    .await
                    .unwrap(),
                Outcome::Applied { .. }
            ));
        }
        // A duplicate misses the guess and is read and refused.
        assert_eq!(
            apply_report(&store, &with_job(Status::Delivered, &now()))
                .await
                .unwrap(),
            Outcome::NotForward {
                current: Status::Delivered
            }
        );
        // Read skips nothing; a late "sent" after it moves nothing back.
        assert!(matches!(
            apply_report(&store, &with_job(Status::Read, &now()))
                .await
                .unwrap(),
            Outcome::Applied {
                from: Status::Delivered
            }
        ));
        assert!(matches!(
            apply_report(&store, &with_job(Status::Sent, &now()))
                .await
                .unwrap(),
            Outcome::NotForward { .. }
        ));
        assert_eq!(counts(&store, &inv).await, [(Status::Read, 1)]);
    }

    #[tokio::test]
    async fn a_report_for_another_attempt_is_ignored() {
        let (store, inv) = queued().await;
        let at = now();
        assert!(
            force(&store, &inv, Status::Failed, &at, None, None)
                .await
                .unwrap()
        );
        let failed = Invitation {
            status: Status::Failed,
            ..inv.clone()
        };
        // The organizer retries: attempt 2 starts over.
        assert!(
            force(&store, &failed, Status::Queued, &at, Some(2), None)
                .await
                .unwrap()
        );
        let late = report(&inv, 1, Status::Delivered, &at);
        assert_eq!(
            apply_report(&store, &late).await.unwrap(),
            Outcome::OtherAttempt { current: 2 }
        );
        let stored = store
            .get_invitation(&inv.invitation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((stored.status, stored.attempt), (Status::Queued, 2));
        assert_eq!(
            stored.timestamps.keys().copied().collect::<Vec<_>>(),
            [Status::Queued]
        );
        assert_eq!(counts(&store, &inv).await, [(Status::Queued, 1)]);
    }

    #[tokio::test]
    async fn a_forced_move_from_a_stale_status_does_nothing() {
        let (store, inv) = queued().await;
        assert!(
            force(&store, &inv, Status::Sending, &now(), None, None)
                .await
                .unwrap()
        );
        // `inv` still says queued: a second claim loses.
        assert!(
            !force(&store, &inv, Status::Sending, &now(), None, None)
                .await
                .unwrap()
        );
        let missing = StatusReport {
            invitation_id: InvitationId::generate(),
            ..report(&inv, 1, Status::Sent, &now())
        };
        assert_eq!(
            apply_report(&store, &missing).await.unwrap(),
            Outcome::NotFound
        );
        assert_eq!(counts(&store, &inv).await, [(Status::Sending, 1)]);
    }
}
