//! Whether a WhatsApp number may be messaged:
//! `GET /api/whatsapp/opt-outs/{phone}`, `PUT` (opt it out), `DELETE` (lift
//! an opt-out an organizer made). `{phone}` is E.164, its `+` as is,
//! percent-encoded (`%2B`) or left out. `POST /api/whatsapp/opt-outs/lookup`
//! answers up to 1,000 numbers at once. Who may know and lift what is
//! [`shared::app::opt_outs`]'s.

use lambda_http::{Body, Request, Response};
use shared::app::opt_outs::{self, parse_phone};
use shared::edge::http::{self, ApiError, ApiResult};
use shared::ports::OptOutStore;
use std::sync::Arc;

pub use shared::domain::opt_out::MAX_LOOKUP;

/// A lookup's body: 1,000 numbers in any form, with room to spare.
const LOOKUP_BODY_BYTES: usize = 256 * 1024;

pub struct Deps {
    pub store: Arc<dyn OptOutStore>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Lookup {
    phones: Option<Vec<serde_json::Value>>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(route(deps, req).await)
}

async fn route(deps: &Deps, req: Request) -> ApiResult {
    let owner = http::organizer(&req)?;
    let store = deps.store.as_ref();
    if req.method() == "POST" {
        let input: Lookup = http::parse_json(&req, LOOKUP_BODY_BYTES)?;
        let found = opt_outs::lookup(store, &owner, input.phones).await?;
        return Ok(http::json(200, &found));
    }
    let phone = http::decoded_path_param(&req, "phone", parse_phone)?;
    let view = match req.method().as_str() {
        "GET" => opt_outs::view(store, &owner, &phone).await?,
        "PUT" => opt_outs::opt_out(store, &owner, &phone).await?,
        "DELETE" => opt_outs::lift(store, &owner, &phone).await?,
        _ => return Err(ApiError::NotFound("route".into())),
    };
    Ok(http::json(200, &view))
}
