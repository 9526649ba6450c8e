use super::callback;
use super::codes;
use crate::domain::{ContentDefinition, MessageContent, PhoneNumber, mask_digits};
use crate::ports::{
    ContentLibrary, Messenger, OutboundMessage, ProviderError, ProviderMessage, Refusal,
    SEND_TIMEOUT,
};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// The account and WhatsApp sender; the auth token never leaves a `SecretString`.
#[derive(Clone)]
pub struct TwilioCredentials {
    pub account_sid: String,
    pub auth_token: SecretString,
    pub from: PhoneNumber,
}

impl std::fmt::Debug for TwilioCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioCredentials")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("from", &self.from)
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct TwilioErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

#[derive(serde::Deserialize)]
struct MessageResource {
    sid: String,
}

/// The parts of Twilio's message resource that reconciliation reads.
#[derive(serde::Deserialize)]
struct StoredMessage {
    sid: String,
    status: String,
    error_code: Option<u32>,
    body: Option<String>,
    /// RFC 2822, as Twilio writes dates.
    date_created: Option<String>,
}

#[derive(serde::Deserialize)]
struct MessageList {
    messages: Vec<StoredMessage>,
}

impl From<StoredMessage> for ProviderMessage {
    fn from(m: StoredMessage) -> Self {
        use time::format_description::well_known::{Rfc2822, Rfc3339};
        let created_at = m
            .date_created
            .and_then(|d| time::OffsetDateTime::parse(&d, &Rfc2822).ok())
            .and_then(|d| d.format(&Rfc3339).ok())
            .unwrap_or_default();
        Self {
            sid: m.sid,
            status: callback::status(&m.status),
            error: m
                .error_code
                .map(|code| codes::error_info(&code.to_string(), None)),
            body: m.body,
            over_daily_limit: m.error_code == Some(codes::WHATSAPP_LIMIT),
            created_at,
        }
    }
}

/// Twilio's Messages API over reqwest: form-encoded, basic auth.
pub struct TwilioClient {
    http: reqwest::Client,
    messages_url: String,
    /// Where a Content template's definition is read.
    content_url: String,
    credentials: TwilioCredentials,
    /// The webhook's public URL: each message's `StatusCallback` is it,
    /// naming the message's invitation and attempt. None: no callbacks
    /// (a client that only reads).
    status_callback: Option<String>,
}

impl TwilioClient {
    /// Twilio's REST base in production (the simulator's URL locally).
    pub const API_BASE: &str = "https://api.twilio.com";
    /// Twilio's Content API in production; with any other `api_base` (the
    /// simulator) the Content API is served there too.
    pub const CONTENT_API_BASE: &str = "https://content.twilio.com";
    /// How long a request may take before its outcome counts as unknown.
    pub const TIMEOUT: Duration = SEND_TIMEOUT;

    /// `api_base` is [`Self::API_BASE`] in production, the simulator locally.
    pub fn new(api_base: &str, credentials: TwilioCredentials, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("TLS backend initialises");
        let messages_url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            api_base.trim_end_matches('/'),
            credentials.account_sid
        );
        let api_base = api_base.trim_end_matches('/');
        let content_base = if api_base == Self::API_BASE {
            Self::CONTENT_API_BASE
        } else {
            api_base
        };
        Self {
            http,
            messages_url,
            content_url: format!("{content_base}/v1/Content"),
            credentials,
            status_callback: None,
        }
    }

    /// Asks Twilio to post each message's statuses to `webhook_url`.
    pub fn with_status_callback(mut self, webhook_url: impl Into<String>) -> Self {
        self.status_callback = Some(webhook_url.into());
        self
    }
}

/// The create-message form: `Body`, or `ContentSid` + `ContentVariables`.
fn form_params(
    to: &str,
    from: &str,
    status_callback: Option<&str>,
    message: &OutboundMessage,
) -> Vec<(&'static str, String)> {
    let mut form = vec![("To", to.to_owned()), ("From", from.to_owned())];
    if let Some(webhook_url) = status_callback {
        form.push((
            "StatusCallback",
            callback::url(webhook_url, &message.reference),
        ));
    }
    match &message.content {
        MessageContent::Body(body) => form.push(("Body", body.clone())),
        MessageContent::Template {
            content_sid,
            variables,
        } => {
            form.push(("ContentSid", content_sid.clone()));
            if !variables.is_empty() {
                let json = serde_json::to_string(variables).expect("strings serialize");
                form.push(("ContentVariables", json));
            }
        }
    }
    form
}

