//! Status callbacks: which ones an accepted message gets, and sending them
//! signed the way Twilio does.

use std::sync::Arc;
use std::time::Duration;

use shared::adapters::twilio::codes::{MARKETING_NOT_DELIVERED, OUTSIDE_SESSION_WINDOW};
use shared::adapters::twilio::signature::{IDEMPOTENCY_TOKEN_HEADER, SIGNATURE_HEADER, sign};

use crate::api::{API_VERSION, CreateMessage};
use crate::knobs::Knobs;
use crate::state::{CallbackRecord, SimState};

/// How an accepted message ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Read,
    Undelivered(u32),
    Failed(u32),
}

impl Fate {
    pub fn of(message: &CreateMessage, knobs: &Knobs) -> Self {
        let to = message.to_number();
        // Twilio accepts such a message and fails it afterwards, so this is not a 400.
        let free_form = message.content_sid.is_none();
        if knobs.enforce_session_window && free_form && !knobs.session_open_numbers.contains(to) {
            return Self::Failed(OUTSIDE_SESSION_WINDOW);
        }
        // WhatsApp stopped delivering Marketing templates to US numbers.
        let marketing = message
            .content_sid
            .as_ref()
            .is_some_and(|sid| knobs.marketing_content_sids.contains(sid));
        let in_us = shared::domain::PhoneNumber::parse(to).is_ok_and(|p| p.is_us());
        if marketing && in_us {
            return Self::Failed(MARKETING_NOT_DELIVERED);
        }
        match knobs.undelivered_numbers.get(to) {
            Some(&code) => Self::Undelivered(code),
            None => Self::Read,
        }
    }

    /// Whether WhatsApp sends the message on (so it uses up the sender's limit).
    pub fn goes_out(self) -> bool {
        !matches!(self, Self::Failed(_))
    }
}

/// One status callback to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    status: &'static str,
    error_code: Option<u32>,
}

impl Step {
    const fn ok(status: &'static str) -> Self {
        Self {
            status,
            error_code: None,
        }
    }

    const fn error(status: &'static str, code: u32) -> Self {
        Self {
            status,
            error_code: Some(code),
        }
    }
}

/// The callbacks for `fate`, in the order the knobs say to send them.
fn steps(fate: Fate, knobs: &Knobs) -> Vec<Step> {
    let mut steps = match fate {
        Fate::Read => vec![Step::ok("sent"), Step::ok("delivered"), Step::ok("read")],
        Fate::Undelivered(code) => vec![Step::ok("sent"), Step::error("undelivered", code)],
        Fate::Failed(code) => vec![Step::error("failed", code)],
    };
    if knobs.reorder_callbacks {
        steps.reverse();
    }
    if knobs.duplicate_callbacks {
        steps = steps.into_iter().flat_map(|step| [step, step]).collect();
    }
    steps
}

/// Sends the message's status callbacks in the background, if it asked for any.
pub(crate) fn spawn(
    state: Arc<SimState>,
    sid: &str,
    message: &CreateMessage,
    fate: Fate,
    knobs: &Knobs,
) {
    let Some(url) = message.status_callback.clone() else {
        return;
    };
    let base = vec![
        ("AccountSid".to_string(), state.account_sid.clone()),
        ("MessageSid".to_string(), sid.to_string()),
        ("SmsSid".to_string(), sid.to_string()),
        ("To".to_string(), message.to.clone()),
        ("From".to_string(), message.from.clone()),
        ("ApiVersion".to_string(), API_VERSION.to_string()),
        ("ChannelPrefix".to_string(), "whatsapp".to_string()),
        (
            "ChannelToAddress".to_string(),
            message.to_number().to_string(),
        ),
    ];
    let sid = sid.to_string();
    let steps = steps(fate, knobs);
    let delay = Duration::from_millis(knobs.callback_delay_ms);
    let lost_ratio = knobs.lost_callback_ratio;
    tokio::spawn(async move {
        for step in steps {
            tokio::time::sleep(delay).await;
            state.advance(&sid, step.status, step.error_code);
            if lost_ratio > 0.0 && rand::random::<f64>() < lost_ratio {
                tracing::debug!(%sid, status = step.status, "status callback lost");
                continue;
            }
            let mut params = base.clone();
            params.push(("MessageStatus".to_string(), step.status.to_string()));
            params.push(("SmsStatus".to_string(), step.status.to_string()));
            if let Some(code) = step.error_code {
                params.push(("ErrorCode".to_string(), code.to_string()));
            }
            let started = std::time::Instant::now();
            let http_status = post(&state, &url, &params).await;
            let status = step.status.to_string();
            state.record_callback(
                &sid,
                CallbackRecord {
                    status,
                    http_status,
                    answered_in_ms: started.elapsed().as_millis() as u64,
                },
            );
        }
    });
}

/// Posts one signed callback and answers the target's status code, 0 if it did not answer.
async fn post(state: &SimState, url: &str, params: &[(String, String)]) -> u16 {
    match post_signed(state, url, params).await {
        Ok((status, _)) => status,
        Err(error) => {
            tracing::warn!(%url, %error, "status callback not answered");
            0
        }
    }
}

/// Posts `params` to `url`, signed as Twilio signs webhooks and with a
/// token of its own for the delivery (Twilio's retries of one repeat it);
/// answers the target's status and body.
pub(crate) async fn post_signed(
    state: &SimState,
    url: &str,
    params: &[(String, String)],
) -> Result<(u16, String), reqwest::Error> {
    let signature = sign(&state.auth_token, url, params);
    let response = state
        .http
        .post(url)
        .header(SIGNATURE_HEADER, signature)
        .header(
            IDEMPOTENCY_TOKEN_HEADER,
            uuid::Uuid::new_v4().hyphenated().to_string(),
        )
        .form(params)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(fate: Fate, knobs: &Knobs) -> Vec<&'static str> {
        steps(fate, knobs).iter().map(|s| s.status).collect()
    }

    #[test]
    fn sequences() {
        let knobs = Knobs::default();
        assert_eq!(statuses(Fate::Read, &knobs), ["sent", "delivered", "read"]);
        assert_eq!(
            steps(Fate::Undelivered(30006), &knobs),
            [Step::ok("sent"), Step::error("undelivered", 30006)]
        );
        assert_eq!(
            steps(Fate::Failed(63016), &knobs),
            [Step::error("failed", 63016)]
        );
    }

    #[test]
    fn reordered_and_duplicated() {
        let knobs = Knobs {
            reorder_callbacks: true,
            duplicate_callbacks: true,
            ..Knobs::default()
        };
        assert_eq!(
            statuses(Fate::Read, &knobs),
            ["read", "read", "delivered", "delivered", "sent", "sent"]
        );
    }
}
