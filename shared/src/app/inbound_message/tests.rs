//! GIVEN invitations sent to guests, WHEN a guest's message arrives, THEN
//! what it records and what the guest gets back.

use super::*;
use crate::adapters::memory::MemoryStore;
use crate::app::fixtures::{OWNER, guest, invited};
use crate::domain::rsvp::Answer;
use crate::ports::{Annotation, InvitationStore, RsvpStore};

const PAGE: &str = "https://api.example.com/r/";

/// `n` guests invited, each invitation sent (message id `SM<n>`).
async fn sent(n: u32) -> (MemoryStore, Vec<Invitation>) {
    let (store, _queue, queued) = invited(n).await;
    let mut invitations = Vec::new();
    for (i, inv) in queued.iter().enumerate() {
        invitations.push(with_sid(&store, inv, &format!("SM{}", i + 1)).await);
    }
    (store, invitations)
}

/// `inv` once the provider took it as message `sid`.
async fn with_sid(store: &MemoryStore, inv: &Invitation, sid: &str) -> Invitation {
    let note = Annotation {
        message_sid: Some(sid.into()),
        ..Default::default()
    };
    store
        .annotate(&inv.invitation_id, inv.attempt, &note)
        .await
        .unwrap();
    store
        .get_invitation(&inv.invitation_id)
        .await
        .unwrap()
        .unwrap()
}

fn message(from: &PhoneNumber, text: &str) -> InboundMessage {
    InboundMessage {
        from: from.clone(),
        text: text.into(),
        button_payload: None,
        replied_to: None,
        message_id: "SMin1".into(),
    }
}

async fn latest(store: &MemoryStore, inv: &Invitation) -> Option<Answer> {
    let history = store
        .rsvp_history(OWNER, &inv.event_id, &inv.guest.guest_id)
        .await
        .unwrap();
    history.latest().map(|r| r.answer)
}

#[tokio::test]
async fn given_an_invitation_when_its_guest_taps_yes_then_the_answer_is_recorded_and_confirmed_once()
 {
    let (store, invitations) = sent(1).await;
    let inv = &invitations[0];
    let tap = InboundMessage {
        button_payload: Some(inv.answer_token().unwrap().payload(Answer::Yes)),
        ..message(&inv.guest.phone, "Yes")
    };
    let reply = receive(&store, &tap, Some("d1"), PAGE).await.unwrap();
    assert!(reply.is_some_and(|r| !r.is_empty()));
    assert_eq!(latest(&store, inv).await, Some(Answer::Yes));
    // The provider's retry of the same delivery does nothing more.
    assert_eq!(receive(&store, &tap, Some("d1"), PAGE).await.unwrap(), None);
    // A second tap (a new delivery) repeats the latest answer: not confirmed again.
    assert_eq!(receive(&store, &tap, Some("d2"), PAGE).await.unwrap(), None);
}

#[tokio::test]
async fn given_a_tap_from_another_number_or_an_altered_payload_then_nothing_is_recorded() {
    let (store, invitations) = sent(2).await;
    let (first, second) = (&invitations[0], &invitations[1]);
    let payload = first.answer_token().unwrap().payload(Answer::No);
    let foreign_tap = InboundMessage {
        button_payload: Some(payload.clone()),
        ..message(&second.guest.phone, "No")
    };
    assert_eq!(
        receive(&store, &foreign_tap, None, PAGE).await.unwrap(),
        None
    );
    let altered = InboundMessage {
        button_payload: Some(format!("{payload}x")),
        ..message(&first.guest.phone, "No")
    };
    assert_eq!(receive(&store, &altered, None, PAGE).await.unwrap(), None);
    assert_eq!(latest(&store, first).await, None);
    assert_eq!(latest(&store, second).await, None);
}

#[tokio::test]
async fn given_a_typed_answer_then_it_counts_for_the_latest_invitation_the_number_got() {
    let (store, invitations) = sent(1).await;
    let inv = &invitations[0];
    let reply = receive(&store, &message(&inv.guest.phone, "maybe"), None, PAGE)
        .await
        .unwrap();
    assert!(reply.is_some());
    assert_eq!(latest(&store, inv).await, Some(Answer::Maybe));
}

#[tokio::test]
async fn given_other_text_then_it_is_kept_for_the_organizer_and_nothing_is_answered() {
    let (store, invitations) = sent(1).await;
    let inv = &invitations[0];
    let text = "can I bring my son?";
    let reply = receive(&store, &message(&inv.guest.phone, text), None, PAGE)
        .await
        .unwrap();
    assert_eq!(reply, None);
    assert_eq!(latest(&store, inv).await, None);
    let kept = store.replies(OWNER, &inv.event_id, 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].text, text);
}

