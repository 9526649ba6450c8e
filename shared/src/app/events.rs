//! An organizer's events: written whole (an event may name its default
//! template, which must exist), read one, or all by when they start.

use crate::app::{AppError, templates};
use crate::domain::{Event, EventId, EventInput, now};
use crate::ports::{EventStore, TemplateStore};

/// Events, and templates (an event may name its default one).
pub trait EventsStore: EventStore + TemplateStore {}
impl<T: EventStore + TemplateStore + ?Sized> EventsStore for T {}

/// An event as the API shows it: as defined, and when its reminder
/// schedule runs next.
#[derive(Debug, serde::Serialize)]
pub struct EventView {
    #[serde(flatten)]
    pub event: Event,
    /// RFC 3339 in the event's offset; None when no reminder time is ahead.
    pub next_reminder_at: Option<String>,
}

impl EventView {
    pub fn at(event: Event, now: time::OffsetDateTime) -> Self {
        let next_reminder_at = event.next_reminder_after(now).and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
        EventView {
            event,
            next_reminder_at,
        }
    }

    pub fn now(event: Event) -> Self {
        Self::at(event, time::OffsetDateTime::now_utc())
    }
}

/// Whether a put made the event or changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    Replaced,
}

pub async fn put(
    store: &dyn EventsStore,
    owner: &str,
    event_id: EventId,
    input: EventInput,
) -> Result<(Put, Event), AppError> {
    let existed = store.get_event(owner, &event_id).await?.is_some();
    let event = input.parse(event_id, owner, &now())?;
    if let Some(template_id) = &event.default_template_id
        && templates::current(store, owner, template_id)
            .await?
            .is_none()
    {
        return Err(AppError::invalid(
            "default_template_id",
            format!("no template '{template_id}'"),
        ));
    }
    store.put_event(&event).await?;
    let put = if existed { Put::Replaced } else { Put::Created };
    Ok((put, event))
}

pub async fn get(store: &dyn EventsStore, owner: &str, id: &EventId) -> Result<Event, AppError> {
    crate::app::event(store, owner, id).await
}

/// The organizer's events, by when they start.
pub async fn list(store: &dyn EventsStore, owner: &str) -> Result<Vec<Event>, AppError> {
    let mut events = store.list_events(owner).await?;
    // By instant: the texts carry different offsets.
    events.sort_by_key(|e| e.starts_at_instant());
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;

    fn input(starts_at: &str, template: Option<&str>) -> EventInput {
        EventInput {
            name: Some("Gala".into()),
            starts_at: Some(starts_at.into()),
            venue: Some("Casa Rosa".into()),
            host: Some("Marina".into()),
            default_template_id: template.map(str::to_owned),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn given_events_then_a_put_says_created_or_replaced_and_the_list_is_by_start() {
        let store = MemoryStore::new();
        let late = EventId::parse("late").unwrap();
        let early = EventId::parse("early").unwrap();
        let (put_late, _) = put(
            &store,
            "o",
            late.clone(),
            input("2027-05-01T17:00:00-03:00", None),
        )
        .await
        .unwrap();
        assert_eq!(put_late, Put::Created);
        // 16:00 in London is earlier than 17:00 in São Paulo.
        put(&store, "o", early, input("2027-05-01T16:00:00+00:00", None))
            .await
            .unwrap();
        let (again, _) = put(
            &store,
            "o",
            late.clone(),
            input("2027-05-01T17:00:00-03:00", None),
        )
        .await
        .unwrap();
        assert_eq!(again, Put::Replaced);
        let order: Vec<String> = list(&store, "o")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_id.to_string())
            .collect();
        assert_eq!(order, ["early", "late"]);
        assert!(matches!(
            get(&store, "another", &late).await,
            Err(AppError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn given_an_unknown_default_template_then_the_field_is_named_and_nothing_written() {
        let store = MemoryStore::new();
        let id = EventId::parse("gala").unwrap();
        let refused = put(
            &store,
            "o",
            id.clone(),
            input("2027-05-01T17:00:00-03:00", Some("nope")),
        )
        .await;
        let Err(AppError::Invalid(e)) = refused else {
            panic!("refused")
        };
        assert_eq!(e.field, "default_template_id");
        assert!(matches!(
            get(&store, "o", &id).await,
            Err(AppError::NotFound(_))
        ));
    }
}
