//! Twilio's error codes: what each means to an organizer, and whether a
//! later try can get past it. The one place the product spells them.

use crate::domain::Status;
use crate::domain::reason::{self, Action};
use crate::ports::{ErrorCodes, ErrorInfo, ProviderError, Refusal};

/// Too many requests: Twilio processed nothing; safe to try again.
pub const RATE_LIMITED: u32 = 20429;
/// Twilio's internal error: the request may have been processed.
pub const INTERNAL_ERROR: u32 = 20500;
/// The recipient unsubscribed (replied STOP).
pub const UNSUBSCRIBED: u32 = 21610;
/// Free-form text outside the 24-hour window: an approved template is needed.
pub const OUTSIDE_SESSION_WINDOW: u32 = 63016;
/// WhatsApp's limit reached.
pub const WHATSAPP_LIMIT: u32 = 63018;

/// The guest blocked the WhatsApp sender.
pub const BLOCKED: u32 = 63014;
/// WhatsApp did not deliver a Marketing template to this guest.
pub const MARKETING_NOT_DELIVERED: u32 = 63049;

/// Whether a later try can get past a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Retry,
    Final,
}

struct Code {
    code: u32,
    class: Class,
    action: Action,
    words: &'static str,
}

const fn code(code: u32, class: Class, action: Action, words: &'static str) -> Code {
    Code {
        code,
        class,
        action,
        words,
    }
}

use Action::*;
use Class::{Final, Retry};

/// Every code the product can meet: whether a later try can get past it,
/// what it means for the organizer, and the words they read.
const CODES: &[Code] = &[
    code(
        RATE_LIMITED,
        Retry,
        RetryLater,
        "Twilio is rate limiting us",
    ),
    code(
        INTERNAL_ERROR,
        Retry,
        RetryLater,
        "Twilio could not send the message",
    ),
    code(
        20003,
        Final,
        CheckAccount,
        "Twilio refused the account's credentials",
    ),
    code(21211, Final, InvalidNumber, "The phone number is not valid"),
    code(
        21408,
        Final,
        CheckAccount,
        "Sending to this country is not enabled on the Twilio account",
    ),
    code(
        UNSUBSCRIBED,
        Final,
        OptedOut,
        "The guest has unsubscribed (replied STOP)",
    ),
    code(
        21614,
        Final,
        InvalidNumber,
        "The number is not a mobile number",
    ),
    code(
        30003,
        Retry,
        RetryByHand,
        "The phone is unreachable (off or out of coverage)",
    ),
    code(30005, Final, InvalidNumber, "The number does not exist"),
    code(
        30006,
        Final,
        InvalidNumber,
        "The number cannot receive this message (landline or unreachable carrier)",
    ),
    code(
        30007,
        Final,
        RetryByHand,
        "The carrier filtered the message",
    ),
    code(
        30008,
        Retry,
        RetryByHand,
        "Delivery failed for an unknown reason",
    ),
    code(
        30036,
        Final,
        Expired,
        "The message expired before it could be delivered",
    ),
    code(63003, Final, NotOnWhatsApp, "The number is not on WhatsApp"),
    code(
        BLOCKED,
        Final,
        OptedOut,
        "The guest blocked the WhatsApp sender",
    ),
    code(
        OUTSIDE_SESSION_WINDOW,
        Final,
        NeedsApprovedTemplate,
        "Outside the 24-hour window: an approved template is needed",
    ),
    code(
        WHATSAPP_LIMIT,
        Retry,
        WaitForDailyLimit,
        "WhatsApp's daily limit on new conversations is reached",
    ),
    code(
        63024,
        Final,
        NotOnWhatsApp,
        "The number is not a valid WhatsApp recipient",
    ),
    code(
        63032,
        Final,
        MarketingNotDelivered,
        "WhatsApp holds back marketing messages to this guest (too many received)",
    ),
    code(
        MARKETING_NOT_DELIVERED,
        Final,
        MarketingNotDelivered,
        "WhatsApp did not deliver this marketing message to the guest",
    ),
    code(
        130472,
        Final,
        MarketingNotDelivered,
        "WhatsApp holds back marketing messages to this guest (a WhatsApp experiment)",
    ),
];

fn find(code: u32) -> Option<&'static Code> {
    CODES.iter().find(|c| c.code == code)
}

/// Twilio's error codes in words, for organizers reading a failed invitation.
pub fn describe(code: u32) -> &'static str {
    find(code).map_or("Twilio could not send the message", |c| c.words)
}

/// What an invitation's `error_code` (Twilio's number, or one of the
/// product's own reasons) means for the organizer.
pub fn action(error_code: &str) -> Action {
    match error_code.parse::<u32>() {
        Ok(code) => find(code).map_or(RetryByHand, |c| c.action),
        Err(_) => reason::action(error_code),
    }
}

/// The same for an invitation in `status`: one that failed for good after
/// its automatic tries is the organizer's to retry.
pub fn action_in(error_code: &str, status: Status) -> Action {
    match action(error_code) {
        RetryLater if matches!(status, Status::Failed | Status::Undelivered) => RetryByHand,
        action => action,
    }
}

