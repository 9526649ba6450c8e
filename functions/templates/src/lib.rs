//! Message templates an organizer manages:
//! `POST/GET /api/whatsapp/templates`,
//! `GET/PUT /api/whatsapp/templates/{templateId}` (each PUT a new version),
//! `POST /api/whatsapp/templates/{templateId}/preview` (renders, sends nothing).

use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::app::{send, templates};
use shared::domain::render::{
    self, DEFAULT_TEMPLATE_ID, MAX_BODY_CHARS, TemplateContext, TemplateError, VARIABLES,
};
use shared::domain::{
    EventId, GuestInput, MessageTemplate, TemplateId, TemplateInput, TemplateRef,
};
use shared::domain::{MessageContent, now};
use shared::edge::http::{self, ApiError, ApiResult};
use shared::ports::{EventStore, TemplateStore};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Text of up to 4096 characters, and up to 50 Content variables.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Writers racing on one template before a PUT gives up with 409.
const MAX_RACES: usize = 5;

/// Templates, and events (a preview renders for one).
pub trait TemplatesStore: TemplateStore + EventStore {}
impl<T: TemplateStore + EventStore + ?Sized> TemplatesStore for T {}

pub struct Deps {
    pub store: Arc<dyn TemplatesStore>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(route(deps, req).await)
}

async fn route(deps: &Deps, req: Request) -> ApiResult {
    let owner = http::organizer(&req)?;
    let has_id = http::has_path_param(&req, "templateId");
    match (req.method().as_str(), has_id) {
        ("POST", false) => create(deps, &owner, &req).await,
        ("GET", false) => list(deps, &owner).await,
        ("GET", true) => get(deps, &owner, &req).await,
        ("PUT", true) => update(deps, &owner, &req).await,
        // The only POST with an id is .../preview.
        ("POST", true) => preview(deps, &owner, &req).await,
        _ => Err(ApiError::NotFound("route".into())),
    }
}

fn template_id(req: &Request) -> Result<TemplateId, ApiError> {
    http::path_param(req, "templateId", TemplateId::parse)
}

async fn create(deps: &Deps, owner: &str, req: &Request) -> ApiResult {
    let mut input: TemplateInput = http::parse_json(req, MAX_BODY_BYTES)?;
    let id = match input.template_id.take().map(|t| t.trim().to_owned()) {
        Some(t) if !t.is_empty() => {
            TemplateId::parse(&t).map_err(|e| ApiError::invalid("template_id", e))?
        }
        _ => TemplateId::generate(),
    };
    let now = now();
    let template = input.parse(id.clone(), owner, 1, &now, &now)?;
    let exists = || {
        ApiError::Conflict(format!(
            "template '{id}' exists; PUT /api/whatsapp/templates/{id} writes a new version"
        ))
    };
    // `default` always exists (this seeds it).
    if templates::current(deps.store.as_ref(), owner, &id)
        .await?
        .is_some()
    {
        return Err(exists());
    }
    if !deps.store.put_template(&template, None).await? {
        return Err(exists());
    }
    tracing::info!(template_id = %id, "template created");
    Ok(http::json(201, &template))
}

async fn update(deps: &Deps, owner: &str, req: &Request) -> ApiResult {
    let id = template_id(req)?;
    let mut input: TemplateInput = http::parse_json(req, MAX_BODY_BYTES)?;
    if let Some(given) = input.template_id.take()
        && given.trim() != id.as_str()
    {
        return Err(ApiError::invalid(
            "template_id",
            "cannot be changed; leave it out",
        ));
    }
    for _ in 0..MAX_RACES {
        let current = templates::current(deps.store.as_ref(), owner, &id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("template {id}")))?;
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
        if deps
            .store
            .put_template(&next, Some(current.version))
            .await?
        {
            tracing::info!(template_id = %id, version = next.version, "template updated");
            return Ok(http::json(200, &next));
        }
    }
    Err(ApiError::Conflict(format!(
        "template {id} kept changing; reload it and try again"
    )))
}

