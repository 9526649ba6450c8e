//! A provider's report about a message it was given: the status moves
//! forward on the attempt the report names (a report for an earlier
//! attempt changes nothing), a refusal for the daily limit makes the
//! invitation wait instead of failing, and a guest's unsubscribe or block
//! is recorded as their opt-out.
//!
//! The provider waits for its answer and does not retry a status report
//! (Twilio gives up after 15 s): [`receive`] applies the report while it
//! can answer quickly, and otherwise defers it to the reports queue, whose
//! consumer applies it ([`apply`] again) behind the answer. Applying is
//! idempotent and forward-only, so a report applied twice, or late, or
//! out of order, changes nothing more.

use crate::app::AppError;
use crate::app::lifecycle::{self, Outcome, StatusReport};
use crate::app::waiting::{self, HeldBack, WaitingStore};
use crate::domain::budget::SenderProfile;
use crate::domain::{OptOut, Status, now};
use crate::ports::{DeliveryReport, OptOutStore, QueueError, Refusal, ReportQueue};
use std::time::Duration;

/// How long the store may take to apply a report while the provider
/// waits; past it the report is deferred, and answered at once.
pub const APPLY_WITHIN: Duration = Duration::from_millis(1_500);

/// What a report moves: invitations, opt-outs, the daily budget's pause.
pub trait ReportStore: WaitingStore + OptOutStore {}
impl<T: WaitingStore + OptOutStore + ?Sized> ReportStore for T {}

/// What a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A status that carries no news (before our own `sending`).
    NoNews,
    /// Refused for the daily limit: the invitation waits (true), or had
    /// moved on already (false).
    Waiting(bool),
    /// The status change's outcome under the forward-only rule.
    Status(Outcome),
}

/// What answering a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Applied(Applied),
    /// The store was slow or failing: the report waits in the reports
    /// queue, applied behind the answer.
    Deferred,
}

/// Applies a report within `within`, else defers it; Err only when it
/// could neither be applied nor deferred (the provider's call then fails).
pub async fn receive(
    store: &dyn ReportStore,
    queue: &dyn ReportQueue,
    report: &DeliveryReport,
    profile: &SenderProfile,
    within: Duration,
) -> Result<Received, QueueError> {
    let outcome = tokio::time::timeout(within, apply(store, report, profile)).await;
    let why = match outcome {
        Ok(Ok(applied)) => return Ok(Received::Applied(applied)),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("the store took longer than {} ms", within.as_millis()),
    };
    let reference = &report.reference;
    queue.defer(report).await?;
    tracing::warn!(invitation_id = %reference.invitation_id, attempt = reference.attempt, status = ?report.status, reason = %why, "report deferred to the reports queue; applied behind the answer");
    Ok(Received::Deferred)
}

