//! GIVEN queued invitations, WHEN the sender delivers their records, THEN
//! what each invitation becomes, what the messenger was asked, and what
//! goes back to the queue.

use super::*;
use crate::adapters::memory::{MemoryMessenger, MemoryQueue, MemoryStore};
use crate::app::fixtures::queued_job;
use crate::domain::budget::STACK_SENDER;
use crate::ports::{BudgetStore, InvitationStore, OptOutStore};

struct World {
    store: Arc<MemoryStore>,
    messenger: Arc<MemoryMessenger>,
    queue: Arc<MemoryQueue>,
    invitations: Vec<Invitation>,
}

async fn given(n: u32) -> World {
    let (store, queue, invitations) = queued_job(n, &now()).await;
    World {
        store: Arc::new(store),
        messenger: Arc::new(MemoryMessenger::new()),
        queue: Arc::new(queue),
        invitations,
    }
}

impl World {
    fn deps(&self, daily_limit: DailyLimit) -> Deps {
        Deps {
            store: self.store.clone(),
            messenger: self.messenger.clone(),
            queue: self.queue.clone(),
            rsvp_page_url: "https://api.example.com/r/".into(),
            pacer: Pacer::new(1000, 1).unwrap(),
            profile: SenderProfile {
                rate_per_second: 1000,
                daily_limit,
                window_seconds: 30,
            },
            max_receive_count: 3,
            backoff: Backoff {
                first_seconds: 1,
                cap_seconds: 1,
            },
        }
    }

    fn record(&self, i: usize, receive_count: u32) -> QueuedRecord {
        let inv = &self.invitations[i];
        let message = SendMessage {
            invitation_id: inv.invitation_id.clone(),
            attempt: inv.attempt,
        };
        QueuedRecord {
            id: format!("m{i}"),
            body: serde_json::to_string(&message).unwrap(),
            receive_count,
            receipt_handle: Some(format!("h{i}")),
        }
    }

    async fn deliver(&self, deps: &Deps, records: &[QueuedRecord]) -> Vec<RecordResult> {
        deliver(deps, records, Instant::now() + Duration::from_secs(60)).await
    }

    async fn now(&self, i: usize) -> Invitation {
        let id = &self.invitations[i].invitation_id;
        self.store.get_invitation(id).await.unwrap().unwrap()
    }
}

fn refusal(refusal: Refusal, code: &str) -> ProviderError {
    ProviderError {
        refusal,
        error: ErrorInfo {
            code: code.into(),
            message: format!("words for {code}"),
        },
        detail: "what the provider said".into(),
    }
}

#[tokio::test]
async fn given_queued_invitations_when_delivered_then_each_is_sent_once_with_its_reference() {
    let w = given(2).await;
    let deps = w.deps(DailyLimit::Unlimited);
    let records = [w.record(0, 1), w.record(1, 1)];
    let results = w.deliver(&deps, &records).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Delivered::Sent))));
    let sent = w.messenger.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0].reference.invitation_id,
        w.invitations[0].invitation_id
    );
    assert_eq!(sent[0].reference.attempt, 1);
    let inv = w.now(0).await;
    assert_eq!(inv.status, Status::Sending);
    assert!(inv.message_sid.is_some());
    // SQS delivers at least once: the same record again sends nothing.
    let again = w.deliver(&deps, &records[..1]).await;
    assert!(matches!(again[0], Ok(Delivered::Dropped)));
    assert_eq!(w.messenger.sent().len(), 2);
}

#[tokio::test]
async fn given_a_guest_who_opted_out_after_the_send_was_queued_then_it_is_skipped() {
    let w = given(1).await;
    let phone = w.invitations[0].guest.phone.clone();
    let stop = OptOut::by_guest(phone, true, "STOP".into(), &now());
    w.store.put_opt_out(&stop, None).await.unwrap();
    let results = w
        .deliver(&w.deps(DailyLimit::Unlimited), &[w.record(0, 1)])
        .await;
    assert!(matches!(results[0], Ok(Delivered::Skipped)));
    assert!(w.messenger.sent().is_empty());
    assert_eq!(w.now(0).await.status, Status::Skipped);
}

#[tokio::test]
async fn given_an_unknown_outcome_then_the_invitation_is_flagged_and_never_resent() {
    let w = given(1).await;
    let deps = w.deps(DailyLimit::Unlimited);
    w.messenger
        .refuse_next(refusal(Refusal::Unknown, "send_failed"));
    let results = w.deliver(&deps, &[w.record(0, 1)]).await;
    assert!(matches!(results[0], Ok(Delivered::Flagged)));
    let inv = w.now(0).await;
    assert_eq!(inv.status, Status::Sending);
    assert_eq!(inv.flag.as_deref(), Some(SEND_UNCONFIRMED));
    // Redelivered: still claimed without a message id, so flagged, not sent.
    let again = w.deliver(&deps, &[w.record(0, 2)]).await;
    assert!(matches!(again[0], Ok(Delivered::Flagged)));
    assert!(w.messenger.sent().is_empty());
}

