//! Message templates an organizer manages:
//! `POST/GET /api/whatsapp/templates`,
//! `GET/PUT /api/whatsapp/templates/{templateId}` (each PUT a new version),
//! `POST /api/whatsapp/templates/{templateId}/preview` (renders, sends
//! nothing). The decisions are [`shared::app::templates::library`]'s.

use lambda_http::{Body, Request, Response};
use shared::app::templates::library::{self, PreviewRequest, TemplatesStore};
use shared::domain::{TemplateId, TemplateInput};
use shared::edge::http::{self, ApiError, ApiResult};
use shared::ports::ContentLibrary;
use std::sync::Arc;

/// Text of up to 1,600 characters, and up to 50 Content variables.
const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_PREVIEW_BYTES: usize = 16 * 1024;

pub struct Deps {
    pub store: Arc<dyn TemplatesStore>,
    /// The provider's Content templates, read for previews.
    pub content: Arc<dyn ContentLibrary>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(route(deps, req).await)
}

async fn route(deps: &Deps, req: Request) -> ApiResult {
    let owner = http::organizer(&req)?;
    let store = deps.store.as_ref();
    let id = || http::path_param(&req, "templateId", TemplateId::parse);
    match (
        req.method().as_str(),
        http::has_path_param(&req, "templateId"),
    ) {
        ("POST", false) => {
            let input: TemplateInput = http::parse_json(&req, MAX_BODY_BYTES)?;
            Ok(http::json(
                201,
                &library::create(store, &owner, input).await?,
            ))
        }
        ("GET", false) => Ok(http::json(200, &library::list(store, &owner).await?)),
        ("GET", true) => {
            let id = id()?;
            let version = library::parse_version(http::query_param(&req, "version"))?;
            Ok(http::json(
                200,
                &library::find(store, &owner, id, version).await?,
            ))
        }
        ("PUT", true) => {
            let id = id()?;
            let input: TemplateInput = http::parse_json(&req, MAX_BODY_BYTES)?;
            Ok(http::json(
                200,
                &library::update(store, &owner, &id, input).await?,
            ))
        }
        // The only POST with an id is .../preview.
        ("POST", true) => {
            let id = id()?;
            let input: PreviewRequest = http::parse_json(&req, MAX_PREVIEW_BYTES)?;
            Ok(http::json(
                200,
                &library::preview(store, Some(deps.content.as_ref()), &owner, id, input).await?,
            ))
        }
        _ => Err(ApiError::NotFound("route".into())),
    }
}
