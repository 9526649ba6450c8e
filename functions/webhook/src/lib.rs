//! `POST /api/whatsapp/webhook`: Twilio's status callbacks, signed.
//!
//! The status callback URL the sender gives Twilio carries the invitation
//! and attempt (`?invitation_id=..&attempt=..`), so a callback finds its
//! invitation without an index on the message SID, and one for an earlier
//! attempt is recognised and ignored.

use lambda_http::{Body, Request, Response};
use secrecy::{ExposeSecret, SecretString};
use shared::domain::{InvitationId, Status};
use shared::http::{self, ApiError};
use shared::lifecycle::{self, Outcome, StatusReport};
use shared::ports::{ErrorInfo, Store};
use shared::twilio::{describe, signature};
use std::sync::Arc;

pub struct Deps {
    pub store: Arc<dyn Store>,
    pub auth_token: SecretString,
}

fn plain(status: u16, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Body::Text(text.to_owned()))
        .expect("valid response")
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    // The URL exactly as Twilio called it: scheme and host come from the
    // request (Host, X-Forwarded-Proto), path and query as sent.
    let url = req.uri().to_string();
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(http::raw_body(&req))
    else {
        return ApiError::invalid("body", "expected a form-encoded body").into_response();
    };
    let given = req
        .headers()
        .get(signature::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let valid = given
        .is_some_and(|sig| signature::verify(deps.auth_token.expose_secret(), &url, &params, sig));
    if !valid {
        tracing::warn!(
            signature_present = given.is_some(),
            "rejected webhook call with a bad signature"
        );
        return plain(403, "invalid signature");
    }
    match apply(deps, &req, &params).await {
        Ok(()) => plain(200, ""),
        Err(err) => err.into_response(),
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

async fn apply(deps: &Deps, req: &Request, params: &[(String, String)]) -> Result<(), ApiError> {
    let invitation_id = http::query_param(req, "invitation_id")
        .ok_or_else(|| ApiError::invalid("invitation_id", "is required in the callback URL"))?;
    let invitation_id =
        InvitationId::parse(invitation_id).map_err(|e| ApiError::invalid("invitation_id", e))?;
    let attempt = http::query_param(req, "attempt")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| ApiError::invalid("attempt", "must be a number in the callback URL"))?;
    let Some(raw_status) = param(params, "MessageStatus") else {
        return Err(ApiError::invalid("MessageStatus", "is required"));
    };
    let Some(status) = Status::from_twilio(raw_status) else {
        tracing::debug!(raw_status, "status carries no news");
        return Ok(());
    };
    let error = param(params, "ErrorCode").map(|code| ErrorInfo {
        code: code.to_owned(),
        message: param(params, "ErrorMessage")
            .map(str::to_owned)
            .unwrap_or_else(|| describe(code.parse().unwrap_or(0)).to_owned()),
    });
    let report = StatusReport {
        invitation_id,
        attempt,
        status,
        at: lifecycle::now(),
        message_sid: param(params, "MessageSid").map(str::to_owned),
        error,
    };
    let outcome = lifecycle::apply_report(deps.store.as_ref(), &report).await?;
    match outcome {
        Outcome::Applied { from } => {
            shared::metrics::count(status, report.error.as_ref().map(|e| e.code.as_str()));
            tracing::info!(invitation_id = %report.invitation_id, attempt, %from, to = %status, "status applied");
        }
        ignored => {
            tracing::info!(invitation_id = %report.invitation_id, attempt, to = %status, outcome = ?ignored, "callback ignored");
        }
    }
    Ok(())
}
