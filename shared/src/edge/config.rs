//! Typed configuration, read once per cold start. Every environment name the
//! functions read is defined here.

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::sqs::SqsQueue;
use crate::adapters::twilio::{TwilioCodes, TwilioCredentials, TwilioWebhook};
use crate::app::deliver::Pacer;
use crate::domain::PhoneNumber;
use crate::domain::budget::{self, DailyLimit, SenderProfile};
use crate::domain::cost::Rates;
use crate::edge::deployment::QUEUE;
use crate::ports::{ErrorCodes, Messenger, ProviderWebhook};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

pub mod env {
    pub const TABLE_NAME: &str = "TABLE_NAME";
    pub const QUEUE_URL: &str = "QUEUE_URL";
    /// The send queue's dead-letter queue (the sender moves poison messages there).
    pub const DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";
    /// Where the webhook defers status reports it cannot apply in time.
    pub const REPORTS_QUEUE_URL: &str = "REPORTS_QUEUE_URL";
    /// Where a large send's chunks wait to be admitted.
    pub const ADMISSIONS_QUEUE_URL: &str = "ADMISSIONS_QUEUE_URL";
    /// Guests one admissions consumer admits a second at most.
    pub const ADMIT_GUESTS_PER_SECOND: &str = "ADMIT_GUESTS_PER_SECOND";
    /// Name or ARN of the Secrets Manager secret holding Twilio's credentials.
    pub const TWILIO_SECRET_ID: &str = "TWILIO_SECRET_ID";
    pub const TWILIO_API_BASE: &str = "TWILIO_API_BASE";
    /// The webhook's public URL (where Twilio posts status callbacks).
    pub const WEBHOOK_URL: &str = "WEBHOOK_URL";
    /// The webhook's URL as Twilio calls it through a custom domain or
    /// CloudFront (optional): the webhook also checks signatures against it.
    pub const WEBHOOK_PUBLIC_URL: &str = "WEBHOOK_PUBLIC_URL";
    /// Where the stack's RSVP page is (`{api}/r/`): a guest's link is it
    /// and their invitation's answer token.
    pub const RSVP_PAGE_URL: &str = "RSVP_PAGE_URL";
    pub const SEND_RATE_PER_SECOND: &str = "SEND_RATE_PER_SECOND";
    pub const SENDER_MAX_CONCURRENCY: &str = "SENDER_MAX_CONCURRENCY";
    /// WhatsApp's limit on unique recipients a day: 250, 2000, 10000,
    /// 100000 or unlimited (the sender profile).
    pub const DAILY_UNIQUE_RECIPIENTS: &str = "DAILY_UNIQUE_RECIPIENTS";
    /// The limit's moving window in seconds (a day unless a test shortens it).
    pub const DAILY_WINDOW_SECONDS: &str = "DAILY_WINDOW_SECONDS";
    /// The cost estimate's rate table (JSON, `domain::cost::Rates`); empty:
    /// the documented defaults.
    pub const MESSAGE_RATES: &str = "MESSAGE_RATES";
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("reading secret {id}: {reason}")]
    Secret { id: String, reason: String },
}

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(ConfigError::Missing(name))
}

pub fn number_or<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("'{v}' is not a number"),
        }),
        _ => Ok(default),
    }
}

/// The operator's WhatsApp sender profile: rate, daily limit and its window.
pub fn sender_profile() -> Result<SenderProfile, ConfigError> {
    let daily_limit = match std::env::var(env::DAILY_UNIQUE_RECIPIENTS) {
        Ok(raw) if !raw.trim().is_empty() => {
            raw.parse::<DailyLimit>()
                .map_err(|e| ConfigError::Invalid {
                    name: env::DAILY_UNIQUE_RECIPIENTS,
                    reason: e.to_string(),
                })?
        }
        _ => QUEUE.daily_unique_recipients,
    };
    let window_seconds = number_or(env::DAILY_WINDOW_SECONDS, budget::DAY_SECONDS)?;
    if window_seconds < 1 {
        return Err(ConfigError::Invalid {
            name: env::DAILY_WINDOW_SECONDS,
            reason: "must be at least 1".into(),
        });
    }
    let rate_per_second = number_or(env::SEND_RATE_PER_SECOND, QUEUE.send_rate_per_second)?;
    if rate_per_second < 1 {
        return Err(ConfigError::Invalid {
            name: env::SEND_RATE_PER_SECOND,
            reason: "must be at least 1".into(),
        });
    }
    Ok(SenderProfile {
        rate_per_second,
        daily_limit,
        window_seconds,
    })
}

