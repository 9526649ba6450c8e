//! Progress: `GET /api/whatsapp/status/{jobId}` (from the job's counters,
//! never a scan, with when it will finish under the sender's limits) and
//! `GET /api/whatsapp/invitations/{eventId}` (per guest, paged, filtered by
//! status). The decisions are [`shared::app::progress`]'s.

use lambda_http::{Body, Request, Response};
use shared::app::progress::{self, ProgressStore};
use shared::domain::budget::SenderProfile;
use shared::domain::{EventId, JobId, Status};
use shared::edge::http::{self, ApiError, ApiResult};
use shared::ports::{ErrorCodes, ListQuery};
use std::sync::Arc;

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

pub struct Deps {
    pub store: Arc<dyn ProgressStore>,
    /// The WhatsApp sender's limits, which decide when a job finishes.
    pub profile: SenderProfile,
    /// What the provider's error codes mean.
    pub codes: &'static dyn ErrorCodes,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    let result = if http::has_path_param(&req, "jobId") {
        job_status(deps, &req).await
    } else {
        list_invitations(deps, &req).await
    };
    http::respond(result)
}

async fn job_status(deps: &Deps, req: &Request) -> ApiResult {
    let owner = http::organizer(req)?;
    let job_id = http::path_param(req, "jobId", JobId::parse)?;
    let view = progress::job(deps.store.as_ref(), &deps.profile, &owner, &job_id).await?;
    Ok(http::json(200, &view))
}

async fn list_invitations(deps: &Deps, req: &Request) -> ApiResult {
    let owner = http::organizer(req)?;
    let event_id = http::path_param(req, "eventId", EventId::parse)?;
    let status = http::query_param(req, "status")
        .map(str::parse::<Status>)
        .transpose()
        .map_err(|e| ApiError::invalid("status", e))?;
    let query = ListQuery {
        owner,
        event_id,
        status,
        limit: http::page_limit(req, DEFAULT_PAGE, MAX_PAGE)?,
        cursor: http::query_param(req, "cursor").map(str::to_owned),
    };
    let page = progress::invitations(deps.store.as_ref(), deps.codes, query).await?;
    Ok(http::json_compressed(req, 200, &page))
}