/// Every code in the table, with what it means (tests go through each).
pub fn table() -> impl Iterator<Item = (u32, Class, Action, &'static str)> {
    CODES.iter().map(|c| (c.code, c.class, c.action, c.words))
}

/// What an error answer from the Messages API says about the message. A
/// 429 (20429) was never processed and a 4xx names the request; a 5xx may
/// have been processed, so its outcome is unknown.
pub fn refusal(http_status: u16, code: Option<u32>) -> Refusal {
    let rate_limited = http_status == 429 || code == Some(RATE_LIMITED);
    if !rate_limited && http_status >= 500 {
        Refusal::Unknown
    } else if code == Some(WHATSAPP_LIMIT) {
        // Also when answered 429: the limit, not the rate, refused it.
        Refusal::DailyLimit
    } else if rate_limited || code.and_then(find).is_some_and(|c| c.class == Class::Retry) {
        Refusal::RetryLater
    } else {
        code.map_or(Refusal::Failed, reported)
    }
}

/// What an error code in a status callback (or Twilio's record of a
/// message) means: the message was not delivered, for this reason.
pub fn reported(code: u32) -> Refusal {
    if code == WHATSAPP_LIMIT {
        return Refusal::DailyLimit;
    }
    match find(code).map(|c| c.action) {
        Some(OptedOut) => Refusal::OptedOut,
        Some(NotOnWhatsApp) => Refusal::NotOnChannel,
        Some(MarketingNotDelivered) => Refusal::MarketingNotDelivered,
        _ => Refusal::Failed,
    }
}

/// A failed request as the messenger port reports it: the code and words
/// an invitation records (the product's own `send_failed` when Twilio gave
/// no code), and Twilio's own text for the logs.
pub fn provider_error(refusal: Refusal, code: Option<u32>, detail: String) -> ProviderError {
    let error = match code {
        Some(code) => ErrorInfo {
            code: code.to_string(),
            message: describe(code).to_owned(),
        },
        None => ErrorInfo {
            code: reason::SEND_FAILED.to_owned(),
            message: detail.clone(),
        },
    };
    ProviderError {
        refusal,
        error,
        detail,
    }
}

/// An error code in Twilio's words, as a status callback reports it.
pub fn error_info(code: &str, message: Option<&str>) -> ErrorInfo {
    ErrorInfo {
        code: code.to_owned(),
        message: message
            .map(str::to_owned)
            .unwrap_or_else(|| describe(code.parse().unwrap_or(0)).to_owned()),
    }
}

/// Twilio's codes (and the product's own reasons) for the views that show
/// an invitation's error.
pub struct TwilioCodes;

impl ErrorCodes for TwilioCodes {
    fn action(&self, error_code: &str, status: Status) -> Action {
        action_in(error_code, status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        use Refusal::*;
        assert_eq!(refusal(429, Some(20429)), RetryLater);
        assert_eq!(refusal(400, Some(63018)), DailyLimit);
        assert_eq!(refusal(429, Some(63018)), DailyLimit);
        assert_eq!(refusal(429, None), RetryLater);
        assert_eq!(refusal(503, Some(20429)), RetryLater);
        assert_eq!(refusal(503, Some(63018)), Unknown);
        // A 5xx may have been processed: never retried automatically.
        assert_eq!(refusal(503, None), Unknown);
        assert_eq!(refusal(500, Some(20500)), Unknown);
        assert_eq!(refusal(400, Some(30003)), RetryLater);
        assert_eq!(refusal(400, Some(21211)), Failed);
        assert_eq!(refusal(400, Some(21610)), OptedOut);
        assert_eq!(refusal(400, Some(63024)), NotOnChannel);
        assert_eq!(refusal(400, Some(63049)), MarketingNotDelivered);
        assert_eq!(refusal(401, Some(20003)), Failed);
        assert_eq!(refusal(400, None), Failed);
    }

    #[test]
    fn words() {
        assert_eq!(
            describe(UNSUBSCRIBED),
            "The guest has unsubscribed (replied STOP)"
        );
        assert_eq!(describe(1), "Twilio could not send the message");
    }

    #[test]
    fn every_code_has_one_entry_and_an_action() {
        let mut seen = std::collections::HashSet::new();
        for c in CODES {
            assert!(seen.insert(c.code), "{} twice", c.code);
        }
        assert_eq!(action("63018"), WaitForDailyLimit);
        assert_eq!(action("63014"), OptedOut);
        assert_eq!(action("130472"), MarketingNotDelivered);
        assert_eq!(action("99999"), RetryByHand);
        assert_eq!(action("opted_out"), OptedOut);
        assert!(reported(21610) == Refusal::OptedOut && reported(63014) == Refusal::OptedOut);
        assert_ne!(reported(63024), Refusal::OptedOut);
        // Failed for good after its automatic tries: the organizer's to retry.
        assert_eq!(action_in("20429", Status::Queued), RetryLater);
        assert_eq!(action_in("20429", Status::Failed), RetryByHand);
    }
}
