//! `GET` and `POST /r/{token}`: the RSVP page a guest's link opens. No
//! login: the answer token in the path opens the guest's own invitation
//! (and nothing else), while its event has not started. The page shows the
//! event and the guest's answer, and records a new one (`via`: `link`). A
//! token that opens nothing, whatever the reason, gets the same 404 page;
//! a client that tried too many of those gets 429 for a while.

mod page;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::app::rsvp::{self, PageAccess, PageStore};
use shared::domain::rsvp::{Answer, AnswerVia, companions};
use shared::domain::{Event, FieldError, Invitation};
use shared::ports::Recorded;
use std::sync::Arc;

pub use page::CONTENT_SECURITY_POLICY;

/// The form is two fields; anything longer is not it.
const MAX_FORM_BYTES: usize = 1024;

pub struct Deps {
    pub store: Arc<dyn PageStore>,
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    let raw = req
        .path_parameters_ref()
        .and_then(|p| p.first("token"))
        .unwrap_or_default()
        .to_owned();
    let client = client_of(&req);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let store = deps.store.as_ref();
    let access = match rsvp::open_page(store, &raw, &client, now).await {
        Ok(access) => access,
        Err(err) => {
            tracing::error!(error = %err, "the RSVP page could not read its store");
            return page::respond(500, page::trouble());
        }
    };
    let (invitation, event) = match access {
        PageAccess::Open(found) => *found,
        PageAccess::Closed => {
            tracing::info!("an RSVP link that opens no invitation (altered, unknown or expired)");
            return page::respond(404, page::closed());
        }
        PageAccess::TooManyTries => {
            tracing::warn!(
                "too many RSVP links that open nothing from one client; refused for a while"
            );
            return page::respond(429, page::too_many());
        }
    };
    let shown = if req.method() == "POST" {
        post(deps, &req, &invitation, &event).await
    } else {
        current(deps, &invitation).await.map(|rsvp| {
            let html = page::form(&event, &invitation, rsvp.as_ref(), page::Note::None);
            (200, html)
        })
    };
    match shown {
        Ok((status, html)) => page::respond(status, html),
        Err(err) => {
            tracing::error!(error = %err, "the RSVP page could not record or read an answer");
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

/// The guest's answer that counts now.
async fn current(
    deps: &Deps,
    inv: &Invitation,
) -> Result<Option<shared::domain::rsvp::Rsvp>, shared::app::AppError> {
    let (listed, _) = rsvp::history(
        deps.store.as_ref(),
        &inv.owner,
        &inv.event_id,
        &inv.guest.guest_id,
    )
    .await?;
    Ok(listed.rsvp)
}

#[derive(serde::Deserialize)]
struct Form {
    answer: Option<String>,
    companions: Option<String>,
}

/// The form, read: the answer, and companions (with yes only).
fn read_form(body: &[u8]) -> Result<(Answer, u32), FieldError> {
    if body.len() > MAX_FORM_BYTES {
        return Err(FieldError::new("answer", "the form is too long"));
    }
    let form: Form = serde_urlencoded::from_bytes(body)
        .map_err(|_| FieldError::new("answer", "the form could not be read"))?;
    let answer = form
        .answer
        .as_deref()
        .ok_or_else(|| FieldError::new("answer", "choose yes, no or maybe"))?
        .parse::<Answer>()
        .map_err(|e| FieldError::new("answer", e))?;
    let raw = form.companions.unwrap_or_default();
    let raw = raw.trim();
    let given =
        if raw.is_empty() {
            None
        } else {
            Some(raw.parse::<i64>().map_err(|_| {
                FieldError::new("companions", "must be a whole number from 0 to 20")
            })?)
        };
    let companions = companions(given, "companions")?;
    Ok((answer, if answer == Answer::Yes { companions } else { 0 }))
}

async fn post(
    deps: &Deps,
    req: &Request,
    inv: &Invitation,
    event: &Event,
) -> Result<(u16, String), shared::app::AppError> {
    let (answer, companions) = match read_form(shared::edge::http::raw_body(req)) {
        Ok(read) => read,
        Err(err) => {
            let rsvp = current(deps, inv).await?;
            return Ok((
                400,
                page::form(event, inv, rsvp.as_ref(), page::Note::Invalid(&err)),
            ));
        }
    };
    let recorded = rsvp::answer(
        deps.store.as_ref(),
        inv,
        answer,
        companions,
        AnswerVia::Link,
    )
    .await?;
    let ids = (&inv.invitation_id, &inv.guest.guest_id);
    match recorded {
        Recorded::Recorded | Recorded::Repeated => {
            tracing::info!(invitation_id = %ids.0, guest_id = %ids.1, %answer, recorded = recorded == Recorded::Recorded, "answer from the RSVP page");
        }
        Recorded::NoSuchGuest => {
            tracing::warn!(invitation_id = %ids.0, guest_id = %ids.1, "an answer from a guest no longer on the list; nothing recorded");
            return Ok((404, page::closed()));
        }
    }
    let rsvp = current(deps, inv).await?;
    Ok((
        200,
        page::form(event, inv, rsvp.as_ref(), page::Note::Saved),
    ))
}
