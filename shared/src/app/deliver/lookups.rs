//! Reads a batch's records share. Records in one batch mostly belong to one
//! bulk send, so the event and template version are read once per batch,
//! not once per record (and once per reconciliation run).

use crate::app::templates;
use crate::domain::{Event, EventId, MessageTemplate, TemplateRef};
use crate::ports::{EventStore, StoreError, TemplateStore};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// One value per key, computed once even when records ask at the same time.
struct Memo<K, V> {
    cells: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    fn new() -> Self {
        Self {
            cells: Mutex::new(HashMap::new()),
        }
    }

    async fn get<F, Fut>(&self, key: K, load: F) -> Result<V, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, StoreError>>,
    {
        let cell = self
            .cells
            .lock()
            .expect("memo lock")
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_try_init(load).await.cloned()
    }
}

pub struct BatchLookups {
    events: Memo<(String, EventId), Option<Event>>,
    templates: Memo<(String, String, u32), Option<MessageTemplate>>,
}

impl Default for BatchLookups {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchLookups {
    pub fn new() -> Self {
        Self {
            events: Memo::new(),
            templates: Memo::new(),
        }
    }

    pub async fn event(
        &self,
        store: &dyn EventStore,
        owner: &str,
        id: &EventId,
    ) -> Result<Option<Event>, StoreError> {
        self.events
            .get((owner.to_owned(), id.clone()), || {
                store.get_event(owner, id)
            })
            .await
    }

    pub async fn template(
        &self,
        store: &dyn TemplateStore,
        owner: &str,
        reference: &TemplateRef,
    ) -> Result<Option<MessageTemplate>, StoreError> {
        let key = (
            owner.to_owned(),
            reference.template_id.as_str().to_owned(),
            reference.version,
        );
        self.templates
            .get(key, || templates::version(store, owner, reference))
            .await
    }
}
