//! GIVEN a send of more guests than are answered inline, WHEN its chunks
//! are admitted (once, twice, after a try that stopped part-way, or never
//! delivered), THEN each guest is invited, skipped or left out once, and
//! the job counts each exactly once.

use super::*;
use crate::adapters::memory::{MemoryQueue, MemoryStore};
use crate::app::fixtures::{OWNER, guest, with_event};
use crate::app::progress;
use crate::domain::admission::{CHUNK_GUESTS, INLINE_GUESTS};
use crate::domain::budget::{DAY_SECONDS, DailyLimit, SenderProfile};
use crate::domain::reason::OPTED_OUT;
use crate::domain::{Invitation, InvitationId, OptOut};
use crate::ports::{GuestStore, InvitationStore, JobStore, OptOutStore, Transition};
use std::time::Duration;

/// A store with the event, a queue, and `n` guests (1 to n) to send to.
async fn given(n: u32) -> (MemoryStore, MemoryQueue, Plan, Vec<Guest>) {
    let (store, queue, event) = with_event().await;
    let plan = send::plan(&store, OWNER, &event.event_id, None)
        .await
        .unwrap();
    (store, queue, plan, (1..=n).map(guest).collect())
}

/// Admits every chunk on the queue, as the consumer would: their outcomes.
async fn admit_all(store: &MemoryStore, queue: &MemoryQueue) -> Vec<ChunkOutcome> {
    let mut outcomes = Vec::new();
    for message in queue.take_chunks() {
        outcomes.push(admit_chunk(store, queue, &message).await.unwrap());
    }
    outcomes
}

fn profile() -> SenderProfile {
    SenderProfile {
        rate_per_second: 10,
        daily_limit: DailyLimit::Unlimited,
        window_seconds: DAY_SECONDS,
    }
}

