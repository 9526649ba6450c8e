//! `GET` and `POST /r/{token}`: the RSVP page a guest's link opens. No
//! login: the answer token in the path opens the guest's own invitation
//! (and nothing else), while its event has not started. The page shows the
//! event and the guest's answer, and records a new one. A token that opens
//! nothing, whatever the reason, gets the same 404 page; a client that
//! tried too many of those gets 429 for a while. The decisions are
//! [`shared::app::rsvp_page`]'s; [`page`] draws them.

mod page;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::app::rsvp::PageStore;
use shared::app::rsvp_page::{self, Note, Page};
use std::sync::Arc;

pub use page::CONTENT_SECURITY_POLICY;

pub struct Deps {
    pub store: Arc<dyn PageStore>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    let token = req
        .path_parameters_ref()
        .and_then(|p| p.first("token"))
        .unwrap_or_default()
        .to_owned();
    let client = client_of(&req);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let form = (req.method() == "POST").then(|| shared::edge::http::raw_body(&req));
    match rsvp_page::page(deps.store.as_ref(), &token, &client, now, form).await {
        Ok(Page::Open(open)) => {
            let status = if matches!(open.note, Note::Invalid(_)) {
                400
            } else {
                200
            };
            let html = page::form(
                &open.event,
                &open.invitation,
                open.rsvp.as_ref(),
                &open.note,
            );
            page::respond(status, html)
        }
        Ok(Page::Closed) => page::respond(404, page::closed()),
        Ok(Page::TooManyTries) => page::respond(429, page::too_many()),
        Err(err) => {
            tracing::error!(error = %err, "the RSVP page could not read or record an answer");
            page::respond(500, page::trouble())
        }
    }
}

/// The client, as API Gateway saw it: what failed tries are counted by.
fn client_of(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    }
    .unwrap_or_else(|| "unknown".to_owned())
}
