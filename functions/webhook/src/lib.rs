//! `POST /api/whatsapp/webhook`: what Twilio posts, signed.
//!
//! Status callbacks: the status callback URL the sender gives Twilio names
//! the invitation and attempt (`twilio::callback`), so a callback finds its
//! invitation without an index on the message SID, and one for an earlier
//! attempt is recognised and ignored.
//!
//! Inbound messages (the WhatsApp sender's "a message comes in" webhook: no
//! invitation in the URL, no `MessageStatus`): a guest's STOP (or another
//! opt-out keyword) records an opt-out for the number, START an opt-in.
//! A tap on an invitation's quick-reply button (`ButtonPayload`) records
//! the answer its payload carries, for the invitation its token opens; a
//! typed yes / no / maybe (in English, Portuguese or Spanish) records an
//! answer to the invitation it replied to, or the latest the number got;
//! any other text is kept for the organizer. A newly recorded answer is
//! confirmed in the conversation (TwiML `<Message>`, the event's
//! confirmation text); everything else is answered with empty TwiML, so
//! Twilio sends nothing.

use lambda_http::{Body, Request, Response};
use secrecy::{ExposeSecret, SecretString};
use shared::adapters::twilio::inbound::Keyword;
use shared::adapters::twilio::{callback, codes, signature};
use shared::app::lifecycle::{self, Outcome, StatusReport};
use shared::app::rsvp::{self, AnswerStore, Replied};
use shared::app::waiting::{self, WaitingStore};
use shared::domain::budget::SenderProfile;
use shared::domain::reason::Action;
use shared::domain::render::{self, TemplateContext};
use shared::domain::rsvp::{Answer, AnswerToken, AnswerVia, Payload};
use shared::domain::{Invitation, OptOut, PhoneNumber, Status, now};
use shared::edge::http::{self, ApiError};
use shared::edge::metrics;
use shared::ports::{DeliveryStore, ErrorInfo, OptOutStore, Recorded};
use std::sync::Arc;

/// What the webhook moves: invitations (status callbacks), opt-outs (a
/// guest's STOP, Twilio's 21610), the deliveries it answered, and the
/// daily budget's pause (Twilio's 63018).
pub trait WebhookStore: WaitingStore + OptOutStore + DeliveryStore + AnswerStore {}
impl<T: WaitingStore + OptOutStore + DeliveryStore + AnswerStore + ?Sized> WebhookStore for T {}

pub struct Deps {
    pub store: Arc<dyn WebhookStore>,
    pub auth_token: SecretString,
    /// The URL Twilio calls when a custom domain or CloudFront is in front
    /// ([`shared::edge::config::webhook_public_url`]).
    pub public_url: Option<String>,
    /// The WhatsApp sender's limits: how long a 63018 pauses sending.
    pub profile: SenderProfile,
    /// The stack's RSVP page (a confirmation may give the guest's link).
    pub rsvp_page_url: String,
}

fn plain(status: u16, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Body::Text(text.to_owned()))
        .expect("valid response")
}

fn forbidden(signature_present: bool) -> Response<Body> {
    tracing::warn!(
        signature_present,
        "rejected webhook call with a bad signature"
    );
    plain(403, "invalid signature")
}

pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    // The signature first: nothing else of the request is read (not even
    // the query or the delivery token) until it is known to be Twilio's.
    // The form's pairs are part of what is signed.
    let Some(given) = header(&req, signature::SIGNATURE_HEADER) else {
        return forbidden(false);
    };
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(http::raw_body(&req))
    else {
        return forbidden(true);
    };
    // The URL as it arrived (scheme and host from the request, path and
    // query as sent), or as Twilio called it through a custom domain.
    let urls = signature::urls_to_try(&req.uri().to_string(), deps.public_url.as_deref());
    if !signature::verify_any(deps.auth_token.expose_secret(), &urls, &params, given) {
        return forbidden(true);
    }
    let inbound_message = is_inbound_message(&req, &params);
    let answered = |reply: Option<String>| {
        if inbound_message {
            twiml(reply.as_deref())
        } else {
            plain(200, "")
        }
    };
    // A guest's message is acted on once per delivery; a status callback
    // needs no such record (a status only moves forward, so a repeat
    // changes nothing) and is spared the two requests.
    let delivery = header(&req, signature::IDEMPOTENCY_TOKEN_HEADER)
        .filter(|_| inbound_message)
        .map(|token| signature::delivery(token, given));
    if let Some(delivery) = &delivery {
        match deps.store.delivery_seen(delivery).await {
            Ok(true) => {
                tracing::info!("a retry of a request already answered; answered again");
                return answered(None);
            }
            Ok(false) => {}
            Err(err) => return ApiError::from(err).into_response(),
        }
    }
    let done = if inbound_message {
        inbound(deps, &params).await
    } else {
        apply(deps, &req, &params).await.map(|()| None)
    };
    let reply = match done {
        Ok(reply) => reply,
        Err(err) => return err.into_response(),
    };
    if let Some(delivery) = &delivery {
        // The work is done and repeatable: a failure to remember it only
        // lets a retry do it again.
        if let Err(err) = deps.store.record_delivery(delivery).await {
            tracing::warn!(error = %err, "could not remember the delivery; a retry will be applied again");
        }
    }
    answered(reply)
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// A status callback names its invitation in the URL and carries a
/// `MessageStatus`; an incoming message has neither.
fn is_inbound_message(req: &Request, params: &[(String, String)]) -> bool {
    !callback::names_invitation(query(req)) && param(params, "MessageStatus").is_none()
}

