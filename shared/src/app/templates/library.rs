//! An organizer's message templates: create one, write a new version (each
//! change is one; the current version moves only if no other writer got
//! there first), read one or a version, list them (`default` always
//! first seeded), and preview exactly what a guest would receive.

use super::{current, version};
use crate::app::{AppError, send};
use crate::domain::render::{
    self, DEFAULT_TEMPLATE_ID, MAX_BODY_CHARS, TemplateContext, TemplateError, VARIABLES,
};
use crate::domain::{
    ContentDefinition, EventId, GuestInput, MessageContent, MessageTemplate, TemplateId,
    TemplateInput, TemplateRef, now,
};
use crate::ports::{ContentLibrary, EventStore, TemplateStore};
use serde::Serialize;
use std::collections::BTreeMap;

/// Writers racing on one template before an update gives up with a conflict.
const MAX_RACES: usize = 5;

/// Templates, and events (a preview renders for one).
pub trait TemplatesStore: TemplateStore + EventStore {}
impl<T: TemplateStore + EventStore + ?Sized> TemplatesStore for T {}

/// Creates a template (version 1); its id is given or made.
pub async fn create(
    store: &dyn TemplatesStore,
    owner: &str,
    mut input: TemplateInput,
) -> Result<MessageTemplate, AppError> {
    let id = match input.template_id.take().map(|t| t.trim().to_owned()) {
        Some(t) if !t.is_empty() => {
            TemplateId::parse(&t).map_err(|e| AppError::invalid("template_id", e))?
        }
        _ => TemplateId::generate(),
    };
    let now = now();
    let template = input.parse(id.clone(), owner, 1, &now, &now)?;
    let exists = || {
        AppError::Conflict(format!(
            "template '{id}' exists; PUT /api/whatsapp/templates/{id} writes a new version"
        ))
    };
    // `default` always exists (this seeds it).
    if current(store, owner, &id).await?.is_some() {
        return Err(exists());
    }
    if !store.put_template(&template, None).await? {
        return Err(exists());
    }
    tracing::info!(template_id = %id, "template created");
    Ok(template)
}

/// Writes the template's next version.
pub async fn update(
    store: &dyn TemplatesStore,
    owner: &str,
    id: &TemplateId,
    mut input: TemplateInput,
) -> Result<MessageTemplate, AppError> {
    if let Some(given) = input.template_id.take()
        && given.trim() != id.as_str()
    {
        return Err(AppError::invalid(
            "template_id",
            "cannot be changed; leave it out",
        ));
    }
    for _ in 0..MAX_RACES {
        let current = current(store, owner, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("template {id}")))?;
        let mut input = input.clone();
        // A new version without a name keeps the template's name; a Content
        // template without a category keeps its category.
        input.name = input.name.or(Some(current.name.clone()));
        if input.text.is_none() {
            input.category = input
                .category
                .or(current.category.map(|c| c.as_str().to_owned()));
        }
        let next = input.parse(
            id.clone(),
            owner,
            current.version + 1,
            &current.created_at,
            &now(),
        )?;
        if store.put_template(&next, Some(current.version)).await? {
            tracing::info!(template_id = %id, version = next.version, "template updated");
            return Ok(next);
        }
    }
    Err(AppError::Conflict(format!(
        "template {id} kept changing; reload it and try again"
    )))
}

/// A version as a client names it (a whole number from 1).
pub fn parse_version(raw: Option<&str>) -> Result<Option<u32>, AppError> {
    raw.map(|raw| {
        raw.parse::<u32>()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| AppError::invalid("version", "must be a whole number from 1"))
    })
    .transpose()
}

/// The template's current version, or the one asked for.
pub async fn find(
    store: &dyn TemplatesStore,
    owner: &str,
    id: TemplateId,
    wanted: Option<u32>,
) -> Result<MessageTemplate, AppError> {
    let found = match wanted {
        None => current(store, owner, &id).await?,
        Some(v) => {
            let reference = TemplateRef {
                template_id: id.clone(),
                version: v,
            };
            version(store, owner, &reference).await?
        }
    };
    found.ok_or_else(|| match wanted {
        None => AppError::NotFound(format!("template {id}")),
        Some(v) => AppError::NotFound(format!("version {v} of template {id}")),
    })
}