#[async_trait]
impl Messenger for TwilioClient {
    async fn send(&self, message: &OutboundMessage) -> Result<String, ProviderError> {
        let to = message.to.to_whatsapp();
        let from = self.credentials.from.to_whatsapp();
        let form = form_params(&to, &from, self.status_callback.as_deref(), message);
        let response = self
            .http
            .post(&self.messages_url)
            .basic_auth(
                &self.credentials.account_sid,
                Some(self.credentials.auth_token.expose_secret()),
            )
            .form(&form)
            .send()
            .await
            .map_err(|e| transport_failure(&e))?;
        let status = response.status().as_u16();
        // Cut off mid-answer: Twilio may have created the message.
        let bytes = response
            .bytes()
            .await
            .map_err(|_| unknown("Twilio's answer was cut off"))?;
        if (200..300).contains(&status) {
            let resource: MessageResource = serde_json::from_slice(&bytes).map_err(|_| {
                unknown("Twilio accepted the request but its answer was unreadable")
            })?;
            return Ok(resource.sid);
        }
        let body: Option<TwilioErrorBody> = serde_json::from_slice(&bytes).ok();
        let code = body.as_ref().and_then(|b| b.code);
        let detail = body
            .and_then(|b| b.message.as_deref().map(without_numbers))
            .unwrap_or_else(|| format!("Twilio answered HTTP {status}"));
        Err(codes::provider_error(
            codes::refusal(status, code),
            code,
            detail,
        ))
    }

    async fn sent_to(
        &self,
        to: &PhoneNumber,
        since: &str,
    ) -> Result<Vec<ProviderMessage>, ProviderError> {
        let query = [
            ("To", to.to_whatsapp()),
            ("From", self.credentials.from.to_whatsapp()),
            ("DateSent>", since.to_owned()),
            ("PageSize", "20".to_owned()),
        ];
        let list: Option<MessageList> = self.read(&self.messages_url, &query).await?;
        Ok(list
            .map(|l| l.messages.into_iter().map(ProviderMessage::from).collect())
            .unwrap_or_default())
    }

    async fn fetch(&self, sid: &str) -> Result<Option<ProviderMessage>, ProviderError> {
        let url = format!("{}/{sid}.json", self.messages_url.trim_end_matches(".json"));
        let found: Option<StoredMessage> = self.read(&url, &[]).await?;
        Ok(found.map(ProviderMessage::from))
    }
}

/// A Content resource as Twilio's Content API answers it: its types, each
/// the template's text and actions in that form.
#[derive(serde::Deserialize)]
struct ContentResource {
    types: std::collections::BTreeMap<String, ContentType>,
}

#[derive(serde::Deserialize)]
struct ContentType {
    body: Option<String>,
    /// `twilio/card` has a title where others have a body.
    title: Option<String>,
    #[serde(default)]
    actions: Vec<ContentAction>,
}

#[derive(serde::Deserialize)]
struct ContentAction {
    title: Option<String>,
}

/// The forms a WhatsApp message takes, in the order a preview prefers them
/// (a template with buttons over its plain-text fallback).
const CONTENT_TYPES: [&str; 6] = [
    "twilio/quick-reply",
    "twilio/call-to-action",
    "twilio/card",
    "whatsapp/card",
    "twilio/list-picker",
    "twilio/text",
];

impl ContentResource {
    fn definition(self) -> Option<ContentDefinition> {
        let mut types = self.types;
        let kind = CONTENT_TYPES
            .iter()
            .find(|k| types.contains_key(**k))
            .map(|k| (*k).to_owned())
            .or_else(|| types.keys().next().cloned())?;
        let content = types.remove(&kind)?;
        Some(ContentDefinition {
            kind,
            body: content.body.or(content.title).unwrap_or_default(),
            buttons: content
                .actions
                .into_iter()
                .filter_map(|a| a.title)
                .collect(),
        })
    }
}

#[async_trait]
impl ContentLibrary for TwilioClient {
    async fn definition(&self, sid: &str) -> Result<Option<ContentDefinition>, String> {
        let url = format!("{}/{sid}", self.content_url);
        let found: Option<ContentResource> =
            self.read(&url, &[]).await.map_err(|e| e.to_string())?;
        Ok(found.and_then(ContentResource::definition))
    }
}

impl TwilioClient {
    /// A GET on the Messages API, read as `T`; None on 404.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, ProviderError> {
        let response = self
            .http
            .get(url)
            .query(query)
            .basic_auth(
                &self.credentials.account_sid,
                Some(self.credentials.auth_token.expose_secret()),
            )
            .send()
            .await
            .map_err(|e| transport_failure(&e))?;
        let status = response.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|_| unknown("Twilio's answer was cut off"))?;
        if !(200..300).contains(&status) {
            let body: Option<TwilioErrorBody> = serde_json::from_slice(&bytes).ok();
            let code = body.as_ref().and_then(|b| b.code);
            let detail = body
                .and_then(|b| b.message.as_deref().map(without_numbers))
                .unwrap_or_else(|| format!("Twilio answered HTTP {status}"));
            return Err(codes::provider_error(
                codes::refusal(status, code),
                code,
                detail,
            ));
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| unknown("Twilio's answer was unreadable"))
    }
}

