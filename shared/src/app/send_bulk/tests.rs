//! GIVEN an event, WHEN an organizer sends to many guests, THEN who is
//! queued, rejected, left out or skipped, and what a dry run foresees.

use super::*;
use crate::adapters::memory::{MemoryQueue, MemoryStore};
use crate::app::fixtures::{OWNER, with_event};
use crate::domain::budget::DAY_SECONDS;
use crate::domain::guest::GuestEntry;
use crate::domain::{GuestId, PhoneNumber};
use crate::ports::{GuestStore, InvitationStore};
use serde_json::json;

async fn given(daily_limit: DailyLimit) -> (Deps, Arc<MemoryQueue>) {
    let (deps, queue, _store) = given_store(daily_limit).await;
    (deps, queue)
}

/// [`given`], and the store as itself.
async fn given_store(daily_limit: DailyLimit) -> (Deps, Arc<MemoryQueue>, Arc<MemoryStore>) {
    let (store, queue, _event) = with_event().await;
    let queue = Arc::new(queue);
    let store: Arc<MemoryStore> = Arc::new(store);
    let deps = Deps {
        store: store.clone(),
        queue: queue.clone(),
        admissions: queue.clone(),
        profile: SenderProfile {
            rate_per_second: 10,
            daily_limit,
            window_seconds: DAY_SECONDS,
        },
        rates: Rates::default(),
    };
    (deps, queue, store)
}

fn guest(id: &str, phone: &str) -> serde_json::Value {
    json!({"guest_id": id, "name": format!("Guest {id}"), "phone": phone})
}

fn request(guests: Vec<serde_json::Value>) -> BulkRequest {
    BulkRequest {
        event_id: Some("gala".into()),
        guests: Some(guests),
        ..Default::default()
    }
}

fn queued(answer: Answer) -> serde_json::Value {
    match answer {
        Answer::Queued(v) => v,
        Answer::DryRun(v) => panic!("a dry run: {v}"),
    }
}

#[test]
fn triage_rejects_by_field_and_sends_duplicates_once() {
    let t = triage(vec![
        json!({"guest_id": "a", "name": "A", "phone": "+5511999990001"}),
        json!({"guest_id": "b", "name": "B", "phone": "123"}),
        json!({"guest_id": "a", "name": "A again", "phone": "+5511999990009"}),
        json!({"guest_id": "c", "name": "C", "phone": "+5511999990001"}),
        json!({"guest_id": "d", "phone": "+5511999990004"}),
        json!("not an object"),
        json!({"guest_id": "e", "name": "E", "phone": "+5511999990005"}),
        // E's number without the mobile 9: the same WhatsApp user.
        json!({"guest_id": "f", "name": "F", "phone": "+551199990005"}),
    ]);
    let ids: Vec<(usize, &str)> = t
        .accepted
        .iter()
        .map(|(i, g)| (*i, g.guest_id.as_str()))
        .collect();
    assert_eq!(ids, [(0, "a"), (6, "e")]);
    let rejected: Vec<(usize, &str)> = t
        .rejected
        .iter()
        .map(|r| (r.index, r.field.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [
            (1, "guests[1].phone"),
            (4, "guests[4].name"),
            (5, "guests[5]")
        ]
    );
    let dups: Vec<(usize, usize)> = t
        .duplicates
        .iter()
        .map(|d| (d.index, d.duplicate_of))
        .collect();
    assert_eq!(dups, [(2, 0), (3, 0), (7, 6)]);
}

#[tokio::test]
async fn given_good_and_bad_guests_then_the_good_are_queued_and_the_bad_named_by_field() {
    let (deps, queue) = given(DailyLimit::Unlimited).await;
    let input = request(vec![
        guest("a", "+5511999990001"),
        guest("b", "not a number"),
        guest("c", "+5511999990003"),
    ]);
    let answer = queued(send_bulk(&deps, OWNER, input, None, b"{}").await.unwrap());
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["queued"], 2);
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert_eq!(answer["rejected"][0]["field"], "guests[1].phone");
    assert_eq!(queue.messages().len(), 2);
}

#[tokio::test]
async fn given_a_guest_already_invited_then_a_second_send_leaves_them_out_unless_it_resends() {
    let (deps, queue) = given(DailyLimit::Unlimited).await;
    let ana = || request(vec![guest("a", "+5511999990001")]);
    send_bulk(&deps, OWNER, ana(), None, b"1").await.unwrap();
    let again = queued(send_bulk(&deps, OWNER, ana(), None, b"2").await.unwrap());
    assert_eq!(again["accepted"], 0);
    assert_eq!(again["left_out"][0]["reason"], ALREADY_INVITED);
    let resend = BulkRequest {
        resend: true,
        ..ana()
    };
    let resent = queued(send_bulk(&deps, OWNER, resend, None, b"3").await.unwrap());
    assert_eq!(resent["accepted"], 1);
    assert_eq!(queue.messages().len(), 2);
}

#[tokio::test]
async fn given_a_dry_run_then_nothing_is_written_and_the_wait_for_the_daily_limit_is_foreseen() {
    let (deps, queue) = given(DailyLimit::Limited(2)).await;
    let input = BulkRequest {
        dry_run: true,
        ..request(vec![
            guest("a", "+5511999990001"),
            guest("b", "+5511999990002"),
            guest("c", "+5511999990003"),
        ])
    };
    let Answer::DryRun(answer) = send_bulk(&deps, OWNER, input, None, b"{}").await.unwrap() else {
        panic!("a dry run")
    };
    assert_eq!(answer["queued"], 3);
    assert_eq!(answer["would_wait"], 1);
    assert!(queue.messages().is_empty());
}