#[tokio::test]
async fn a_large_send_is_admitted_chunk_by_chunk_and_each_guest_counted_once() {
    let n = (INLINE_GUESTS + CHUNK_GUESTS) as u32;
    let (store, queue, plan, guests) = given(n).await;
    // Guest 2 stopped; guest 3 holds an invitation already.
    store
        .put_opt_out(
            &OptOut::by_guest(guest(2).phone, true, "STOP".into(), &now()),
            None,
        )
        .await
        .unwrap();
    let earlier = send::send(
        &store,
        &queue,
        send::plan(&store, OWNER, &plan.event.event_id, None)
            .await
            .unwrap(),
        vec![guest(3)],
        NewJob::Fresh,
        false,
    )
    .await
    .unwrap();
    let before = queue.messages().len();

    let job = accept(&store, &queue, &plan, guests, NewJob::Fresh, false)
        .await
        .unwrap();
    // Answered before anything is written for the guests.
    let chunks = n.div_ceil(CHUNK_GUESTS as u32);
    assert_eq!(queue.chunks().len() as u32, chunks);
    assert_eq!(queue.messages().len(), before);
    let view = progress::job(&store, &profile(), OWNER, &job.job_id)
        .await
        .unwrap();
    let admission = view.admission.clone().unwrap();
    assert_eq!(
        (admission.state, admission.pending),
        ("admitting", u64::from(n))
    );
    assert!(!view.done);
    assert!(
        view.expected_finish.is_some(),
        "guests to admit are still to leave"
    );

    let outcomes = admit_all(&store, &queue).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, ChunkOutcome::Admitted(_)))
    );
    let job = store.get_job(&job.job_id).await.unwrap().unwrap();
    assert_eq!(job.total, u64::from(n) - 1, "guest 3 is left out");
    assert_eq!(job.count(Status::Queued), i64::from(n) - 2);
    assert_eq!(job.count(Status::Skipped), 1);
    let admission = job.admission.clone().unwrap();
    assert_eq!((admission.left_out, admission.chunks_done), (1, chunks));
    // Each queued invitation enqueued once; guest 3's earlier one untouched.
    let sent: Vec<_> = queue.messages()[before..].to_vec();
    assert_eq!(sent.len() as i64, job.count(Status::Queued));
    let skipped = store
        .get_invitation(&InvitationId::for_guest(&job.job_id, &guest(2).guest_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(skipped.error_code.as_deref(), Some(OPTED_OUT.code));
    let listed = store
        .get_guests(OWNER, &plan.event.event_id, &[guest(3).guest_id])
        .await
        .unwrap();
    assert_eq!(
        listed[0].invitation_id,
        Some(earlier.invitations[0].invitation_id.clone())
    );
    let view = progress::job(&store, &profile(), OWNER, &job.job_id)
        .await
        .unwrap();
    let admission = view.admission.unwrap();
    assert_eq!((admission.state, admission.pending), ("admitted", 0));
}

#[tokio::test]
async fn a_chunk_delivered_again_changes_nothing() {
    let (store, queue, plan, guests) = given(INLINE_GUESTS as u32 + 1).await;
    let job = accept(&store, &queue, &plan, guests, NewJob::Fresh, false)
        .await
        .unwrap();
    let messages = queue.chunks();
    admit_all(&store, &queue).await;
    let counted = store.get_job(&job.job_id).await.unwrap().unwrap();
    let enqueued = queue.messages().len();
    for message in &messages {
        let again = admit_chunk(&store, &queue, message).await.unwrap();
        assert_eq!(again, ChunkOutcome::AlreadyDone);
    }
    assert_eq!(store.get_job(&job.job_id).await.unwrap().unwrap(), counted);
    assert_eq!(queue.messages().len(), enqueued);
}

#[tokio::test]
async fn a_try_that_stopped_part_way_is_finished_without_writing_an_invitation_twice() {
    let (store, queue, plan, guests) = given(INLINE_GUESTS as u32 + 1).await;
    let job = accept(&store, &queue, &plan, guests.clone(), NewJob::Fresh, false)
        .await
        .unwrap();
    // The first try wrote the first chunk's invitations and stopped before
    // counting them; one of them has been claimed since (reconciliation
    // enqueued it).
    let first = &guests[..CHUNK_GUESTS];
    let admitted = send::admit_guests(
        &store,
        send::Admit {
            owner: OWNER,
            event_id: &plan.event.event_id,
            template: &plan.template,
            job_id: &job.job_id,
            resend: false,
            may_exist: true,
        },
        first.to_vec(),
        &now(),
    )
    .await
    .unwrap();
    let on_its_way: &Invitation = &admitted.invitations[0];
    assert!(
        store
            .transition(&Transition {
                invitation_id: on_its_way.invitation_id.clone(),
                job_id: job.job_id.clone(),
                attempt: 1,
                from: Status::Queued,
                to: Status::Sending,
                at: now(),
                new_attempt: None,
                message_sid: None,
                error: None,
                clear_flag: false,
                due_at: None,
                renew: None,
            })
            .await
            .unwrap()
    );

    admit_all(&store, &queue).await;
    let job = store.get_job(&job.job_id).await.unwrap().unwrap();
    assert_eq!(job.total, INLINE_GUESTS as u64 + 1);
    assert_eq!(
        job.admission.as_ref().unwrap().left_out,
        0,
        "its own invitations hold no one out"
    );
    assert_eq!(
        (job.count(Status::Sending), job.count(Status::Queued)),
        (1, job.total as i64 - 1)
    );
    let kept = store
        .get_invitation(&on_its_way.invitation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.status, Status::Sending);
    assert_eq!(
        kept.answer_secret, on_its_way.answer_secret,
        "never written again"
    );
}

#[tokio::test]
async fn a_repeated_request_resumes_its_job_and_undone_chunks_are_enqueued_again() {
    let (store, queue, plan, guests) = given(INLINE_GUESTS as u32 + 1).await;
    let id = JobId::generate();
    let job = accept(
        &store,
        &queue,
        &plan,
        guests.clone(),
        NewJob::Resumable(id.clone()),
        false,
    )
    .await
    .unwrap();
    assert_eq!(job.job_id, id);
    // Its messages were lost.
    queue.take_chunks();
    let again = accept(
        &store,
        &queue,
        &plan,
        guests,
        NewJob::Resumable(id.clone()),
        false,
    )
    .await
    .unwrap();
    assert_eq!(again.job_id, id);
    assert_eq!(
        queue.take_chunks().len(),
        2,
        "enqueued again, not written again"
    );
    // Lost again: reconciliation finds them once they are old enough.
    assert_eq!(
        requeue_stalled(&store, &queue, "2000-01-01T00:00:00.000Z")
            .await
            .unwrap(),
        0
    );
    let later =
        crate::domain::timestamp(time::OffsetDateTime::now_utc() + time::Duration::minutes(1));
    assert_eq!(requeue_stalled(&store, &queue, &later).await.unwrap(), 2);
    admit_all(&store, &queue).await;
    assert!(!store.get_job(&id).await.unwrap().unwrap().is_admitting());
    assert_eq!(requeue_stalled(&store, &queue, &later).await.unwrap(), 0);
}

#[tokio::test]
async fn a_chunk_of_a_job_never_written_is_missing() {
    let store = MemoryStore::new();
    let queue = MemoryQueue::new();
    let message = ChunkMessage {
        job_id: JobId::generate(),
        chunk: 0,
    };
    assert_eq!(
        admit_chunk(&store, &queue, &message).await.unwrap(),
        ChunkOutcome::Missing
    );
}

#[test]
fn an_instance_rests_what_its_share_leaves_of_a_second() {
    let fast = rest_after(200, 200, Duration::from_millis(300));
    assert_eq!(fast, Duration::from_millis(700));
    assert_eq!(rest_after(200, 200, Duration::from_secs(2)), Duration::ZERO);
    assert_eq!(
        rest_after(100, 200, Duration::ZERO),
        Duration::from_millis(500)
    );
}