#[tokio::test]
async fn given_a_retryable_refusal_then_the_claim_is_given_back_until_the_last_try_fails_it() {
    let w = given(1).await;
    let deps = w.deps(DailyLimit::Unlimited);
    w.messenger
        .refuse_next(refusal(Refusal::RetryLater, "20429"));
    let results = w.deliver(&deps, &[w.record(0, 1)]).await;
    assert!(matches!(results[0], Err(RecordError::Retry(_))));
    assert_eq!(w.now(0).await.status, Status::Queued);
    // The queue's last try: failed for good, with the provider's code.
    w.messenger
        .refuse_next(refusal(Refusal::RetryLater, "20429"));
    let results = w.deliver(&deps, &[w.record(0, 3)]).await;
    assert!(matches!(&results[0], Ok(Delivered::Failed { code }) if code == "20429"));
    let inv = w.now(0).await;
    assert_eq!(inv.status, Status::Failed);
    assert_eq!(inv.error_code.as_deref(), Some("20429"));
}

#[tokio::test]
async fn given_the_guest_unsubscribed_then_it_fails_and_their_opt_out_is_recorded() {
    let w = given(1).await;
    w.messenger.refuse_next(refusal(Refusal::OptedOut, "21610"));
    let results = w
        .deliver(&w.deps(DailyLimit::Unlimited), &[w.record(0, 1)])
        .await;
    assert!(matches!(&results[0], Ok(Delivered::Failed { code }) if code == "21610"));
    let phone = &w.invitations[0].guest.phone;
    let record = w.store.get_guests_opt_out(phone).await.unwrap().unwrap();
    assert!(record.opted_out);
}

#[tokio::test]
async fn given_a_final_refusal_then_it_fails_with_the_words_and_no_opt_out() {
    let w = given(1).await;
    w.messenger
        .refuse_next(refusal(Refusal::NotOnChannel, "63024"));
    w.deliver(&w.deps(DailyLimit::Unlimited), &[w.record(0, 1)])
        .await;
    let inv = w.now(0).await;
    assert_eq!(inv.status, Status::Failed);
    assert_eq!(inv.error_message.as_deref(), Some("words for 63024"));
    let phone = &w.invitations[0].guest.phone;
    assert!(w.store.get_guests_opt_out(phone).await.unwrap().is_none());
}

#[tokio::test]
async fn given_a_refusal_for_the_daily_limit_then_it_waits_gives_back_its_place_and_the_budget_keeps_to_what_it_holds()
 {
    let w = given(1).await;
    w.messenger
        .refuse_next(refusal(Refusal::DailyLimit, "63018"));
    let results = w
        .deliver(&w.deps(DailyLimit::Limited(250)), &[w.record(0, 1)])
        .await;
    assert!(matches!(results[0], Ok(Delivered::Waiting)));
    let inv = w.now(0).await;
    assert_eq!((inv.status, inv.attempt), (Status::Waiting, 2));
    let state = w.store.budget_state(STACK_SENDER).await.unwrap();
    let now = budget::epoch_seconds();
    assert_eq!(state.held(now), 0);
    assert_eq!(state.learned_limit(250, 30, now), Some(0));
}

#[tokio::test]
async fn given_a_spent_budget_then_records_wait_unsent_and_hold_no_place() {
    let w = given(3).await;
    let deps = w.deps(DailyLimit::Limited(2));
    let records = [w.record(0, 1), w.record(1, 1), w.record(2, 1)];
    let results = w.deliver(&deps, &records).await;
    let sent = results
        .iter()
        .filter(|r| matches!(r, Ok(Delivered::Sent)))
        .count();
    let waiting = results
        .iter()
        .filter(|r| matches!(r, Ok(Delivered::Waiting)))
        .count();
    assert_eq!((sent, waiting), (2, 1));
    assert_eq!(w.messenger.sent().len(), 2);
    let state = w.store.budget_state(STACK_SENDER).await.unwrap();
    assert_eq!(state.held(budget::epoch_seconds()), 2);
}

#[tokio::test]
async fn given_a_record_that_is_no_send_request_then_it_is_dead_lettered_and_the_others_go_on() {
    let w = given(1).await;
    let poison = QueuedRecord {
        id: "bad".into(),
        body: "{not json".into(),
        receive_count: 1,
        receipt_handle: None,
    };
    let results = w
        .deliver(&w.deps(DailyLimit::Unlimited), &[poison, w.record(0, 1)])
        .await;
    assert!(matches!(results[0], Ok(Delivered::DeadLettered)));
    assert!(matches!(results[1], Ok(Delivered::Sent)));
    assert_eq!(w.queue.dead_letters().len(), 1);
}

#[tokio::test]
async fn given_a_record_for_an_earlier_attempt_then_it_is_dropped() {
    let w = given(1).await;
    let mut stale = w.record(0, 1);
    stale.body = serde_json::to_string(&SendMessage {
        invitation_id: w.invitations[0].invitation_id.clone(),
        attempt: 0,
    })
    .unwrap();
    let results = w.deliver(&w.deps(DailyLimit::Unlimited), &[stale]).await;
    assert!(matches!(results[0], Ok(Delivered::Dropped)));
    assert_eq!(w.now(0).await.status, Status::Queued);
}