/// Twilio's words with every phone number in them masked: its messages
/// name the number ("Invalid 'To' Phone Number: whatsapp:+55..."), and
/// they are logged and kept.
pub fn without_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(plus) = rest.find('+') {
        out.push_str(&rest[..plus]);
        let digits = rest[plus + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - plus - 1);
        let candidate = &rest[plus..plus + 1 + digits];
        // Any run long enough to be a number is masked, valid or not.
        if digits >= 7 {
            out.push_str(&mask_digits(&candidate[1..]));
        } else {
            out.push_str(candidate);
        }
        rest = &rest[plus + 1 + digits..];
    }
    out.push_str(rest);
    out
}

/// A failure with no answer from Twilio. Fixed texts: reqwest's own carry
/// the request URL, and with it the Account SID.
fn transport_failure(e: &reqwest::Error) -> ProviderError {
    if e.is_connect() {
        // Nothing was sent: the connection never opened.
        codes::provider_error(
            Refusal::RetryLater,
            None,
            "could not connect to Twilio".into(),
        )
    } else if e.is_timeout() {
        unknown("Twilio did not answer in time")
    } else {
        unknown("the connection to Twilio failed mid-request")
    }
}

fn unknown(message: &str) -> ProviderError {
    codes::provider_error(Refusal::Unknown, None, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InvitationId, JobId};
    use crate::ports::MessageRef;

    fn reference() -> MessageRef {
        MessageRef {
            invitation_id: InvitationId::parse("inv_1").unwrap(),
            job_id: Some(JobId::parse("job_1").unwrap()),
            attempt: 2,
        }
    }

    #[test]
    fn twilios_words_keep_no_full_number() {
        assert_eq!(
            without_numbers("Invalid 'To' Phone Number: whatsapp:+5511999990001"),
            "Invalid 'To' Phone Number: whatsapp:+55*********01"
        );
        assert_eq!(
            without_numbers("+14155238886 to +5511999990001, code +1"),
            "+14*******86 to +55*********01, code +1"
        );
        assert_eq!(without_numbers("no numbers"), "no numbers");
        // Not a valid number, masked all the same.
        assert_eq!(without_numbers("to +9991234567"), "to +99******67");
    }

    /// A connection that never opens sent nothing: safe to retry. Its error
    /// text names no URL (the URL carries the Account SID).
    #[tokio::test]
    async fn a_refused_connection_is_retryable_and_names_no_url() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let credentials = TwilioCredentials {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: SecretString::from("token"),
            from: PhoneNumber::parse("+14155238886").unwrap(),
        };
        let client = TwilioClient::new(&base, credentials, Duration::from_secs(2));
        let message = OutboundMessage {
            to: PhoneNumber::parse("+5511999990000").unwrap(),
            content: MessageContent::Body("hi".into()),
            reference: reference(),
        };
        let err = client.send(&message).await.unwrap_err();
        assert_eq!(err.refusal, Refusal::RetryLater, "{err:?}");
        assert!(!err.to_string().contains("AC0123"), "{err:?}");
        assert!(!err.to_string().contains("127.0.0.1"), "{err:?}");
    }

    #[test]
    fn body_or_content_template() {
        let to = PhoneNumber::parse("+5511999990000").unwrap();
        let message = |content| OutboundMessage {
            to: to.clone(),
            content,
            reference: reference(),
        };
        let form = form_params(
            "whatsapp:+1",
            "whatsapp:+2",
            Some("https://x/cb"),
            &message(MessageContent::Body("hi".into())),
        );
        assert!(form.contains(&("Body", "hi".into())));
        assert!(form.contains(&(
            "StatusCallback",
            "https://x/cb?invitation_id=inv_1&job_id=job_1&attempt=2".into()
        )));
        assert!(!form.iter().any(|(k, _)| k.starts_with("Content")));
        let variables = [
            ("1".to_owned(), "Ana".to_owned()),
            ("2".to_owned(), "\"x\"".to_owned()),
        ];
        let form = form_params(
            "whatsapp:+1",
            "whatsapp:+2",
            None,
            &message(MessageContent::Template {
                content_sid: "HX1".into(),
                variables: variables.into_iter().collect(),
            }),
        );
        assert!(
            !form
                .iter()
                .any(|(k, _)| *k == "Body" || *k == "StatusCallback")
        );
        assert!(form.contains(&("ContentSid", "HX1".into())));
        assert!(form.contains(&("ContentVariables", r#"{"1":"Ana","2":"\"x\""}"#.into())));
    }
}
