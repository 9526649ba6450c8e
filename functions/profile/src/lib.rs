//! What the stack is: `GET /api/whatsapp/sender` (the WhatsApp sender every
//! organizer shares: its rate, daily limit and how much of the window is
//! used) and `GET /api/whatsapp/facts` (the statuses, flags, reasons and
//! limits the API speaks in, for a client to show instead of copying).

use lambda_http::{Body, Request, Response};
use shared::app::{facts, progress};
use shared::domain::budget::SenderProfile;
use shared::edge::http::{self, ApiResult};
use shared::edge::routes::FACTS_PATH;
use shared::ports::BudgetStore;
use std::sync::Arc;

pub struct Deps {
    pub store: Arc<dyn BudgetStore>,
    /// The WhatsApp sender's limits (the operator's, read-only here).
    pub profile: SenderProfile,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(answer(deps, &req).await)
}

async fn answer(deps: &Deps, req: &Request) -> ApiResult {
    http::organizer(req)?;
    if req
        .uri()
        .path()
        .ends_with(FACTS_PATH.trim_start_matches("/api/whatsapp"))
    {
        return Ok(http::json(200, &facts::facts()));
    }
    let view = progress::sender(deps.store.as_ref(), &deps.profile).await?;
    Ok(http::json(200, &view))
}