/// The organizer's templates (their current versions, by id), and the
/// variables a template may use.
pub async fn list(store: &dyn TemplatesStore, owner: &str) -> Result<serde_json::Value, AppError> {
    let default = TemplateId::parse(DEFAULT_TEMPLATE_ID).expect("a valid id");
    // Seeds `default`, so every organizer's list starts with it.
    current(store, owner, &default).await?;
    let mut items = store.list_templates(owner).await?;
    items.sort_by(|a, b| a.template_id.cmp(&b.template_id));
    Ok(serde_json::json!({ "items": items, "variables": VARIABLES }))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub event_id: Option<String>,
    pub guest: Option<GuestInput>,
    /// A version other than the current one.
    #[serde(default, deserialize_with = "crate::domain::whole_number")]
    pub version: Option<u32>,
}

/// What a guest would receive, exactly as the sender would send it.
#[derive(Debug, Serialize)]
pub struct Preview {
    pub template_id: TemplateId,
    pub version: u32,
    pub event_id: EventId,
    pub guest_id: String,
    /// The message text (a free-form template), else null.
    pub body: Option<String>,
    /// The body's length in characters, which WhatsApp limits.
    pub length: Option<usize>,
    pub max_length: usize,
    pub content_sid: Option<String>,
    pub content_variables: Option<BTreeMap<String, String>>,
    /// A Content template as the provider will render it (its text and
    /// buttons, filled for this guest), when the provider told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentDefinition>,
    /// Why `content` is missing, for a Content template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_note: Option<String>,
}

/// What a preview shows of a Content template: the provider's text and
/// buttons filled with the variables, or why they cannot be shown.
async fn content_preview(
    library: Option<&dyn ContentLibrary>,
    sid: &str,
    variables: &BTreeMap<String, String>,
) -> (Option<ContentDefinition>, Option<String>) {
    let Some(library) = library else {
        return (None, Some("the provider's text is not read here".into()));
    };
    match library.definition(sid).await {
        Ok(Some(definition)) => (Some(definition.filled(variables)), None),
        Ok(None) => (
            None,
            Some(format!(
                "Twilio has no Content template {sid}: check the SID in Twilio's Content Template Builder"
            )),
        ),
        Err(e) => {
            tracing::warn!(content_sid = %sid, error = %e, "Content template not read for a preview");
            (
                None,
                Some("Twilio's Content API did not answer; only the variables are shown".into()),
            )
        }
    }
}