#[tokio::test]
async fn given_too_little_time_before_the_deadline_then_nothing_is_claimed() {
    let w = given(1).await;
    let deps = w.deps(DailyLimit::Unlimited);
    let results = deliver(&deps, &[w.record(0, 1)], Instant::now() + SEND_BUDGET / 2).await;
    assert!(matches!(results[0], Err(RecordError::OutOfTime)));
    assert_eq!(w.now(0).await.status, Status::Queued);
    assert!(w.messenger.sent().is_empty());
}

/// Places the daily budget holds now.
async fn held(w: &World) -> u32 {
    let state = w.store.budget_state(STACK_SENDER).await.unwrap();
    state.held(budget::epoch_seconds())
}

#[tokio::test]
async fn given_records_not_sent_after_taking_a_place_then_each_place_is_given_back() {
    let w = given(4).await;
    let deps = w.deps(DailyLimit::Limited(250));
    // Out of time: returned unclaimed.
    let late = deliver(&deps, &[w.record(0, 1)], Instant::now()).await;
    assert!(matches!(late[0], Err(RecordError::OutOfTime)));
    assert_eq!(held(&w).await, 0);
    // A 429: the claim and the place given back, the record backs off.
    w.messenger
        .refuse_next(refusal(Refusal::RetryLater, "20429"));
    let retry = w.deliver(&deps, &[w.record(1, 1)]).await;
    assert!(matches!(retry[0], Err(RecordError::Retry(_))));
    assert_eq!(held(&w).await, 0);
    // A final refusal: the provider sent nothing.
    w.messenger
        .refuse_next(refusal(Refusal::NotOnChannel, "63003"));
    let failed = w.deliver(&deps, &[w.record(2, 1)]).await;
    assert!(matches!(failed[0], Ok(Delivered::Failed { .. })));
    assert_eq!(held(&w).await, 0);
    // An unknown outcome may have reached the guest: its place stays.
    w.messenger
        .refuse_next(refusal(Refusal::Unknown, "send_failed"));
    let unknown = w.deliver(&deps, &[w.record(3, 1)]).await;
    assert!(matches!(unknown[0], Ok(Delivered::Flagged)));
    assert_eq!(held(&w).await, 1);
    // The redelivered 429 and the late one are sent, holding a place each.
    let sent = w.deliver(&deps, &[w.record(0, 2), w.record(1, 2)]).await;
    assert!(sent.iter().all(|r| matches!(r, Ok(Delivered::Sent))));
    assert_eq!(held(&w).await, 3);
}

#[tokio::test]
async fn given_a_redelivery_of_a_record_that_holds_a_place_then_it_takes_no_second() {
    let w = given(1).await;
    let deps = w.deps(DailyLimit::Limited(1));
    // The first delivery took its place and stopped (an instance lost
    // before its claim): the limit of one is spent, by this record.
    let inv = &w.invitations[0];
    let now = budget::epoch_seconds();
    let rules = BudgetRules {
        limit: 1,
        window_seconds: 30,
        until: deps.profile.hold_until(now, 0),
    };
    let its = claim(inv);
    let taken = w.store.take_budget(STACK_SENDER, &its, &rules, now);
    assert_eq!(taken.await.unwrap(), BudgetTake::Counted);
    let again = w.deliver(&deps, &[w.record(0, 2)]).await;
    assert!(matches!(again[0], Ok(Delivered::Sent)), "{again:?}");
    assert_eq!(held(&w).await, 1);
}

#[tokio::test]
async fn given_guests_removed_or_renumbered_since_queued_then_they_are_skipped_in_words_not_sent() {
    use crate::ports::GuestStore;
    let w = given(3).await;
    let (removed, renumbered) = (&w.invitations[0], &w.invitations[1]);
    // Straight on the list (as a removal racing the send would leave it).
    w.store
        .remove_guest(&removed.owner, &removed.event_id, &removed.guest.guest_id)
        .await
        .unwrap();
    let new_number = crate::domain::Guest {
        phone: crate::domain::PhoneNumber::parse("+5511988887777").unwrap(),
        ..renumbered.guest.clone()
    };
    w.store
        .put_guests(
            &renumbered.owner,
            &renumbered.event_id,
            &[new_number],
            &now(),
        )
        .await
        .unwrap();
    let deps = w.deps(DailyLimit::Unlimited);
    let results = w
        .deliver(&deps, &[w.record(0, 1), w.record(1, 1), w.record(2, 1)])
        .await;
    assert!(matches!(results[0], Ok(Delivered::Skipped)));
    assert!(matches!(results[1], Ok(Delivered::Skipped)));
    assert!(matches!(results[2], Ok(Delivered::Sent)));
    let sent = w.messenger.sent();
    assert_eq!(sent.len(), 1, "only the guest still on the list as queued");
    for (i, code) in [(0, "guest_removed"), (1, "number_changed")] {
        let inv = w.now(i).await;
        assert_eq!(
            (inv.status, inv.error_code.as_deref()),
            (Status::Skipped, Some(code))
        );
    }
}
