use super::codes::classify;
use crate::domain::{MessageContent, PhoneNumber};
use crate::ports::{Messenger, OutboundMessage, ProviderError};
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

/// Twilio's Messages API over reqwest: form-encoded, basic auth.
pub struct TwilioClient {
    http: reqwest::Client,
    messages_url: String,
    credentials: TwilioCredentials,
}

impl TwilioClient {
    /// `api_base` is `https://api.twilio.com` in production, the simulator locally.
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
        Self {
            http,
            messages_url,
            credentials,
        }
    }
}

/// The create-message form: `Body`, or `ContentSid` + `ContentVariables`.
fn form_params(to: &str, from: &str, message: &OutboundMessage) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("To", to.to_owned()),
        ("From", from.to_owned()),
        ("StatusCallback", message.status_callback.clone()),
    ];
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
        let form = form_params(&to, &from, message);
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
            .map_err(|e| ProviderError {
                code: None,
                message: if e.is_timeout() {
                    "Twilio did not answer in time".into()
                } else {
                    format!("Twilio unreachable: {e}")
                },
                // The request may or may not have reached Twilio; retrying a
                // connect failure is safe, a timeout is the caller's call.
                retryable: true,
            })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| ProviderError {
            code: None,
            message: format!("reading Twilio's answer: {e}"),
            retryable: true,
        })?;
        if (200..300).contains(&status) {
            let resource: MessageResource =
                serde_json::from_slice(&bytes).map_err(|e| ProviderError {
                    code: None,
                    message: format!("unexpected answer from Twilio: {e}"),
                    retryable: false,
                })?;
            return Ok(resource.sid);
        }
        let body: Option<TwilioErrorBody> = serde_json::from_slice(&bytes).ok();
        let code = body.as_ref().and_then(|b| b.code);
        let message = body
            .and_then(|b| b.message)
            .unwrap_or_else(|| format!("Twilio answered HTTP {status}"));
        Err(ProviderError {
            code,
            message,
            retryable: classify(status, code),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_or_content_template() {
        let to = PhoneNumber::parse("+5511999990000").unwrap();
        let message = |content| OutboundMessage {
            to: to.clone(),
            content,
            status_callback: "https://x/cb".into(),
        };
        let form = form_params(
            "whatsapp:+1",
            "whatsapp:+2",
            &message(MessageContent::Body("hi".into())),
        );
        assert!(form.contains(&("Body", "hi".into())));
        assert!(!form.iter().any(|(k, _)| k.starts_with("Content")));
        let variables = [
            ("1".to_owned(), "Ana".to_owned()),
            ("2".to_owned(), "\"x\"".to_owned()),
        ];
        let form = form_params(
            "whatsapp:+1",
            "whatsapp:+2",
            &message(MessageContent::Template {
                content_sid: "HX1".into(),
                variables: variables.into_iter().collect(),
            }),
        );
        assert!(!form.iter().any(|(k, _)| *k == "Body"));
        assert!(form.contains(&("ContentSid", "HX1".into())));
        assert!(form.contains(&("ContentVariables", r#"{"1":"Ana","2":"\"x\""}"#.into())));
    }
}
