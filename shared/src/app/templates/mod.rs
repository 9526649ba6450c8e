//! Which template (version) a send uses. `default` (and `default-reminder`) exist
//! for every organizer: each is seeded the first time it is asked for. What
//! an organizer does with their templates is [`library`]'s.

pub mod library;

use crate::app::AppError;
use crate::domain::render::{DEFAULT_TEMPLATE_ID, builtin};
use crate::domain::{Event, MessageTemplate, TemplateId, TemplateRef, now};
use crate::ports::{StoreError, TemplateStore};

/// The current version of a template. `default` is written (seeded) the
/// first time it is asked for, so it is listed and versioned like any other.
pub async fn current(
    store: &dyn TemplateStore,
    owner: &str,
    id: &TemplateId,
) -> Result<Option<MessageTemplate>, StoreError> {
    if let Some(found) = store.get_template(owner, id, None).await? {
        return Ok(Some(found));
    }
    let Some(seed) = builtin(id, owner, &now()) else {
        return Ok(None);
    };
    if !store.put_template(&seed, None).await? {
        // Seeded by another request meanwhile.
        return store.get_template(owner, id, None).await;
    }
    Ok(Some(seed))
}

/// One version of a template (what an invitation recorded). Version 1 of
/// `default` is the built-in text whether or not it was ever seeded.
pub async fn version(
    store: &dyn TemplateStore,
    owner: &str,
    reference: &TemplateRef,
) -> Result<Option<MessageTemplate>, StoreError> {
    let found = store
        .get_template(owner, &reference.template_id, Some(reference.version))
        .await?;
    if found.is_none() && reference.version == 1 {
        return Ok(builtin(&reference.template_id, owner, &now()));
    }
    Ok(found)
}

/// The template a send uses, at its current version: the request's, else
/// the event's default, else `default`.
pub async fn choose(
    store: &dyn TemplateStore,
    owner: &str,
    requested: Option<&TemplateId>,
    event: &Event,
) -> Result<MessageTemplate, AppError> {
    let default = TemplateId::parse(DEFAULT_TEMPLATE_ID).expect("a valid id");
    let id = requested
        .or(event.default_template_id.as_ref())
        .unwrap_or(&default);
    match current(store, owner, id).await? {
        Some(template) => Ok(template),
        None if requested.is_none() => {
            // The event names a template that is gone: fall back, loudly.
            tracing::warn!(event_id = %event.event_id, template_id = %id, "event's default template missing; using the built-in default");
            current(store, owner, &default)
                .await?
                .ok_or_else(|| unknown(&default))
        }
        None => Err(unknown(id)),
    }
}

fn unknown(id: &TemplateId) -> AppError {
    AppError::invalid("template_id", format!("no template '{id}'"))
}

/// The template a send request names, if any (whether it exists is
/// [`choose`]'s to say).
pub fn requested(raw: Option<String>) -> Result<Option<TemplateId>, AppError> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(id) => TemplateId::parse(id)
            .map(Some)
            .map_err(|e| AppError::invalid("template_id", e)),
    }
}