/// Renders the template for a guest and event; sends nothing. A Content
/// template's text and buttons come from `library` (the provider's).
pub async fn preview(
    store: &dyn TemplatesStore,
    library: Option<&dyn ContentLibrary>,
    owner: &str,
    id: TemplateId,
    input: PreviewRequest,
) -> Result<Preview, AppError> {
    let event_id = crate::app::required("event_id", input.event_id, EventId::parse)?;
    let guest = input
        .guest
        .ok_or_else(|| AppError::invalid("guest", "is required"))?
        .parse("guest.")?;
    if input.version == Some(0) {
        return Err(AppError::invalid(
            "version",
            "must be a whole number from 1",
        ));
    }
    let template = find(store, owner, id, input.version).await?;
    let event = send::event_named(store, owner, &event_id).await?;
    let context = TemplateContext::new(&event, &guest);
    let content = render::render_message(&template, &context).map_err(|e| match e.error {
        TemplateError::TooLong(_) => {
            AppError::invalid(e.field, format!("for this guest and event, {}", e.error))
        }
        other => AppError::Internal(format!("a saved template does not render: {other}")),
    })?;
    let (body, content_sid, content_variables) = match content {
        MessageContent::Body(body) => (Some(body), None, None),
        MessageContent::Template {
            content_sid,
            variables,
        } => (None, Some(content_sid), Some(variables)),
    };
    let (content, content_note) = match (&content_sid, &content_variables) {
        (Some(sid), Some(variables)) => content_preview(library, sid, variables).await,
        _ => (None, None),
    };
    Ok(Preview {
        template_id: template.template_id,
        version: template.version,
        event_id,
        guest_id: guest.guest_id.to_string(),
        length: body.as_ref().map(|b| b.chars().count()),
        body,
        max_length: MAX_BODY_CHARS,
        content_sid,
        content_variables,
        content,
        content_note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures::{OWNER, with_event};

    fn text(name: &str, text: &str) -> TemplateInput {
        serde_json::from_value(serde_json::json!({"template_id": name, "name": name, "text": text}))
            .unwrap()
    }

    #[tokio::test]
    async fn given_a_template_when_changed_then_each_change_is_a_new_version() {
        let (store, _queue, _event) = with_event().await;
        let first = create(&store, OWNER, text("warm", "Hi {guest_name}!"))
            .await
            .unwrap();
        assert_eq!(first.version, 1);
        let again = create(&store, OWNER, text("warm", "Hello")).await;
        assert!(matches!(again, Err(AppError::Conflict(_))));
        let id = TemplateId::parse("warm").unwrap();
        let mut change = text("warm", "Hello {guest_name}");
        change.name = None;
        let second = update(&store, OWNER, &id, change).await.unwrap();
        assert_eq!((second.version, second.name.as_str()), (2, "warm"));
        let v1 = find(&store, OWNER, id.clone(), Some(1)).await.unwrap();
        assert_eq!(v1.version, 1);
        assert!(matches!(
            find(&store, OWNER, id, Some(9)).await,
            Err(AppError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn given_a_guest_and_event_then_the_preview_is_what_they_would_get() {
        let (store, _queue, _event) = with_event().await;
        create(
            &store,
            OWNER,
            text("warm", "Hi {guest_name}, see you at {event_name}!"),
        )
        .await
        .unwrap();
        let input: PreviewRequest = serde_json::from_value(serde_json::json!({
            "event_id": "gala",
            "guest": {"guest_id": "g1", "name": "Ana", "phone": "+5511999990001"}
        }))
        .unwrap();
        let id = TemplateId::parse("warm").unwrap();
        let shown = preview(&store, None, OWNER, id.clone(), input)
            .await
            .unwrap();
        assert_eq!(shown.body.as_deref(), Some("Hi Ana, see you at Gala!"));
        let no_guest = PreviewRequest {
            event_id: Some("gala".into()),
            ..Default::default()
        };
        let Err(AppError::Invalid(e)) = preview(&store, None, OWNER, id, no_guest).await else {
            panic!("refused")
        };
        assert_eq!(e.field, "guest");
    }

    /// The provider's Content templates: one with buttons.
    struct Library;

    #[async_trait::async_trait]
    impl ContentLibrary for Library {
        async fn definition(&self, sid: &str) -> Result<Option<ContentDefinition>, String> {
            Ok((sid == BUTTONS).then(|| ContentDefinition {
                kind: "twilio/quick-reply".into(),
                body: "Hi {{1}}, will you come?".into(),
                buttons: vec!["Yes".into(), "No".into()],
            }))
        }
    }

    const BUTTONS: &str = "HX00000000000000000000000000000003";

    #[tokio::test]
    async fn given_a_content_template_then_the_preview_shows_its_text_and_buttons_as_the_provider_has_them()
     {
        let (store, _queue, _event) = with_event().await;
        for (id, sid) in [
            ("buttons", BUTTONS),
            ("gone", "HX00000000000000000000000000000009"),
        ] {
            let input = serde_json::from_value(serde_json::json!({
                "template_id": id, "content_sid": sid, "content_variables": {"1": "{guest_first_name}"}
            }))
            .unwrap();
            create(&store, OWNER, input).await.unwrap();
        }
        let input = || -> PreviewRequest {
            serde_json::from_value(serde_json::json!({
                "event_id": "gala",
                "guest": {"guest_id": "g1", "name": "Ana Reis", "phone": "+5511999990001"}
            }))
            .unwrap()
        };
        let id = |t: &str| TemplateId::parse(t).unwrap();
        let shown = preview(&store, Some(&Library), OWNER, id("buttons"), input())
            .await
            .unwrap();
        let content = shown.content.expect("the provider's text");
        assert_eq!(content.body, "Hi Ana, will you come?");
        assert_eq!(content.buttons, ["Yes", "No"]);
        let gone = preview(&store, Some(&Library), OWNER, id("gone"), input())
            .await
            .unwrap();
        assert!(gone.content.is_none());
        assert!(gone.content_note.unwrap().contains("no Content template"));
    }

    #[tokio::test]
    async fn every_organizer_lists_default_first_seeded() {
        let (store, _queue, _event) = with_event().await;
        let listed = list(&store, OWNER).await.unwrap();
        assert_eq!(listed["items"][0]["template_id"], DEFAULT_TEMPLATE_ID);
        assert!(
            listed["variables"]
                .as_array()
                .is_some_and(|v| !v.is_empty())
        );
    }
}
