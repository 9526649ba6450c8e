//! `POST /api/whatsapp/send-bulk`: up to 10,000 guests in one request.
//! Bad guests come back in the 202 answer (index, field, reason); the good
//! ones are written and queued; `"dry_run": true` answers 200 with what the
//! send would do. An `Idempotency-Key` makes a repeated request return the
//! first answer. The decisions are [`shared::app::send_bulk`]'s.

use lambda_http::{Body, Request, Response};
use shared::app::send_bulk::{self, Answer, BulkRequest};
use shared::edge::http::{self, ApiResult};

pub use shared::app::send_bulk::Deps;

/// Lambda's synchronous payload limit.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    http::respond(send(deps, &req).await)
}

async fn send(deps: &Deps, req: &Request) -> ApiResult {
    let owner = http::organizer(req)?;
    let input: BulkRequest = http::parse_json(req, MAX_BODY_BYTES)?;
    let key = req
        .headers()
        .get(IDEMPOTENCY_HEADER)
        .map(|v| v.to_str().unwrap_or_default());
    let answer = send_bulk::send_bulk(deps, &owner, input, key, http::raw_body(req)).await?;
    Ok(match answer {
        Answer::DryRun(body) => http::json(200, &body),
        Answer::Queued(body) => http::json(202, &body),
    })
}