/// The rate table a dry run estimates costs with ([`env::MESSAGE_RATES`]).
pub fn message_rates() -> Result<Rates, ConfigError> {
    match std::env::var(env::MESSAGE_RATES) {
        Ok(raw) if !raw.trim().is_empty() => {
            Rates::parse(&raw).map_err(|reason| ConfigError::Invalid {
                name: env::MESSAGE_RATES,
                reason,
            })
        }
        _ => Ok(Rates::default()),
    }
}

/// The stack's RSVP page ([`env::RSVP_PAGE_URL`]), ending in `/`.
pub fn rsvp_page_url() -> Result<String, ConfigError> {
    let raw = required(env::RSVP_PAGE_URL)?;
    let url = parse_public_url(raw.trim()).map_err(|reason| ConfigError::Invalid {
        name: env::RSVP_PAGE_URL,
        reason,
    })?;
    if !url.ends_with('/') {
        return Err(ConfigError::Invalid {
            name: env::RSVP_PAGE_URL,
            reason: format!("'{url}' must end with / (the token follows it)"),
        });
    }
    Ok(url)
}

/// The webhook's public URL when Twilio calls it through a custom domain or
/// CloudFront ([`env::WEBHOOK_PUBLIC_URL`]); None when unset.
pub fn webhook_public_url() -> Result<Option<String>, ConfigError> {
    match std::env::var(env::WEBHOOK_PUBLIC_URL) {
        Ok(raw) if !raw.trim().is_empty() => {
            parse_public_url(raw.trim())
                .map(Some)
                .map_err(|reason| ConfigError::Invalid {
                    name: env::WEBHOOK_PUBLIC_URL,
                    reason,
                })
        }
        _ => Ok(None),
    }
}

/// An absolute http(s) URL without query or fragment: the webhook adds the
/// query each request arrives with.
pub fn parse_public_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("'{raw}' is not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(format!("'{raw}' must be an https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("'{raw}' must have no query or fragment"));
    }
    Ok(raw.to_owned())
}

/// The Twilio secret's JSON shape in Secrets Manager.
#[derive(serde::Deserialize)]
struct TwilioSecret {
    account_sid: String,
    auth_token: SecretString,
    from: String,
}

impl TwilioSecret {
    fn into_credentials(self) -> Result<TwilioCredentials, String> {
        // Accept the sender with or without the channel prefix.
        let from = self.from.strip_prefix("whatsapp:").unwrap_or(&self.from);
        let from = PhoneNumber::parse(from).map_err(|e| format!("field from: {e}"))?;
        // Twilio's own forms (Console, Account Info). The values are never
        // quoted back: they are secrets.
        if !is_hex_32(self.account_sid.strip_prefix("AC").unwrap_or_default()) {
            return Err(
                "field account_sid: must be AC followed by 32 hexadecimal digits (Twilio Console, Account Info)"
                    .into(),
            );
        }
        if !is_hex_32(self.auth_token.expose_secret()) {
            return Err(
                "field auth_token: must be 32 hexadecimal digits (Twilio Console, Account Info)"
                    .into(),
            );
        }
        Ok(TwilioCredentials {
            account_sid: self.account_sid,
            auth_token: self.auth_token,
            from,
        })
    }
}

fn is_hex_32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads the Twilio secret's JSON as the functions do; errors name the field.
pub fn parse_twilio_secret(text: &str) -> Result<TwilioCredentials, String> {
    let secret: TwilioSecret = serde_json::from_str(text)
        .map_err(|e| format!("expected JSON {{account_sid, auth_token, from}}: {e}"))?;
    secret.into_credentials()
}

