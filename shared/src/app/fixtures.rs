//! Shared fixtures for the use cases' unit tests, on the in-memory store.

use crate::adapters::memory::{MemoryQueue, MemoryStore};
use crate::app::send::{self, NewJob, Plan};
use crate::domain::render::builtin_default;
use crate::domain::{Event, EventId, EventInput, Guest, GuestInput, Invitation, Job, JobId, now};
use crate::ports::{EventStore, GuestStore, JobStore};

pub const OWNER: &str = "organizer-1";

pub fn event() -> Event {
    EventInput {
        name: Some("Gala".into()),
        starts_at: Some("2027-05-01T17:00:00-03:00".into()),
        venue: Some("Casa Rosa".into()),
        host: Some("Marina".into()),
        rsvp_base_url: Some("https://rsvp.example.com/r/".into()),
        ..Default::default()
    }
    .parse(EventId::parse("gala").unwrap(), OWNER, &now())
    .unwrap()
}

pub fn guest(n: u32) -> Guest {
    GuestInput {
        guest_id: Some(format!("g{n}")),
        name: Some(format!("Guest {n}")),
        phone: Some(format!("+55119999{n:05}")),
        rsvp_token: None,
    }
    .parse("")
    .unwrap()
}

/// A store holding [`event`], and an empty queue.
pub async fn with_event() -> (MemoryStore, MemoryQueue, Event) {
    let store = MemoryStore::new();
    let event = event();
    store.put_event(&event).await.unwrap();
    (store, MemoryQueue::new(), event)
}

/// A store holding [`event`] and one job of `n` queued invitations (guests
/// 1 to `n`) written at `at`, and an empty queue.
pub async fn queued_job(n: u32, at: &str) -> (MemoryStore, MemoryQueue, Vec<Invitation>) {
    let (store, queue, event) = with_event().await;
    let job_id = JobId::generate();
    let invitations: Vec<Invitation> = (1..=n)
        .map(|i| {
            Invitation::new_queued(
                event.event_id.clone(),
                job_id.clone(),
                OWNER,
                guest(i),
                None,
                at,
            )
        })
        .collect();
    // On the list, as a send leaves them (the sender checks the list).
    let guests: Vec<Guest> = invitations.iter().map(|i| i.guest.clone()).collect();
    store
        .put_guests(OWNER, &event.event_id, &guests, at)
        .await
        .unwrap();
    let job = Job::of(job_id, event.event_id, OWNER, &invitations, at);
    store.create_job(&job, &invitations).await.unwrap();
    (store, queue, invitations)
}

/// A store holding [`event`] and guests 1 to `n` invited to it through
/// the send pipeline (on the list, their invitations queued), and the
/// queue the invitations went to.
pub async fn invited(n: u32) -> (MemoryStore, MemoryQueue, Vec<Invitation>) {
    let (store, queue, event) = with_event().await;
    let plan = Plan {
        template: builtin_default(OWNER, &now()),
        event,
    };
    let guests = (1..=n).map(guest).collect();
    let sent = send::send(&store, &queue, plan, guests, NewJob::Fresh, false)
        .await
        .unwrap();
    (store, queue, sent.invitations)
}

/// Writes `inv` with a job of its own and its guest on the list (as the
/// send pipeline would have).
pub async fn written(store: &MemoryStore, inv: &Invitation) {
    store
        .put_guests(
            &inv.owner,
            &inv.event_id,
            std::slice::from_ref(&inv.guest),
            &now(),
        )
        .await
        .unwrap();
    let job = Job::of(
        inv.job_id.clone(),
        inv.event_id.clone(),
        OWNER,
        std::slice::from_ref(inv),
        &now(),
    );
    store
        .create_job(&job, std::slice::from_ref(inv))
        .await
        .unwrap();
}