#[tokio::test]
async fn given_a_reply_quoting_a_message_that_is_no_invitation_then_an_answer_is_only_kept() {
    let (store, invitations) = sent(1).await;
    let inv = &invitations[0];
    let quoting = InboundMessage {
        replied_to: Some("SMunknown".into()),
        ..message(&inv.guest.phone, "yes")
    };
    assert_eq!(receive(&store, &quoting, None, PAGE).await.unwrap(), None);
    assert_eq!(latest(&store, inv).await, None);
    assert_eq!(
        store.replies(OWNER, &inv.event_id, 10).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn given_stop_then_the_guest_opts_out_and_yes_opts_back_in_only_once_opted_out() {
    let (store, invitations) = sent(1).await;
    let phone = &invitations[0].guest.phone;
    receive(&store, &message(phone, "Stop."), None, PAGE)
        .await
        .unwrap();
    let record = store.get_guests_opt_out(phone).await.unwrap().unwrap();
    assert!(record.opted_out);
    assert_eq!(record.keyword.as_deref(), Some("STOP"));
    // Opted out, "YES" opts back in (and records no answer).
    receive(&store, &message(phone, "yes"), None, PAGE)
        .await
        .unwrap();
    assert!(
        !store
            .get_guests_opt_out(phone)
            .await
            .unwrap()
            .unwrap()
            .opted_out
    );
    assert_eq!(latest(&store, &invitations[0]).await, None);
    // Not opted out, "yes" is an answer.
    receive(&store, &message(phone, "yes"), None, PAGE)
        .await
        .unwrap();
    assert_eq!(latest(&store, &invitations[0]).await, Some(Answer::Yes));
}

#[tokio::test]
async fn given_a_number_no_invitation_reached_then_nothing_is_kept() {
    let (store, invitations) = sent(1).await;
    let stranger = guest(99).phone;
    assert_eq!(
        receive(&store, &message(&stranger, "yes"), None, PAGE)
            .await
            .unwrap(),
        None
    );
    let kept = store
        .replies(OWNER, &invitations[0].event_id, 10)
        .await
        .unwrap();
    assert!(kept.is_empty());
}

/// A second organizer's invitation to the same guest, sent (message `sid`).
async fn invited_by_another(store: &MemoryStore, of: &Invitation, sid: &str) -> Invitation {
    use crate::app::send::{self, NewJob, Plan};
    use crate::domain::render::builtin_default;
    use crate::domain::{EventId, EventInput, now};
    use crate::ports::EventStore;
    const OTHER: &str = "organizer-2";
    let event = EventInput {
        name: Some("Another party".into()),
        starts_at: Some("2027-06-01T20:00:00-03:00".into()),
        venue: Some("Bar".into()),
        host: Some("Rui".into()),
        ..Default::default()
    }
    .parse(EventId::parse("party").unwrap(), OTHER, &now())
    .unwrap();
    store.put_event(&event).await.unwrap();
    let plan = Plan {
        template: builtin_default(OTHER, &now()),
        event,
    };
    let queue = crate::adapters::memory::MemoryQueue::new();
    let sent = send::send(
        store,
        &queue,
        plan,
        vec![of.guest.clone()],
        NewJob::Fresh,
        false,
    )
    .await
    .unwrap();
    with_sid(store, &sent.invitations[0], sid).await
}

#[tokio::test]
async fn given_two_organizers_invitations_then_a_reply_quoting_neither_is_asked_about_and_seen_by_neither()
 {
    let (store, invitations) = sent(1).await;
    let first = &invitations[0];
    let second = invited_by_another(&store, first, "SMother").await;
    let phone = &first.guest.phone;
    for text in ["yes", "can I bring my son?"] {
        let reply = receive(&store, &message(phone, text), None, PAGE)
            .await
            .unwrap();
        assert_eq!(reply.as_deref(), Some(crate::app::rsvp::WHICH_INVITATION));
    }
    assert_eq!(latest(&store, first).await, None);
    assert_eq!(
        store
            .replies(OWNER, &first.event_id, 10)
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        store
            .replies("organizer-2", &second.event_id, 10)
            .await
            .unwrap()
            .len(),
        0,
        "the later organizer sees nothing either"
    );
    // Quoting one of them answers that one only.
    let quoting = InboundMessage {
        replied_to: Some("SMother".into()),
        ..message(phone, "no")
    };
    assert!(
        receive(&store, &quoting, None, PAGE)
            .await
            .unwrap()
            .is_some()
    );
    let answered = store
        .rsvp_history("organizer-2", &second.event_id, &second.guest.guest_id)
        .await
        .unwrap();
    assert_eq!(answered.latest().map(|r| r.answer), Some(Answer::No));
    assert_eq!(latest(&store, first).await, None);
}

#[tokio::test]
async fn given_another_organizers_invitation_that_failed_then_a_reply_is_the_one_that_reached() {
    let (store, invitations) = sent(1).await;
    let first = &invitations[0];
    let second = invited_by_another(&store, first, "SMother").await;
    // The other organizer's message never reached the guest.
    crate::app::lifecycle::force(
        &store,
        &second,
        crate::domain::Status::Failed,
        &crate::domain::now(),
        None,
        None,
    )
    .await
    .unwrap();
    let reply = receive(&store, &message(&first.guest.phone, "yes"), None, PAGE)
        .await
        .unwrap();
    assert!(reply.is_some());
    assert_eq!(latest(&store, first).await, Some(Answer::Yes));
}
