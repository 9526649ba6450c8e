//! HTTP routes: Twilio's create-message endpoint and the `/_sim/*` controls.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::adapters::twilio::codes::WHATSAPP_LIMIT;

use crate::api::{CreateMessage, TwilioError, new_message_sid, stored_resource, whatsapp_number};
use crate::callbacks::{self, Fate};
use crate::knobs::{Knobs, QUICK_REPLY_BUTTONS, QUICK_REPLY_CONTENT_SID};
use crate::openapi;
use crate::state::{Admission, SimReply, SimState};

/// The simulator's routes over `state`.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
            post(create_message).get(list_messages),
        )
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages/{message}",
            get(fetch_message),
        )
        .route("/v1/Content/{sid}", get(fetch_content))
        .route("/_sim/messages", get(messages))
        .route("/_sim/stats", get(stats))
        .route("/_sim/config", get(config).post(set_config))
        .route("/_sim/reset", post(reset))
        .route("/_sim/inbound", post(inbound))
        .route("/_sim/replies", get(replies))
        .fallback(not_found)
        .with_state(state)
}

async fn create_message(
    State(state): State<Arc<SimState>>,
    Path(account_sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // One snapshot per request, so a knob changed mid-request cannot mix behaviours.
    let knobs = state.knobs();
    if knobs.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(knobs.latency_ms)).await;
    }
    match create(&state, &knobs, (&account_sid, uri.path()), &headers, &body) {
        Ok(_) if chance(knobs.lost_answer_ratio) => {
            // Created, callbacks on their way; the client never learns it.
            tokio::time::sleep(Duration::from_millis(knobs.timeout_hang_ms)).await;
            TwilioError::internal().into_response()
        }
        Ok(resource) => (StatusCode::CREATED, Json(resource)).into_response(),
        Err(error) => {
            // Counted before hanging, so the stats show a timeout the client gave up on.
            state.count(error.refusal());
            if error.status == StatusCode::GATEWAY_TIMEOUT {
                tokio::time::sleep(Duration::from_millis(knobs.timeout_hang_ms)).await;
            }
            error.into_response()
        }
    }
}

/// Decides a create request and, if accepted, records it and schedules its
/// callbacks. Twilio's order: authentication, then the request against
/// Twilio's published OpenAPI, then the simulator's own behaviour.
fn create(
    state: &Arc<SimState>,
    knobs: &Knobs,
    (account_sid, path): (&str, &str),
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, TwilioError> {
    if !authorized(state, account_sid, headers) {
        return Err(TwilioError::unauthorized());
    }
    let params: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| TwilioError::malformed_body())?;
    openapi::check_create(account_sid, &params).map_err(|v| v.into_error(path))?;
    if chance(knobs.timeout_ratio) {
        return Err(TwilioError::gateway_timeout());
    }
    if chance(knobs.error_5xx_ratio) {
        return Err(TwilioError::unavailable());
    }
    let message = CreateMessage::parse(&params, knobs)?;
    if let Some(&code) = knobs.fail_numbers.get(message.to_number()) {
        return Err(TwilioError::for_recipient(code, &message.to));
    }
    let mut fate = Fate::of(&message, knobs);
    // WhatsApp's limit counts business-initiated messages that go out: not
    // those failing anyway, nor replies within a session the guest opened.
    let counted = fate.goes_out() && !knobs.session_open_numbers.contains(message.to_number());
    let counted = counted.then(|| (message.sender(), message.to.as_str()));
    let sid = new_message_sid();
    match state.try_accept(&sid, &params, knobs, counted) {
        Admission::Accepted => {}
        Admission::RateLimited => return Err(TwilioError::too_many_requests()),
        // Like 63016 and 63049: Twilio accepts the create (201) and the
        // status callback says `failed` with ErrorCode 63018, which is how
        // Twilio reports WhatsApp's limit for most messages.
        Admission::OverDailyLimit => fate = Fate::Failed(WHATSAPP_LIMIT),
    }
    tracing::debug!(%sid, to = %message.to, ?fate, "message accepted");
    callbacks::spawn(Arc::clone(state), &sid, &message, fate, knobs);
    Ok(message.resource(&state.account_sid, &sid))
}