pub async fn apply(
    store: &dyn ReportStore,
    report: &DeliveryReport,
    profile: &SenderProfile,
) -> Result<Applied, AppError> {
    let Some(status) = report.status else {
        tracing::debug!("status carries no news");
        return Ok(Applied::NoNews);
    };
    let reference = &report.reference;
    let at = now();
    // The provider says the guest unsubscribed or blocked us: never
    // message them again.
    if report.refusal == Some(Refusal::OptedOut)
        && let Some(to) = &report.to
    {
        store
            .put_opt_out(&OptOut::by_twilio(to.clone(), &at), None)
            .await?;
    }
    // Over the daily limit: the invitation waits for the window, not failed.
    if matches!(status, Status::Failed | Status::Undelivered)
        && report.refusal == Some(Refusal::DailyLimit)
    {
        let now = time::OffsetDateTime::now_utc();
        let waits = waiting::refused_for_limit(
            store,
            &reference.invitation_id,
            reference.attempt,
            profile,
            now,
        )
        .await?;
        return Ok(Applied::Waiting(waits));
    }
    // WhatsApp held a marketing message back: outside the US it is tried
    // again later (growing delays); in the US, or too often, it fails.
    if matches!(status, Status::Failed | Status::Undelivered)
        && report.refusal == Some(Refusal::MarketingNotDelivered)
    {
        let now = time::OffsetDateTime::now_utc();
        match waiting::held_back(store, &reference.invitation_id, reference.attempt, now).await? {
            HeldBack::Waits { .. } => return Ok(Applied::Waiting(true)),
            HeldBack::Moved => return Ok(Applied::Waiting(false)),
            HeldBack::Final => {}
        }
    }
    let status_report = StatusReport {
        invitation_id: reference.invitation_id.clone(),
        job_id: reference.job_id.clone(),
        attempt: reference.attempt,
        status,
        at,
        message_sid: report.message_id.clone(),
        error: report.error.clone(),
    };
    let outcome = lifecycle::apply_report(store, &status_report).await?;
    let (id, attempt) = (&reference.invitation_id, reference.attempt);
    match &outcome {
        Outcome::Applied { from } => {
            tracing::info!(invitation_id = %id, attempt, %from, to = %status, "status applied");
        }
        ignored => {
            tracing::info!(invitation_id = %id, attempt, to = %status, outcome = ?ignored, "callback ignored");
        }
    }
    Ok(Applied::Status(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::app::fixtures::queued_job;
    use crate::app::lifecycle;
    use crate::domain::budget::{DailyLimit, STACK_SENDER};
    use crate::domain::{Invitation, PhoneNumber};
    use crate::ports::{BudgetStore, ErrorInfo, InvitationStore, MessageRef, OptOutStore};

    fn profile() -> SenderProfile {
        SenderProfile {
            rate_per_second: 80,
            daily_limit: DailyLimit::Limited(250),
            window_seconds: 30,
        }
    }

    /// A job of one invitation, claimed by the sender (attempt 1, sending).
    async fn one_sending() -> (MemoryStore, Invitation) {
        let (store, _queue, invitations) = queued_job(1, &now()).await;
        let inv = invitations.into_iter().next().unwrap();
        assert!(
            lifecycle::force(&store, &inv, Status::Sending, &now(), None, None)
                .await
                .unwrap()
        );
        let inv = store
            .get_invitation(&inv.invitation_id)
            .await
            .unwrap()
            .unwrap();
        (store, inv)
    }

    fn report(inv: &Invitation, attempt: u32, status: Option<Status>) -> DeliveryReport {
        DeliveryReport {
            reference: MessageRef {
                invitation_id: inv.invitation_id.clone(),
                job_id: Some(inv.job_id.clone()),
                attempt,
            },
            status,
            message_id: Some("SM1".into()),
            error: None,
            refusal: None,
            to: Some(inv.guest.phone.clone()),
        }
    }

    fn failed_with(mut r: DeliveryReport, code: &str, refusal: Refusal) -> DeliveryReport {
        r.status = Some(Status::Failed);
        r.error = Some(ErrorInfo {
            code: code.into(),
            message: "words".into(),
        });
        r.refusal = Some(refusal);
        r
    }

    async fn status_of(store: &MemoryStore, inv: &Invitation) -> (Status, u32) {
        let now = store
            .get_invitation(&inv.invitation_id)
            .await
            .unwrap()
            .unwrap();
        (now.status, now.attempt)
    }

    #[tokio::test]
    async fn given_a_sent_invitation_when_reports_arrive_out_of_order_then_it_only_moves_forward() {
        let (store, inv) = one_sending().await;
        let read = report(&inv, 1, Some(Status::Read));
        let applied = apply(&store, &read, &profile()).await.unwrap();
        assert!(matches!(applied, Applied::Status(Outcome::Applied { .. })));
        let late = report(&inv, 1, Some(Status::Delivered));
        apply(&store, &late, &profile()).await.unwrap();
        assert_eq!(status_of(&store, &inv).await, (Status::Read, 1));
    }

    #[tokio::test]
    async fn given_a_report_for_an_earlier_attempt_then_nothing_changes() {
        let (store, inv) = one_sending().await;
        let old = report(&inv, 0, Some(Status::Failed));
        let applied = apply(&store, &old, &profile()).await.unwrap();
        assert!(matches!(
            applied,
            Applied::Status(Outcome::OtherAttempt { .. })
        ));
        assert_eq!(status_of(&store, &inv).await, (Status::Sending, 1));
    }

    #[tokio::test]
    async fn given_a_status_with_no_news_then_nothing_is_read_or_written() {
        let (store, inv) = one_sending().await;
        let applied = apply(&store, &report(&inv, 1, None), &profile())
            .await
            .unwrap();
        assert_eq!(applied, Applied::NoNews);
        assert_eq!(status_of(&store, &inv).await, (Status::Sending, 1));
    }

    #[tokio::test]
    async fn given_a_refusal_for_the_daily_limit_then_the_invitation_waits_and_the_budget_learns() {
        let (store, inv) = one_sending().await;
        let refused = failed_with(report(&inv, 1, None), "63018", Refusal::DailyLimit);
        let applied = apply(&store, &refused, &profile()).await.unwrap();
        assert_eq!(applied, Applied::Waiting(true));
        // A new attempt: late reports of the refused message change nothing.
        assert_eq!(status_of(&store, &inv).await, (Status::Waiting, 2));
        let state = store.budget_state(STACK_SENDER).await.unwrap();
        let now = crate::domain::budget::epoch_seconds();
        assert_eq!(state.learned_limit(250, 30, now), Some(0));
        // The same report again pauses nothing more and moves nothing.
        assert_eq!(
            apply(&store, &refused, &profile()).await.unwrap(),
            Applied::Waiting(false)
        );
    }

    /// An invitation to `phone` claimed by the sender on `attempt`.
    async fn sending_to(phone: &str, attempt: u32) -> (MemoryStore, Invitation) {
        let (store, _queue, event) = crate::app::fixtures::with_event().await;
        let mut guest = crate::app::fixtures::guest(1);
        guest.phone = PhoneNumber::parse(phone).unwrap();
        let mut inv = Invitation::new_queued(
            event.event_id,
            crate::domain::JobId::generate(),
            crate::app::fixtures::OWNER,
            guest,
            None,
            &now(),
        );
        inv.attempt = attempt;
        inv.status = Status::Sending;
        crate::app::fixtures::written(&store, &inv).await;
        (store, inv)
    }

    #[tokio::test]
    async fn given_whatsapp_held_back_a_marketing_message_outside_the_us_then_it_waits_longer_each_time_and_goes_out_when_due()
     {
        let (store, inv) = sending_to("+5511999990001", 1).await;
        let held = failed_with(
            report(&inv, 1, None),
            "63049",
            Refusal::MarketingNotDelivered,
        );
        let applied = apply(&store, &held, &profile()).await.unwrap();
        assert_eq!(applied, Applied::Waiting(true));
        let waiting = store
            .get_invitation(&inv.invitation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((waiting.status, waiting.attempt), (Status::Waiting, 2));
        assert_eq!(waiting.error_code.as_deref(), Some("marketing_held_back"));
        let due = crate::domain::parse_timestamp(waiting.due_at.as_deref().unwrap()).unwrap();
        let wait = due - time::OffsetDateTime::now_utc();
        assert!(
            wait > time::Duration::minutes(59) && wait <= time::Duration::hours(1),
            "{wait}"
        );
        // The same report again moves nothing.
        assert_eq!(
            apply(&store, &held, &profile()).await.unwrap(),
            Applied::Waiting(false)
        );
        // Not released before it is due, whatever the daily limit frees.
        let queue = crate::adapters::memory::MemoryQueue::new();
        let now = time::OffsetDateTime::now_utc();
        assert_eq!(
            waiting::release(&store, &queue, &profile(), now)
                .await
                .unwrap(),
            0
        );
        let after = due + time::Duration::seconds(1);
        assert_eq!(
            waiting::release(&store, &queue, &profile(), after)
                .await
                .unwrap(),
            1
        );
        // Held back again on its second attempt: six hours this time.
        let (store, inv) = sending_to("+5511999990001", 2).await;
        let held = failed_with(
            report(&inv, 2, None),
            "63049",
            Refusal::MarketingNotDelivered,
        );
        apply(&store, &held, &profile()).await.unwrap();
        let waiting = store
            .get_invitation(&inv.invitation_id)
            .await
            .unwrap()
            .unwrap();
        let due = crate::domain::parse_timestamp(waiting.due_at.as_deref().unwrap()).unwrap();
        assert!(due - time::OffsetDateTime::now_utc() > time::Duration::hours(5));
        // After the last delay, it fails.
        let (store, inv) = sending_to("+5511999990001", 4).await;
        let held = failed_with(
            report(&inv, 4, None),
            "63049",
            Refusal::MarketingNotDelivered,
        );
        apply(&store, &held, &profile()).await.unwrap();
        assert_eq!(status_of(&store, &inv).await, (Status::Failed, 4));
    }

    #[tokio::test]
    async fn given_whatsapp_held_back_a_marketing_message_in_the_us_then_it_fails_at_once() {
        let (store, inv) = sending_to("+14155550101", 1).await;
        let held = failed_with(
            report(&inv, 1, None),
            "63049",
            Refusal::MarketingNotDelivered,
        );
        apply(&store, &held, &profile()).await.unwrap();
        assert_eq!(status_of(&store, &inv).await, (Status::Failed, 1));
    }

    #[tokio::test]
    async fn given_the_guest_unsubscribed_then_the_invitation_fails_and_their_opt_out_is_recorded()
    {
        let (store, inv) = one_sending().await;
        let refused = failed_with(report(&inv, 1, None), "21610", Refusal::OptedOut);
        apply(&store, &refused, &profile()).await.unwrap();
        assert_eq!(status_of(&store, &inv).await, (Status::Failed, 1));
        let phone: &PhoneNumber = &inv.guest.phone;
        let opt_out = store.get_guests_opt_out(phone).await.unwrap().unwrap();
        assert!(opt_out.opted_out);
    }

    #[tokio::test]
    async fn given_another_failure_then_no_opt_out_is_recorded() {
        let (store, inv) = one_sending().await;
        let refused = failed_with(report(&inv, 1, None), "63024", Refusal::NotOnChannel);
        apply(&store, &refused, &profile()).await.unwrap();
        assert_eq!(status_of(&store, &inv).await, (Status::Failed, 1));
        assert!(
            store
                .get_guests_opt_out(&inv.guest.phone)
                .await
                .unwrap()
                .is_none()
        );
    }
}
