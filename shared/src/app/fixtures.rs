//! Shared fixtures for the use cases' unit tests, on the in-memory store.

use crate::adapters::memory::{MemoryQueue, MemoryStore};
use crate::domain::{Event, EventId, EventInput, Guest, GuestInput, now};
use crate::ports::EventStore;

pub const OWNER: &str = "organizer-1";

pub fn event() -> Event {
    EventInput {
        name: Some("Gala".into()),
        starts_at: Some("2027-05-01T17:00:00-03:00".into()),
        venue: Some("Casa Rosa".into()),
        host: Some("Marina".into()),
        rsvp_base_url: Some("https://rsvp.example.com/r/".into()),
        default_template_id: None,
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