/// Fetches Twilio's credentials from Secrets Manager (once per cold start).
pub async fn load_twilio_credentials(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<TwilioCredentials, ConfigError> {
    let fail = |reason: String| ConfigError::Secret {
        id: secret_id.to_owned(),
        reason,
    };
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| fail(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string()))?;
    let text = out
        .secret_string()
        .ok_or_else(|| fail("secret has no string value".into()))?;
    parse_twilio_secret(text).map_err(fail)
}

/// The secret's JSON for given credentials (the local stack seeds it).
pub fn twilio_secret_json(account_sid: &str, auth_token: &str, from: &str) -> String {
    serde_json::json!({"account_sid": account_sid, "auth_token": auth_token, "from": from})
        .to_string()
}

/// Loads the AWS SDK's shared configuration (region, credentials, and the
/// standard `AWS_ENDPOINT_URL_*` overrides the local stack uses).
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(retry_config())
        .load()
        .await
}

/// The SDK's own retries (throttling, 5xx, timeouts; exponential backoff
/// with jitter), with more tries than its default 3: a burst of status
/// changes can be throttled for longer than three tries cover.
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(8)
        .with_max_backoff(std::time::Duration::from_secs(5))
}

/// The DynamoDB store named by `TABLE_NAME` (every store port).
pub fn store_from_env(sdk: &aws_config::SdkConfig) -> Result<Arc<DynamoStore>, ConfigError> {
    let table = required(env::TABLE_NAME)?;
    Ok(Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        table,
    )))
}

/// The send queue named by `QUEUE_URL`.
pub fn queue_from_env(sdk: &aws_config::SdkConfig) -> Result<Arc<SqsQueue>, ConfigError> {
    let url = required(env::QUEUE_URL)?;
    Ok(Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url)))
}

/// The reports queue named by `REPORTS_QUEUE_URL` (the webhook).
pub fn reports_queue_from_env(sdk: &aws_config::SdkConfig) -> Result<Arc<SqsQueue>, ConfigError> {
    let url = required(env::REPORTS_QUEUE_URL)?;
    Ok(Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url)))
}

/// The admissions queue named by `ADMISSIONS_QUEUE_URL` (send-bulk, reconcile).
pub fn admissions_queue_from_env(
    sdk: &aws_config::SdkConfig,
) -> Result<Arc<SqsQueue>, ConfigError> {
    let url = required(env::ADMISSIONS_QUEUE_URL)?;
    Ok(Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url)))
}

/// Guests one admissions consumer admits a second ([`env::ADMIT_GUESTS_PER_SECOND`]).
pub fn admit_guests_per_second() -> Result<u32, ConfigError> {
    let rate = number_or(
        env::ADMIT_GUESTS_PER_SECOND,
        crate::edge::deployment::ADMISSIONS_QUEUE.guests_per_second,
    )?;
    if rate < 1 {
        return Err(ConfigError::Invalid {
            name: env::ADMIT_GUESTS_PER_SECOND,
            reason: "must be at least 1".into(),
        });
    }
    Ok(rate)
}

/// The send queue named by `QUEUE_URL`, moving poison messages to
/// `DEAD_LETTER_QUEUE_URL` (the sender).
pub fn queue_with_dead_letter_from_env(
    sdk: &aws_config::SdkConfig,
) -> Result<Arc<SqsQueue>, ConfigError> {
    let url = required(env::QUEUE_URL)?;
    let dead_letter = required(env::DEAD_LETTER_QUEUE_URL)?;
    Ok(Arc::new(
        SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url).with_dead_letter(dead_letter),
    ))
}

/// The Twilio client: credentials from the secret named by
/// `TWILIO_SECRET_ID`, Twilio's API at `TWILIO_API_BASE` (default: Twilio's own).
pub async fn twilio_client_from_env(
    sdk: &aws_config::SdkConfig,
) -> Result<crate::adapters::twilio::TwilioClient, ConfigError> {
    use crate::adapters::twilio::TwilioClient;
    let credentials = twilio_from_env(sdk).await?;
    let api_base =
        std::env::var(env::TWILIO_API_BASE).unwrap_or_else(|_| TwilioClient::API_BASE.into());
    Ok(TwilioClient::new(
        &api_base,
        credentials,
        TwilioClient::TIMEOUT,
    ))
}