/// Basic auth with the account's SID and auth token, on that same account's path.
fn authorized(state: &SimState, account_sid: &str, headers: &HeaderMap) -> bool {
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| STANDARD.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok());
    let Some((user, password)) = credentials.as_deref().and_then(|c| c.split_once(':')) else {
        return false;
    };
    account_sid == state.account_sid && user == state.account_sid && password == state.auth_token
}

fn chance(ratio: f64) -> bool {
    ratio > 0.0 && rand::random::<f64>() < ratio
}

/// `GET .../Messages/{Sid}.json`: one message as it stands.
async fn fetch_message(
    State(state): State<Arc<SimState>>,
    Path((account_sid, message)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !authorized(&state, &account_sid, &headers) {
        return TwilioError::unauthorized().into_response();
    }
    let sid = message.strip_suffix(".json").unwrap_or(&message);
    if let Err(violation) = openapi::check_fetch(&account_sid, sid) {
        return violation.into_error(uri.path()).into_response();
    }
    match state.message(sid) {
        Some(m) => Json(stored_resource(&state.account_sid, &m)).into_response(),
        None => TwilioError::not_found().into_response(),
    }
}

/// `GET /v1/Content/{sid}` (Twilio's Content API): a Content template the
/// simulator knows, as Twilio answers it; 404 for any other.
async fn fetch_content(
    State(state): State<Arc<SimState>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&state, &state.account_sid, &headers) {
        return TwilioError::unauthorized().into_response();
    }
    if !state.knobs().content_sids.contains(&sid) {
        return TwilioError::not_found().into_response();
    }
    Json(content_resource(&state.account_sid, &sid)).into_response()
}

/// A known Content template: the quick-reply invitation has its Yes / No /
/// Maybe buttons (and a text fallback); the others are text.
fn content_resource(account_sid: &str, sid: &str) -> Value {
    let mut types = serde_json::Map::new();
    if sid == QUICK_REPLY_CONTENT_SID {
        let actions: Vec<Value> = QUICK_REPLY_BUTTONS
            .iter()
            .map(|(title, id)| json!({"title": title, "id": id}))
            .collect();
        types.insert(
            "twilio/quick-reply".into(),
            json!({"body": "Hi {{1}}! You are invited on {{2}}. Will you come?", "actions": actions}),
        );
    }
    types.insert(
        "twilio/text".into(),
        json!({"body": "Hi {{1}}! You are invited on {{2}}. Reply YES, NO or MAYBE."}),
    );
    json!({
        "sid": sid,
        "account_sid": account_sid,
        "friendly_name": format!("rsvp_{}", &sid[sid.len() - 4..]),
        "language": "en",
        "variables": {"1": "guest", "2": "date"},
        "types": types,
        "url": format!("https://content.twilio.com/v1/Content/{sid}"),
    })
}

/// `GET .../Messages.json?To=&From=&DateSent>=&PageSize=`: the account's
/// messages, newest first, one page.
async fn list_messages(
    State(state): State<Arc<SimState>>,
    Path(account_sid): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !authorized(&state, &account_sid, &headers) {
        return TwilioError::unauthorized().into_response();
    }
    if let Err(violation) = openapi::check_list(&account_sid, &query) {
        return violation.into_error(uri.path()).into_response();
    }
    let get = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let since_ms = match get("DateSent>").map(parse_date) {
        None => 0,
        Some(Some(ms)) => ms,
        Some(None) => return TwilioError::malformed_body().into_response(),
    };
    let page_size = get("PageSize")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(50)
        .min(1000);
    let mut found: Vec<Value> = state
        .messages()
        .iter()
        .rev()
        .filter(|m| get("To").is_none_or(|to| m.params.get("To").map(String::as_str) == Some(to)))
        .filter(|m| {
            get("From").is_none_or(|from| m.params.get("From").map(String::as_str) == Some(from))
        })
        .filter(|m| m.received_at_ms >= since_ms)
        .map(|m| stored_resource(&state.account_sid, m))
        .collect();
    found.truncate(page_size);
    let uri = format!("/2010-04-01/Accounts/{account_sid}/Messages.json");
    Json(json!({
        "messages": found,
        "page": 0,
        "page_size": page_size,
        "start": 0,
        "end": found.len().saturating_sub(1),
        "uri": uri,
        "first_page_uri": uri,
        "next_page_uri": null,
        "previous_page_uri": null,
    }))
    .into_response()
}

/// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 date-time, as epoch milliseconds.
fn parse_date(value: &str) -> Option<u64> {
    use time::format_description::well_known::Rfc3339;
    let at = time::OffsetDateTime::parse(value, &Rfc3339)
        .ok()
        .or_else(|| {
            let date = time::Date::parse(
                value,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .ok()?;
            Some(date.midnight().assume_utc())
        })?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

async fn messages(State(state): State<Arc<SimState>>) -> Response {
    Json(state.messages()).into_response()
}

async fn replies(State(state): State<Arc<SimState>>) -> Response {
    Json(state.replies()).into_response()
}

async fn stats(State(state): State<Arc<SimState>>) -> Response {
    Json(state.stats()).into_response()
}

async fn config(State(state): State<Arc<SimState>>) -> Response {
    Json(state.knobs()).into_response()
}

/// Takes any JSON body, whatever its content type, so a bare `curl -d` works.
async fn set_config(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let patched = serde_json::from_slice(&body)
        .map_err(|e| e.to_string())
        .and_then(|patch| state.patch_knobs(patch));
    match patched {
        Ok(knobs) => Json(knobs).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response(),
    }
}

#[derive(Deserialize)]
struct ResetQuery {
    knobs: Option<String>,
}

async fn reset(State(state): State<Arc<SimState>>, Query(query): Query<ResetQuery>) -> StatusCode {
    let knobs = matches!(query.knobs.as_deref(), Some("1" | "true"));
    state.reset(knobs);
    StatusCode::NO_CONTENT
}

/// A message a guest sends: `POST /_sim/inbound`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Inbound {
    /// The guest, E.164.
    from: String,
    /// What they typed (a tap's body is the button's title).
    #[serde(default)]
    body: String,
    /// The WhatsApp sender's incoming-message webhook.
    url: String,
    /// The WhatsApp sender, E.164 (default Twilio's sandbox number).
    to: Option<String>,
    /// The message replied to (swiped, or whose button is tapped): its SID.
    reply_to: Option<String>,
    /// The title of the button tapped on `reply_to` (a quick-reply Content
    /// template's); its id, with the message's variables, is the payload.
    button: Option<String>,
    /// A payload to post as given instead (what a tampered client would send).
    payload: Option<String>,
}

/// The tapped button's title and payload, from the message it belongs to.
fn tapped(state: &SimState, message: &Inbound) -> Result<Option<(String, String)>, String> {
    let Some(title) = message.button.as_deref() else {
        return Ok(message
            .payload
            .clone()
            .map(|payload| (message.body.clone(), payload)));
    };
    let sid = message
        .reply_to
        .as_deref()
        .ok_or("a tap needs reply_to: the SID of the message whose button it is")?;
    let sent = state
        .message(sid)
        .ok_or_else(|| format!("no message {sid} was sent"))?;
    if sent.params.get("ContentSid").map(String::as_str) != Some(QUICK_REPLY_CONTENT_SID) {
        return Err(format!("message {sid} has no quick-reply buttons"));
    }
    let (title, id) = QUICK_REPLY_BUTTONS
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(title))
        .ok_or_else(|| format!("message {sid} has no button {title:?}: Yes, No or Maybe"))?;
    let variables: BTreeMap<String, String> = sent
        .params
        .get("ContentVariables")
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default();
    let mut payload = id.to_string();
    for (key, value) in &variables {
        payload = payload.replace(&format!("{{{{{key}}}}}"), value);
    }
    Ok(Some((
        title.to_string(),
        message.payload.clone().unwrap_or(payload),
    )))
}