/// Reads one query parameter of the request.
fn query(req: &Request) -> impl Fn(&str) -> Option<String> + '_ {
    |name| http::query_param(req, name).map(str::to_owned)
}

/// TwiML that does nothing: no automatic reply.
pub const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

/// TwiML answering an incoming message: Twilio sends `reply` back in the
/// same conversation (the tap opened its 24-hour window), or nothing.
fn twiml(reply: Option<&str>) -> Response<Body> {
    let body = match reply {
        None => EMPTY_TWIML.to_owned(),
        Some(text) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            xml_escape(text)
        ),
    };
    Response::builder()
        .status(200)
        .header("content-type", "text/xml")
        .body(Body::Text(body))
        .expect("valid response")
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A number in Twilio's `whatsapp:+E164` form (or a bare E.164 number).
fn sender_number(raw: &str) -> Option<PhoneNumber> {
    PhoneNumber::from_whatsapp(raw)
        .or_else(|_| PhoneNumber::parse(raw))
        .ok()
}

/// A guest's message: an opt-out or opt-in keyword changes their record;
/// a button tap or a typed answer records their RSVP; anything else is
/// kept for the organizer. Some(text): the confirmation to send back.
async fn inbound(deps: &Deps, params: &[(String, String)]) -> Result<Option<String>, ApiError> {
    let from = param(params, "From")
        .and_then(sender_number)
        .ok_or_else(|| {
            ApiError::invalid(
                "From",
                "must be a WhatsApp address such as whatsapp:+5511999990000",
            )
        })?;
    let body = param(params, "Body").unwrap_or_default();
    if let Some(payload) = param(params, "ButtonPayload") {
        match Payload::parse(payload) {
            Payload::Answer(answer, token) => return tapped(deps, &from, answer, &token).await,
            Payload::Altered => {
                tracing::warn!(from = %from, "a button's payload is not one this stack wrote (altered); nothing recorded");
                return Ok(None);
            }
            // A button of the organizer's own: its text is read as typed.
            Payload::Foreign => {}
        }
    }
    let text = param(params, "ButtonText").unwrap_or(body);
    if let Some((keyword, word)) = Keyword::of(text) {
        // "YES" is also how guests answer invitations: only an opted-out
        // number has anything to opt back into.
        let opted_out = || async {
            let current = deps.store.get_guests_opt_out(&from).await?;
            Ok::<_, ApiError>(current.is_some_and(|c| c.opted_out))
        };
        if keyword == Keyword::OptOut || opted_out().await? {
            let record = OptOut::by_guest(from.clone(), keyword == Keyword::OptOut, word, &now());
            deps.store.put_opt_out(&record, None).await?;
            tracing::info!(from = %from, opted_out = record.opted_out, keyword = ?record.keyword, "guest's opt-out recorded");
            return Ok(None);
        }
    }
    let replied_to = param(params, "OriginalRepliedMessageSid");
    let store = deps.store.as_ref();
    let (invitation, sure) = match rsvp::replied_invitation(store, &from, replied_to).await? {
        None => {
            tracing::info!(from = %from, "a message from a number no invitation reached; acknowledged");
            return Ok(None);
        }
        Some(Replied::To(invitation)) => (invitation, true),
        Some(Replied::Unsure(invitation)) => (invitation, false),
    };
    // An answer counts for an invitation it surely answers, while its
    // event has not started; anything else is kept for the organizer.
    let answer = match Answer::from_reply(text) {
        Some(answer) if sure && rsvp::answerable(store, &invitation).await?.is_some() => answer,
        _ => {
            let sid = param(params, "MessageSid").unwrap_or_default();
            rsvp::keep(store, &invitation, text, sid).await?;
            tracing::info!(from = %from, invitation_id = %invitation.invitation_id, "a guest's message kept for the organizer");
            return Ok(None);
        }
    };
    record(deps, &invitation, answer, AnswerVia::Typed).await
}