/// The messenger that sends: the Twilio client of
/// [`twilio_client_from_env`], asking for status callbacks at `WEBHOOK_URL`.
pub async fn messenger_from_env(
    sdk: &aws_config::SdkConfig,
) -> Result<Arc<dyn Messenger>, ConfigError> {
    let client = twilio_client_from_env(sdk).await?;
    Ok(Arc::new(
        client.with_status_callback(required(env::WEBHOOK_URL)?),
    ))
}

/// The provider's webhook: Twilio's signature checked with the auth token
/// from the secret, at the URL a call arrived on or `WEBHOOK_PUBLIC_URL`.
pub async fn provider_webhook_from_env(
    sdk: &aws_config::SdkConfig,
) -> Result<Arc<dyn ProviderWebhook>, ConfigError> {
    let credentials = twilio_from_env(sdk).await?;
    Ok(Arc::new(TwilioWebhook::new(
        credentials.auth_token,
        webhook_public_url()?,
    )))
}

/// What the provider's error codes mean, for the views that show them.
pub fn error_codes() -> &'static dyn ErrorCodes {
    &TwilioCodes
}

/// One sender instance's pace: its share of `SEND_RATE_PER_SECOND` among
/// `SENDER_MAX_CONCURRENCY` instances.
pub fn pacer(rate_per_second: u32, max_concurrency: u32) -> Result<Pacer, ConfigError> {
    Pacer::new(rate_per_second, max_concurrency).map_err(|e| ConfigError::Invalid {
        name: env::SENDER_MAX_CONCURRENCY,
        reason: format!(
            "{}={} is more than {}={}: more sender instances than messages per second cannot hold the rate; lower it to at most {}",
            env::SENDER_MAX_CONCURRENCY,
            e.max_concurrency,
            env::SEND_RATE_PER_SECOND,
            e.rate,
            e.rate
        ),
    })
}

/// Twilio's credentials from the secret named by `TWILIO_SECRET_ID`.
pub async fn twilio_from_env(
    sdk: &aws_config::SdkConfig,
) -> Result<TwilioCredentials, ConfigError> {
    let secret_id = required(env::TWILIO_SECRET_ID)?;
    load_twilio_credentials(&aws_sdk_secretsmanager::Client::new(sdk), &secret_id).await
}

#[cfg(test)]
mod pacer_tests {
    use super::*;

    #[test]
    fn more_instances_than_the_rate_is_refused_naming_both_settings() {
        let err = pacer(10, 20).err().unwrap();
        let text = err.to_string();
        assert!(text.contains("SENDER_MAX_CONCURRENCY=20"), "{text}");
        assert!(text.contains("SEND_RATE_PER_SECOND=10"), "{text}");
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    const SID: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn parse(sid: &str, token: &str) -> Result<TwilioCredentials, String> {
        parse_twilio_secret(&twilio_secret_json(sid, token, "+14155238886"))
    }

    #[test]
    fn twilio_credentials_in_twilios_forms_only_naming_the_field_not_the_value() {
        assert!(parse(SID, TOKEN).is_ok());
        for bad_sid in [
            "ACtest00000000000000000000000000000",
            "AC123",
            "XXdeadbeefdeadbeefdeadbeefdeadbeef",
        ] {
            let err = parse(bad_sid, TOKEN).err().unwrap();
            assert!(err.starts_with("field account_sid:"), "{err}");
            assert!(!err.contains(bad_sid), "the value is not quoted: {err}");
        }
        for bad_token in ["test-auth-token-0000000000000000", "0123", ""] {
            let err = parse(SID, bad_token).err().unwrap();
            assert!(err.starts_with("field auth_token:"), "{err}");
        }
        let err = parse_twilio_secret("{}").err().unwrap();
        assert!(err.contains("account_sid"), "{err}");
    }
}
