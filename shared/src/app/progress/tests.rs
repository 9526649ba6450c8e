//! GIVEN a job's invitations in some states, WHEN an organizer follows it,
//! THEN the counts, the expected finish, and each invitation's meaning.

use super::*;
use crate::adapters::memory::MemoryStore;
use crate::app::fixtures::{OWNER, queued_job};
use crate::app::lifecycle;
use crate::domain::now;
use crate::ports::ErrorInfo;

fn profile(daily_limit: DailyLimit) -> SenderProfile {
    SenderProfile {
        rate_per_second: 10,
        daily_limit,
        window_seconds: 60,
    }
}

/// Reads every code as "retry it by hand", naming nothing of a provider.
struct AnyCode;
impl ErrorCodes for AnyCode {
    fn action(&self, _: &str, _: Status) -> Action {
        Action::RetryByHand
    }
}

#[tokio::test]
async fn given_a_queued_job_then_its_counts_and_finish_come_from_its_counters() {
    let (store, _queue, invitations) = queued_job(3, &now()).await;
    let job_id = invitations[0].job_id.clone();
    let view = job(&store, &profile(DailyLimit::Unlimited), OWNER, &job_id)
        .await
        .unwrap();
    assert_eq!(view.total, 3);
    assert_eq!(view.counts["queued"], 3);
    assert!(!view.done);
    assert!(view.expected_finish.is_some());
    assert!(view.waiting.is_none());
    // Another organizer's job answers like a missing one.
    let other = job(
        &store,
        &profile(DailyLimit::Unlimited),
        "someone-else",
        &job_id,
    )
    .await;
    assert!(matches!(other, Err(AppError::NotFound(_))));
}

#[tokio::test]
async fn given_invitations_waiting_for_the_daily_limit_then_the_job_says_how_many_and_why() {
    let (store, _queue, invitations) = queued_job(2, &now()).await;
    for inv in &invitations {
        lifecycle::force(&store, inv, Status::Waiting, &now(), None, None)
            .await
            .unwrap();
    }
    let view = job(
        &store,
        &profile(DailyLimit::Limited(250)),
        OWNER,
        &invitations[0].job_id,
    )
    .await
    .unwrap();
    let waiting = view.waiting.unwrap();
    assert_eq!(waiting["count"], 2);
    assert_eq!(waiting["reason"], "wait_for_daily_limit");
}

#[tokio::test]
async fn given_a_failed_invitation_then_its_listing_says_what_to_do() {
    let (store, _queue, invitations) = queued_job(2, &now()).await;
    let error = ErrorInfo {
        code: "30008".into(),
        message: "Delivery failed".into(),
    };
    lifecycle::force(
        &store,
        &invitations[0],
        Status::Failed,
        &now(),
        None,
        Some(error),
    )
    .await
    .unwrap();
    let query = ListQuery {
        owner: OWNER.into(),
        event_id: invitations[0].event_id.clone(),
        status: Some(Status::Failed),
        limit: 50,
        cursor: None,
    };
    let page = super::invitations(&store, &AnyCode, query.clone())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let view = &page.items[0];
    assert_eq!(view.error_code.as_deref(), Some("30008"));
    assert_eq!(view.error_action, Some(Action::RetryByHand));
    assert_eq!(view.what_to_do, Some(Action::RetryByHand.what_to_do()));
    // An unknown event is not found, whatever the owner.
    let missing = ListQuery {
        owner: "someone-else".into(),
        ..query
    };
    assert!(matches!(
        super::invitations(&store, &AnyCode, missing).await,
        Err(AppError::NotFound(_))
    ));
}

#[tokio::test]
async fn given_a_limited_sender_with_nothing_sent_then_every_place_is_free() {
    let store = MemoryStore::new();
    let view = sender(&store, &profile(DailyLimit::Limited(250)))
        .await
        .unwrap();
    assert_eq!(view.free_now, Some(250));
    assert_eq!(view.counted_in_window, Some(0));
    let unlimited = sender(&store, &profile(DailyLimit::Unlimited))
        .await
        .unwrap();
    assert_eq!(unlimited.free_now, None);
}