fn version_query(req: &Request) -> Result<Option<u32>, ApiError> {
    http::query_param(req, "version")
        .map(|raw| {
            raw.parse::<u32>()
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| ApiError::invalid("version", "must be a whole number from 1"))
        })
        .transpose()
}

async fn find(
    deps: &Deps,
    owner: &str,
    id: TemplateId,
    version: Option<u32>,
) -> Result<MessageTemplate, ApiError> {
    let store = deps.store.as_ref();
    let found = match version {
        None => templates::current(store, owner, &id).await?,
        Some(version) => {
            let reference = TemplateRef {
                template_id: id.clone(),
                version,
            };
            templates::version(store, owner, &reference).await?
        }
    };
    found.ok_or_else(|| match version {
        None => ApiError::NotFound(format!("template {id}")),
        Some(v) => ApiError::NotFound(format!("version {v} of template {id}")),
    })
}

async fn get(deps: &Deps, owner: &str, req: &Request) -> ApiResult {
    let id = template_id(req)?;
    let version = version_query(req)?;
    let template = find(deps, owner, id, version).await?;
    Ok(http::json(200, &template))
}

async fn list(deps: &Deps, owner: &str) -> ApiResult {
    let default = TemplateId::parse(DEFAULT_TEMPLATE_ID).expect("a valid id");
    // Seeds `default`, so every organizer's list starts with it.
    templates::current(deps.store.as_ref(), owner, &default).await?;
    let mut items = deps.store.list_templates(owner).await?;
    items.sort_by(|a, b| a.template_id.cmp(&b.template_id));
    Ok(http::json(
        200,
        &serde_json::json!({ "items": items, "variables": VARIABLES }),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    event_id: Option<String>,
    guest: Option<GuestInput>,
    /// A version other than the current one.
    version: Option<u32>,
}

/// What a guest would receive, exactly as the sender would send it.
#[derive(Serialize)]
struct Preview {
    template_id: TemplateId,
    version: u32,
    event_id: EventId,
    guest_id: String,
    /// The message text (a free-form template), else null.
    body: Option<String>,
    /// The body's length in characters, which WhatsApp limits.
    length: Option<usize>,
    max_length: usize,
    content_sid: Option<String>,
    content_variables: Option<BTreeMap<String, String>>,
}

async fn preview(deps: &Deps, owner: &str, req: &Request) -> ApiResult {
    let id = template_id(req)?;
    let input: PreviewRequest = http::parse_json(req, 16 * 1024)?;
    let event_id = http::required("event_id", input.event_id, EventId::parse)?;
    let guest = input
        .guest
        .ok_or_else(|| ApiError::invalid("guest", "is required"))?
        .parse("guest.")?;
    if input.version == Some(0) {
        return Err(ApiError::invalid(
            "version",
            "must be a whole number from 1",
        ));
    }
    let template = find(deps, owner, id, input.version).await?;
    let event = send::event_named(deps.store.as_ref(), owner, &event_id).await?;
    let context = TemplateContext::new(&event, &guest);
    let content = render::render_message(&template, &context).map_err(|e| match e.error {
        TemplateError::TooLong(_) => {
            ApiError::invalid(e.field, format!("for this guest and event, {}", e.error))
        }
        other => ApiError::Internal(format!("a saved template does not render: {other}")),
    })?;
    let (body, content_sid, content_variables) = match content {
        MessageContent::Body(body) => (Some(body), None, None),
        MessageContent::Template {
            content_sid,
            variables,
        } => (None, Some(content_sid), Some(variables)),
    };
    Ok(http::json(
        200,
        &Preview {
            template_id: template.template_id,
            version: template.version,
            event_id,
            guest_id: guest.guest_id.to_string(),
            length: body.as_ref().map(|b| b.chars().count()),
            body,
            max_length: MAX_BODY_CHARS,
            content_sid,
            content_variables,
        },
    ))
}
