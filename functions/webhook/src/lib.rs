//! `POST /api/whatsapp/webhook`: what the provider posts, signed. The
//! provider's webhook port checks the signature before anything else is
//! read and reads the call: a status report goes to
//! [`shared::app::status_callback`] (applied at once, or deferred to the
//! reports queue when the store is slow), a guest's message to
//! [`shared::app::inbound_message`], whose confirmation (if any) is sent
//! back in the provider's answer format.

use lambda_http::{Body, Request, Response};
use shared::app::inbound_message::{self, InboundStore};
use shared::app::lifecycle::Outcome;
use shared::app::status_callback::{self, Applied, Received, ReportStore};
use shared::domain::budget::SenderProfile;
use shared::edge::http::{self, ApiError};
use shared::edge::metrics;
use shared::ports::{ProviderWebhook, ReportQueue, WebhookCall, WebhookRejection};
use std::sync::Arc;

/// What the webhook moves: invitations (status reports), opt-outs, the
/// deliveries it answered, answers, and the daily budget.
pub trait WebhookStore: ReportStore + InboundStore {}
impl<T: ReportStore + InboundStore + ?Sized> WebhookStore for T {}

pub struct Deps {
    pub store: Arc<dyn WebhookStore>,
    /// Checks the provider's signature and reads its calls.
    pub provider: Arc<dyn ProviderWebhook>,
    /// Where a status report goes when the store cannot apply it in time.
    pub reports: Arc<dyn ReportQueue>,
    /// The WhatsApp sender's limits (a refusal for the daily limit teaches the budget).
    pub profile: SenderProfile,
    /// The stack's RSVP page (a confirmation may give the guest's link).
    pub rsvp_page_url: String,
}

fn text(status: u16, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Body::Text(body))
        .expect("valid response")
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    // The URL as it arrived (scheme and host from the request, path and
    // query as sent).
    let url = req.uri().to_string();
    let call = match deps
        .provider
        .read(&url, req.headers(), http::raw_body(&req))
    {
        Ok(call) => call,
        Err(WebhookRejection::Forbidden { signature_present }) => {
            tracing::warn!(
                signature_present,
                "rejected webhook call with a bad signature"
            );
            return text(403, "text/plain", "invalid signature".into());
        }
        Err(WebhookRejection::Invalid(field)) => return ApiError::from(field).into_response(),
    };
    match call {
        WebhookCall::Report(report) => {
            let received = status_callback::receive(
                deps.store.as_ref(),
                deps.reports.as_ref(),
                &report,
                &deps.profile,
                status_callback::APPLY_WITHIN,
            )
            .await;
            match received {
                Ok(Received::Applied(Applied::Status(Outcome::Applied { .. }))) => {
                    let code = report.error.as_ref().map(|e| e.code.as_str());
                    if let Some(status) = report.status {
                        metrics::count(status, code);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, "report neither applied nor deferred; reconciliation settles it");
                    return text(503, "text/plain", "try again later".into());
                }
            }
            text(200, "text/plain", String::new())
        }
        WebhookCall::Message { message, delivery } => {
            let store = deps.store.as_ref();
            let reply =
                inbound_message::receive(store, &message, delivery.as_deref(), &deps.rsvp_page_url)
                    .await;
            match reply {
                Ok(reply) => {
                    let (content_type, body) = deps.provider.answer_message(reply.as_deref());
                    text(200, content_type, body)
                }
                Err(err) => ApiError::from(err).into_response(),
            }
        }
    }
}