#[tokio::test]
async fn given_the_same_idempotency_key_twice_then_one_job_and_the_same_answer() {
    let (deps, queue) = given(DailyLimit::Unlimited).await;
    let input = || request(vec![guest("a", "+5511999990001")]);
    let first = send_bulk(&deps, OWNER, input(), Some("k-1"), b"same")
        .await
        .unwrap();
    let second = send_bulk(&deps, OWNER, input(), Some("k-1"), b"same")
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(queue.messages().len(), 1);
    // Another request under the same key is refused.
    let other = send_bulk(&deps, OWNER, input(), Some("k-1"), b"other").await;
    assert!(matches!(other, Err(AppError::Conflict(_))));
}

#[tokio::test]
async fn given_too_many_or_no_good_guests_then_the_request_is_refused_naming_guests() {
    let (deps, _queue) = given(DailyLimit::Unlimited).await;
    let many = (0..=MAX_PER_REQUEST)
        .map(|i| guest(&format!("g{i}"), "+5511999990001"))
        .collect();
    let Err(AppError::Invalid(e)) = send_bulk(&deps, OWNER, request(many), None, b"").await else {
        panic!("refused")
    };
    assert_eq!(e.field, "guests");
    let bad = request(vec![guest("a", "123")]);
    let Err(AppError::Invalid(e)) = send_bulk(&deps, OWNER, bad, None, b"").await else {
        panic!("refused")
    };
    assert_eq!(e.field, "guests");
    assert!(e.message.contains("guests[0].phone"), "{e}");
    let no_event = BulkRequest {
        event_id: None,
        ..request(vec![guest("a", "+5511999990001")])
    };
    let Err(AppError::Invalid(e)) = send_bulk(&deps, OWNER, no_event, None, b"").await else {
        panic!("refused")
    };
    assert_eq!(e.field, "event_id");
}

#[tokio::test]
async fn given_a_listed_guest_then_a_send_goes_as_listed_and_a_stale_copy_is_refused_naming_its_field()
 {
    let (deps, queue, store) = given_store(DailyLimit::Unlimited).await;
    let store = store.as_ref();
    let gala = EventId::parse("gala").unwrap();
    let listed = GuestEntry {
        guest_id: Some(GuestId::parse("b").unwrap()),
        name: "Bia".into(),
        phone: PhoneNumber::parse("+5511999990002").unwrap(),
        rsvp_token: None,
    };
    crate::app::guest_list::import(store, OWNER, &gala, vec![listed])
        .await
        .unwrap();
    // A copy taken before the number was edited: refused, nothing written.
    let stale = request(vec![
        guest("a", "+5511999990001"),
        json!({"guest_id": "b", "name": "Bia", "phone": "+5511999990009"}),
    ]);
    let Err(AppError::Stale(e)) = send_bulk(&deps, OWNER, stale, None, b"").await else {
        panic!("refused")
    };
    assert_eq!(e.field, "guests[1].phone");
    assert!(e.message.contains("+5511999990002"), "{e}");
    let renamed = request(vec![
        json!({"guest_id": "b", "name": "Beatriz", "phone": "+5511999990002"}),
    ]);
    let Err(AppError::Stale(e)) = send_bulk(&deps, OWNER, renamed, None, b"").await else {
        panic!("refused")
    };
    assert_eq!(e.field, "guests[0].name");
    assert!(queue.messages().is_empty(), "nothing sent");
    // The number as people write it is the same number: sent as listed,
    // with the list's RSVP link.
    let token = store
        .get_guests(OWNER, &gala, &[GuestId::parse("b").unwrap()])
        .await
        .unwrap()[0]
        .guest
        .rsvp_token
        .clone();
    let same = request(vec![
        json!({"guest_id": "b", "name": "Bia", "phone": "+55 (11) 99999-0002"}),
    ]);
    let answer = queued(send_bulk(&deps, OWNER, same, None, b"").await.unwrap());
    assert_eq!(answer["queued"], 1);
    let sent = store
        .get_invitation(&queue.messages()[0].invitation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.guest.rsvp_token, token);
}

#[tokio::test]
async fn given_a_number_changed_after_an_invitation_then_a_send_invites_the_new_number_without_resend()
 {
    let (deps, queue, store) = given_store(DailyLimit::Unlimited).await;
    let store = store.as_ref();
    let gala = EventId::parse("gala").unwrap();
    let first = request(vec![guest("a", "+5511999990001")]);
    queued(send_bulk(&deps, OWNER, first, None, b"").await.unwrap());
    // The same number again: the invitation holds the guest.
    let again = request(vec![guest("a", "+5511999990001")]);
    assert_eq!(
        queued(send_bulk(&deps, OWNER, again, None, b"").await.unwrap())["left_out"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let edit = GuestEntry {
        guest_id: None,
        name: "Guest a".into(),
        phone: PhoneNumber::parse("+5511999990007").unwrap(),
        rsvp_token: None,
    };
    crate::app::guest_list::edit(store, OWNER, &gala, GuestId::parse("a").unwrap(), edit)
        .await
        .unwrap();
    let moved = request(vec![guest("a", "+5511999990007")]);
    let answer = queued(send_bulk(&deps, OWNER, moved, None, b"").await.unwrap());
    assert_eq!(
        (
            answer["queued"].as_u64(),
            answer["left_out"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0))
    );
    let last = store
        .get_invitation(&queue.messages().last().unwrap().invitation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.guest.phone.as_str(), "+5511999990007");
}
