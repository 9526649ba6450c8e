//! What Twilio posts to the webhook, read into the messenger port's
//! neutral shapes: a status callback into a [`DeliveryReport`], a guest's
//! message into an [`InboundMessage`]. The signature is checked first:
//! nothing else of the request is read until it is known to be Twilio's.

use super::{callback, codes, signature};
use crate::domain::{FieldError, PhoneNumber};
use crate::ports::{
    DeliveryReport, InboundMessage, ProviderWebhook, Refusal, WebhookCall, WebhookRejection,
};
use secrecy::{ExposeSecret, SecretString};

/// Twilio's webhook for one account.
pub struct TwilioWebhook {
    auth_token: SecretString,
    /// The URL Twilio calls when a custom domain or CloudFront is in front
    /// (`edge::config::webhook_public_url`).
    public_url: Option<String>,
}

impl TwilioWebhook {
    pub fn new(auth_token: SecretString, public_url: Option<String>) -> Self {
        Self {
            auth_token,
            public_url,
        }
    }
}

/// TwiML that does nothing: no automatic reply.
pub const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

impl ProviderWebhook for TwilioWebhook {
    fn read(
        &self,
        url: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<WebhookCall, WebhookRejection> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
        };
        // The form's pairs are part of what is signed.
        let Some(given) = header(signature::SIGNATURE_HEADER) else {
            return Err(WebhookRejection::Forbidden {
                signature_present: false,
            });
        };
        let forbidden = WebhookRejection::Forbidden {
            signature_present: true,
        };
        let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) else {
            return Err(forbidden);
        };
        // The URL as it arrived, or as Twilio called it through a custom domain.
        let urls = signature::urls_to_try(url, self.public_url.as_deref());
        if !signature::verify_any(self.auth_token.expose_secret(), &urls, &params, given) {
            return Err(forbidden);
        }
        let query: Vec<(String, String)> = url
            .split_once('?')
            .and_then(|(_, q)| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        let query = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let param = |name: &str| param(&params, name);
        // A status callback names its invitation in the URL and carries a
        // `MessageStatus`; an incoming message has neither.
        if callback::names_invitation(query) || param("MessageStatus").is_some() {
            return Ok(WebhookCall::Report(report(query, &params)?));
        }
        let from = param("From").and_then(sender_number).ok_or_else(|| {
            FieldError::new(
                "From",
                "must be a WhatsApp address such as whatsapp:+5511999990000",
            )
        })?;
        let message = InboundMessage {
            from,
            text: param("ButtonText")
                .or(param("Body"))
                .unwrap_or_default()
                .to_owned(),
            button_payload: param("ButtonPayload").map(str::to_owned),
            replied_to: param("OriginalRepliedMessageSid").map(str::to_owned),
            message_id: param("MessageSid").unwrap_or_default().to_owned(),
        };
        let delivery = header(signature::IDEMPOTENCY_TOKEN_HEADER)
            .map(|token| signature::delivery(token, given));
        Ok(WebhookCall::Message { message, delivery })
    }

    fn answer_message(&self, reply: Option<&str>) -> (&'static str, String) {
        let body = match reply {
            None => EMPTY_TWIML.to_owned(),
            Some(text) => format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
                crate::domain::escape_markup(text)
            ),
        };
        ("text/xml", body)
    }
}

