//! Twilio's wire shapes: error bodies, the message resource and the checks
//! Twilio makes on a create request.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shared::adapters::twilio::codes;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::knobs::Knobs;
use crate::state::Refusal;

pub const API_VERSION: &str = "2010-04-01";
const WHATSAPP: &str = "whatsapp:";

/// An error answered the way Twilio does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TwilioError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl TwilioError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 20003, "Authenticate")
    }

    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::RATE_LIMITED,
            "Too Many Requests",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::INTERNAL_ERROR,
            "Service unavailable",
        )
    }

    /// Twilio's own failure: the request may have been processed.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_ERROR,
            "Internal server error",
        )
    }

    pub fn gateway_timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            codes::INTERNAL_ERROR,
            "Gateway timeout",
        )
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        )
    }

    /// Twilio's answer for a path naming nothing, e.g. an AccountSid or a
    /// message SID not of Twilio's form.
    pub fn resource_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            20404,
            format!("The requested resource {path} was not found"),
        )
    }

    pub fn malformed_body() -> Self {
        Self::bad_request(20001, "Could not parse the form-encoded request body")
    }

    /// The rejection configured for a To number in `fail_numbers`.
    pub fn for_recipient(code: u32, to: &str) -> Self {
        let message = match code {
            21211 => format!("Invalid 'To' Phone Number: {to}"),
            codes::UNSUBSCRIBED => "Attempt to send to unsubscribed recipient".to_string(),
            63024 => "Invalid message recipient".to_string(),
            _ => format!("Message to {to} rejected (simulated error {code})"),
        };
        Self::bad_request(code, message)
    }

    /// Which counter this error goes to.
    pub fn refusal(&self) -> Refusal {
        match self.status {
            StatusCode::TOO_MANY_REQUESTS => Refusal::RateLimited,
            StatusCode::GATEWAY_TIMEOUT => Refusal::Timeout,
            status if status.is_server_error() => Refusal::ServerError,
            _ => Refusal::Rejected,
        }
    }
}

impl IntoResponse for TwilioError {
    fn into_response(self) -> Response {
        let body = json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        response
    }
}

/// A create request that passed Twilio's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreateMessage {
    /// As sent, with the `whatsapp:` prefix.
    pub to: String,
    pub from: String,
    pub messaging_service_sid: Option<String>,
    pub body: Option<String>,
    pub content_sid: Option<String>,
    pub status_callback: Option<String>,
}

impl CreateMessage {
    pub fn parse(params: &[(String, String)], knobs: &Knobs) -> Result<Self, TwilioError> {
        let to = param(params, "To").unwrap_or_default();
        if whatsapp_number(to).is_none() {
            return Err(TwilioError::bad_request(
                21211,
                format!("Invalid 'To' Phone Number: {to}"),
            ));
        }
        let from = param(params, "From").unwrap_or_default();
        if whatsapp_number(from).is_none() {
            return Err(TwilioError::bad_request(
                21212,
                format!("Invalid 'From' Phone Number: {from}"),
            ));
        }
        let body = param(params, "Body").filter(|b| !b.is_empty());
        let content_sid = param(params, "ContentSid").filter(|s| !s.is_empty());
        match content_sid {
            Some(sid) => check_content(sid, param(params, "ContentVariables"), knobs)?,
            None if body.is_none() => {
                return Err(TwilioError::bad_request(21602, "Message body is required."));
            }
            None => {}
        }
        let status_callback = param(params, "StatusCallback").filter(|u| !u.is_empty());
        if let Some(url) = status_callback {
            let valid = reqwest::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !valid {
                return Err(TwilioError::bad_request(
                    21609,
                    format!("Invalid StatusCallback url: {url}"),
                ));
            }
        }
        Ok(Self {
            to: to.to_string(),
            from: from.to_string(),
            messaging_service_sid: param(params, "MessagingServiceSid")
                .filter(|s| !s.is_empty())
                .map(String::from),
            body: body.map(String::from),
            content_sid: content_sid.map(String::from),
            status_callback: status_callback.map(String::from),
        })
    }

    /// The To number without its channel prefix.
    pub fn to_number(&self) -> &str {
        whatsapp_number(&self.to).unwrap_or(&self.to)
    }

    /// Whose messaging limit the message uses: its Messaging Service's, if
    /// sent through one (Twilio then picks the number), else its `From`'s.
    pub fn sender(&self) -> &str {
        self.messaging_service_sid.as_deref().unwrap_or(&self.from)
    }

    /// Twilio's message resource for this message, as created.
    pub fn resource(&self, account_sid: &str, sid: &str) -> Value {
        resource_json(
            account_sid,
            sid,
            [
                &self.to,
                &self.from,
                self.body.as_deref().unwrap_or_default(),
            ],
            ("queued", None),
            OffsetDateTime::now_utc(),
        )
    }
}