/// The text of each `<Message>` in a TwiML answer.
fn twiml_messages(twiml: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = twiml;
    while let Some(start) = rest.find("<Message>") {
        let after = &rest[start + "<Message>".len()..];
        let Some(end) = after.find("</Message>") else {
            break;
        };
        let inner = &after[..end];
        let inner = inner
            .strip_prefix("<Body>")
            .and_then(|b| b.strip_suffix("</Body>"))
            .unwrap_or(inner);
        found.push(
            inner
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&#39;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end..];
    }
    found
}

/// Twilio's sandbox WhatsApp number, the default `to` of an inbound message.
const SANDBOX_SENDER: &str = "+14155238886";

/// Posts a guest's message to `url` the way Twilio posts incoming WhatsApp
/// messages (form parameters, signed), and opens the guest's 24-hour
/// session window, as WhatsApp does when a user writes. Answers what the
/// webhook answered.
async fn inbound(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let bad =
        |error: String| (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
    let message: Inbound = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return bad(format!("expected {{from, body, url, to?}}: {e}")),
    };
    let from = format!("whatsapp:{}", message.from);
    let to = format!(
        "whatsapp:{}",
        message.to.as_deref().unwrap_or(SANDBOX_SENDER)
    );
    if whatsapp_number(&from).is_none() || whatsapp_number(&to).is_none() {
        return bad("from and to must be E.164 numbers such as +5511999990000".into());
    }
    let button = match tapped(&state, &message) {
        Ok(button) => button,
        Err(error) => return bad(error),
    };
    let sid = new_message_sid();
    let wa_id = message.from.trim_start_matches('+').to_string();
    let body = button
        .as_ref()
        .map_or(message.body.as_str(), |(title, _)| title.as_str());
    let mut params: Vec<(String, String)> = [
        ("MessageSid", sid.as_str()),
        ("SmsMessageSid", sid.as_str()),
        ("SmsSid", sid.as_str()),
        ("AccountSid", state.account_sid.as_str()),
        ("From", from.as_str()),
        ("To", to.as_str()),
        ("Body", body),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        (
            "MessageType",
            if button.is_some() { "button" } else { "text" },
        ),
        ("SmsStatus", "received"),
        ("WaId", wa_id.as_str()),
        ("ApiVersion", crate::api::API_VERSION),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some((title, payload)) = &button {
        params.push(("ButtonText".into(), title.clone()));
        params.push(("ButtonPayload".into(), payload.clone()));
    }
    if let Some(replied) = &message.reply_to {
        params.push(("OriginalRepliedMessageSid".into(), replied.clone()));
    }
    let opened = state.patch_knobs({
        let mut open = state.knobs().session_open_numbers;
        open.insert(message.from.clone());
        json!({ "session_open_numbers": open })
    });
    if let Err(error) = opened {
        return bad(error);
    }
    match callbacks::post_signed(&state, &message.url, &params).await {
        Ok((status, response)) => {
            // Twilio sends what the TwiML answer says back to the guest.
            let replies = if status == 200 {
                twiml_messages(&response)
            } else {
                Vec::new()
            };
            for text in &replies {
                state.record_reply(SimReply {
                    sid: new_message_sid(),
                    from: to.clone(),
                    to: from.clone(),
                    body: text.clone(),
                    in_reply_to: sid.clone(),
                });
            }
            Json(json!({
                "sid": sid,
                "http_status": status,
                "response": response,
                "replies": replies,
            }))
            .into_response()
        }
        Err(error) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({ "error": format!("the webhook did not answer: {error}") })),
        )
            .into_response(),
    }
}

async fn not_found() -> TwilioError {
    TwilioError::not_found()
}