/// A status callback: the attempt its URL names, and what it says.
fn report(
    query: impl Fn(&str) -> Option<String>,
    params: &[(String, String)],
) -> Result<DeliveryReport, FieldError> {
    let reference = callback::target(query)?;
    let raw_status = param(params, "MessageStatus")
        .ok_or_else(|| FieldError::new("MessageStatus", "is required"))?;
    let error = param(params, "ErrorCode")
        .map(|code| codes::error_info(code, param(params, "ErrorMessage")));
    let refusal = error
        .as_ref()
        .map(|e| e.code.parse().map_or(Refusal::Failed, codes::reported));
    Ok(DeliveryReport {
        reference,
        status: callback::status(raw_status),
        message_id: param(params, "MessageSid").map(str::to_owned),
        error,
        refusal,
        to: param(params, "To").and_then(sender_number),
    })
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// A number in Twilio's `whatsapp:+E164` form (or a bare E.164 number).
fn sender_number(raw: &str) -> Option<PhoneNumber> {
    PhoneNumber::from_whatsapp(raw)
        .or_else(|_| PhoneNumber::parse(raw))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;

    const URL: &str = "https://hooks.example.com/api/whatsapp/webhook";

    fn signed(url: &str, params: &[(&str, &str)]) -> (http::HeaderMap, Vec<u8>) {
        let pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut headers = http::HeaderMap::new();
        let sig = signature::sign("token", url, &pairs);
        headers.insert(signature::SIGNATURE_HEADER, sig.parse().unwrap());
        headers.insert(signature::IDEMPOTENCY_TOKEN_HEADER, "t-1".parse().unwrap());
        let body = serde_urlencoded::to_string(&pairs).unwrap().into_bytes();
        (headers, body)
    }

    fn webhook() -> TwilioWebhook {
        TwilioWebhook::new(SecretString::from("token"), None)
    }

    #[test]
    fn a_status_callback_becomes_a_neutral_report() {
        let url = format!("{URL}?invitation_id=inv_1&job_id=job_1&attempt=2");
        let (headers, body) = signed(
            &url,
            &[
                ("MessageStatus", "undelivered"),
                ("MessageSid", "SM1"),
                ("ErrorCode", "63018"),
                ("To", "whatsapp:+5511999990000"),
            ],
        );
        let Ok(WebhookCall::Report(report)) = webhook().read(&url, &headers, &body) else {
            panic!("a report")
        };
        assert_eq!(report.reference.attempt, 2);
        assert_eq!(report.status, Some(Status::Undelivered));
        assert_eq!(report.refusal, Some(Refusal::DailyLimit));
        assert_eq!(report.error.unwrap().code, "63018");
        assert_eq!(report.to.unwrap().as_str(), "+5511999990000");
    }

    #[test]
    fn a_guests_message_becomes_a_neutral_message_once_per_delivery() {
        let (headers, body) = signed(
            URL,
            &[
                ("From", "whatsapp:+5511999990000"),
                ("Body", "yes"),
                ("ButtonText", "Yes"),
                ("ButtonPayload", "rsvp.yes.x"),
                ("MessageSid", "SM9"),
            ],
        );
        let Ok(WebhookCall::Message { message, delivery }) = webhook().read(URL, &headers, &body)
        else {
            panic!("a message")
        };
        assert_eq!(message.text, "Yes");
        assert_eq!(message.button_payload.as_deref(), Some("rsvp.yes.x"));
        assert!(delivery.is_some());
    }

    #[test]
    fn nothing_is_read_before_the_signature() {
        let (mut headers, body) = signed(URL, &[("From", "nonsense")]);
        assert_eq!(
            webhook().read(URL, &headers, &body),
            Err(WebhookRejection::Invalid(FieldError::new(
                "From",
                "must be a WhatsApp address such as whatsapp:+5511999990000"
            )))
        );
        headers.insert(signature::SIGNATURE_HEADER, "AAAA".parse().unwrap());
        assert_eq!(
            webhook().read(URL, &headers, &body),
            Err(WebhookRejection::Forbidden {
                signature_present: true
            })
        );
        assert_eq!(
            webhook().read(URL, &http::HeaderMap::new(), &body),
            Err(WebhookRejection::Forbidden {
                signature_present: false
            })
        );
    }

    #[test]
    fn an_answer_is_twiml_escaped() {
        let (kind, body) = webhook().answer_message(Some("Tom & <Ana>"));
        assert_eq!(kind, "text/xml");
        assert!(body.contains("<Message>Tom &amp; &lt;Ana&gt;</Message>"));
        assert_eq!(webhook().answer_message(None).1, EMPTY_TWIML);
    }
}