/// A tap on an invitation's button: recorded when its token opens the
/// invitation, and the invitation went to the number that tapped.
async fn tapped(
    deps: &Deps,
    from: &PhoneNumber,
    answer: Answer,
    token: &AnswerToken,
) -> Result<Option<String>, ApiError> {
    let Some((invitation, _)) = rsvp::open(deps.store.as_ref(), token).await? else {
        tracing::warn!(from = %from, invitation_id = %token.invitation_id, "a button's token opens no invitation (altered, another's, or the event has started); nothing recorded");
        return Ok(None);
    };
    if invitation.guest.phone.whatsapp_identity() != from.whatsapp_identity() {
        tracing::warn!(from = %from, invitation_id = %invitation.invitation_id, "a button tapped by another number than the invitation's; nothing recorded");
        return Ok(None);
    }
    record(deps, &invitation, answer, AnswerVia::Button).await
}

/// Records an answer; a new one is confirmed with the event's text for it.
async fn record(
    deps: &Deps,
    invitation: &Invitation,
    answer: Answer,
    via: AnswerVia,
) -> Result<Option<String>, ApiError> {
    let store = deps.store.as_ref();
    let recorded = rsvp::answer(store, invitation, answer, 0, via).await?;
    let ids = (&invitation.invitation_id, &invitation.guest.guest_id);
    match recorded {
        Recorded::Recorded => {
            tracing::info!(invitation_id = %ids.0, guest_id = %ids.1, %answer, via = via.as_str(), "answer recorded");
        }
        Recorded::Repeated => {
            tracing::info!(invitation_id = %ids.0, guest_id = %ids.1, %answer, "the guest's answer already says so; nothing recorded");
            return Ok(None);
        }
        Recorded::NoSuchGuest => {
            tracing::warn!(invitation_id = %ids.0, guest_id = %ids.1, "an answer from a guest no longer on the list; nothing recorded");
            return Ok(None);
        }
    }
    let Some(event) = store
        .get_event(&invitation.owner, &invitation.event_id)
        .await?
    else {
        return Ok(None);
    };
    let context = TemplateContext::for_invitation(&event, invitation, &deps.rsvp_page_url);
    match render::render(event.confirmations.for_answer(answer), &context) {
        Ok(text) => Ok(Some(text)),
        Err(err) => {
            tracing::warn!(error = %err, "the confirmation does not render; none sent");
            Ok(None)
        }
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
    let callback::Target {
        invitation_id,
        job_id,
        attempt,
    } = callback::target(query(req))?;
    let Some(raw_status) = param(params, "MessageStatus") else {
        return Err(ApiError::invalid("MessageStatus", "is required"));
    };
    let Some(status) = callback::status(raw_status) else {
        tracing::debug!(raw_status, "status carries no news");
        return Ok(());
    };
    let error = param(params, "ErrorCode").map(|code| ErrorInfo {
        code: code.to_owned(),
        message: param(params, "ErrorMessage")
            .map(str::to_owned)
            .unwrap_or_else(|| codes::describe(code.parse().unwrap_or(0)).to_owned()),
    });
    let report = StatusReport {
        invitation_id,
        job_id,
        attempt,
        status,
        at: now(),
        message_sid: param(params, "MessageSid").map(str::to_owned),
        error,
    };
    // Twilio says the guest unsubscribed or blocked us: never message them again.
    if report
        .error
        .as_ref()
        .is_some_and(|e| e.code.parse().is_ok_and(codes::means_opted_out))
        && let Some(to) = param(params, "To").and_then(sender_number)
    {
        let record = OptOut::by_twilio(to, &report.at);
        deps.store.put_opt_out(&record, None).await?;
    }
    // Over WhatsApp's daily limit: the invitation waits for the window, not failed.
    if matches!(status, Status::Failed | Status::Undelivered)
        && report
            .error
            .as_ref()
            .is_some_and(|e| codes::action(&e.code) == Action::WaitForDailyLimit)
    {
        let store = deps.store.as_ref();
        let now = time::OffsetDateTime::now_utc();
        if waiting::refused_for_limit(store, &report.invitation_id, attempt, &deps.profile, now)
            .await?
        {
            metrics::count(Status::Waiting, Some(&codes::WHATSAPP_LIMIT.to_string()));
        }
        return Ok(());
    }
    let outcome = lifecycle::apply_report(deps.store.as_ref(), &report).await?;
    match outcome {
        Outcome::Applied { from } => {
            metrics::count(status, report.error.as_ref().map(|e| e.code.as_str()));
            tracing::info!(invitation_id = %report.invitation_id, attempt, %from, to = %status, "status applied");
        }
        ignored => {
            tracing::info!(invitation_id = %report.invitation_id, attempt, to = %status, outcome = ?ignored, "callback ignored");
        }
    }
    Ok(())
}