/// Twilio's message resource for a message as it stands now (reads of one
/// message and of the list).
pub(crate) fn stored_resource(account_sid: &str, message: &crate::state::SimMessage) -> Value {
    let created =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(message.received_at_ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let param = |name: &str| {
        message
            .params
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    };
    resource_json(
        account_sid,
        &message.sid,
        [param("To"), param("From"), param("Body")],
        (&message.status, message.error_code),
        created,
    )
}

/// The message resource's JSON: `[to, from, body]`, `(status, error code)`.
fn resource_json(
    account_sid: &str,
    sid: &str,
    [to, from, body]: [&str; 3],
    (status, error_code): (&str, Option<u32>),
    created: OffsetDateTime,
) -> Value {
    let created = created.format(&Rfc2822).unwrap_or_default();
    let uri = format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}");
    json!({
        "sid": sid,
        "account_sid": account_sid,
        "to": to,
        "from": from,
        "body": body,
        "status": status,
        "num_segments": "1",
        "num_media": "0",
        "direction": "outbound-api",
        "api_version": API_VERSION,
        "date_created": created,
        "date_updated": created,
        "date_sent": if status == "queued" { Value::Null } else { created.clone().into() },
        "error_code": error_code,
        "error_message": null,
        "messaging_service_sid": null,
        "price": null,
        "price_unit": "USD",
        "uri": format!("{uri}.json"),
        "subresource_uris": { "media": format!("{uri}/Media.json") },
    })
}

/// A fresh message SID: "SM" and 32 lowercase hex digits.
pub(crate) fn new_message_sid() -> String {
    format!("SM{}", uuid::Uuid::new_v4().simple())
}

/// The last value sent for `name`, matching what `/_sim/messages` records.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The E.164 number of a `whatsapp:+E164` address.
pub(crate) fn whatsapp_number(address: &str) -> Option<&str> {
    let number = address.strip_prefix(WHATSAPP)?;
    let digits = number.strip_prefix('+')?;
    let valid = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    valid.then_some(number)
}

fn check_content(sid: &str, variables: Option<&str>, knobs: &Knobs) -> Result<(), TwilioError> {
    let invalid = |message: String| TwilioError::bad_request(21656, message);
    if !knobs.content_sids.contains(sid) {
        return Err(invalid(format!("The ContentSid is invalid: {sid}")));
    }
    let Some(variables) = variables else {
        return Ok(());
    };
    let parsed: Value = serde_json::from_str(variables).map_err(|e| {
        invalid(format!(
            "The ContentVariables parameter is invalid: not JSON ({e})"
        ))
    })?;
    let Value::Object(map) = parsed else {
        return Err(invalid(
            "The ContentVariables parameter is invalid: expected a JSON object".into(),
        ));
    };
    if let Some((key, _)) = map.iter().find(|(_, v)| !v.is_string()) {
        return Err(invalid(format!(
            "The ContentVariables parameter is invalid: the value of {key:?} is not a string"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn code(pairs: &[(&str, &str)]) -> u32 {
        CreateMessage::parse(&params(pairs), &Knobs::default())
            .unwrap_err()
            .code
    }

    const TO: (&str, &str) = ("To", "whatsapp:+15551234567");
    const FROM: (&str, &str) = ("From", "whatsapp:+15557654321");

    #[test]
    fn whatsapp_numbers() {
        assert_eq!(
            whatsapp_number("whatsapp:+15551234567"),
            Some("+15551234567")
        );
        assert_eq!(whatsapp_number("+15551234567"), None);
        assert_eq!(whatsapp_number("whatsapp:15551234567"), None);
        assert_eq!(whatsapp_number("whatsapp:+1555abc4567"), None);
        assert_eq!(whatsapp_number("whatsapp:+0555123456"), None);
        assert_eq!(whatsapp_number("whatsapp:+1234567890123456"), None);
    }

    #[test]
    fn checks_like_twilio() {
        assert_eq!(code(&[FROM, ("Body", "hi")]), 21211);
        assert_eq!(code(&[("To", "+15551234567"), FROM, ("Body", "hi")]), 21211);
        assert_eq!(code(&[TO, ("Body", "hi")]), 21212);
        assert_eq!(code(&[TO, FROM]), 21602);
        assert_eq!(code(&[TO, FROM, ("Body", "")]), 21602);
        assert_eq!(code(&[TO, FROM, ("ContentSid", "HXnope")]), 21656);
        let sid = ("ContentSid", "HX00000000000000000000000000000001");
        assert_eq!(code(&[TO, FROM, sid, ("ContentVariables", "{")]), 21656);
        assert_eq!(code(&[TO, FROM, sid, ("ContentVariables", "[]")]), 21656);
        assert_eq!(
            code(&[TO, FROM, sid, ("ContentVariables", r#"{"1":1}"#)]),
            21656
        );
        let callback = ("StatusCallback", "not a url");
        assert_eq!(code(&[TO, FROM, ("Body", "hi"), callback]), 21609);
    }

    #[test]
    fn accepts_body_or_template() {
        let knobs = Knobs::default();
        let sid = ("ContentSid", "HX00000000000000000000000000000002");
        let vars = ("ContentVariables", r#"{"1":"Ana","2":"Saturday"}"#);
        let message = CreateMessage::parse(&params(&[TO, FROM, sid, vars]), &knobs).unwrap();
        assert_eq!(message.to_number(), "+15551234567");
        assert_eq!(message.body, None);
        let message = CreateMessage::parse(&params(&[TO, FROM, ("Body", "hi")]), &knobs).unwrap();
        assert_eq!(message.body.as_deref(), Some("hi"));
    }

    #[test]
    fn message_sids_look_like_twilio() {
        let sid = new_message_sid();
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("SM"));
        assert!(
            sid[2..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
}
