//! Twilio's error codes: what each means to an organizer, and whether a
//! later try can get past it. The one place the product spells them.

use crate::ports::FailureKind;

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

/// Whether a later try can get past a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Retry,
    Final,
}

struct Code {
    code: u32,
    class: Class,
    words: &'static str,
}

const fn code(code: u32, class: Class, words: &'static str) -> Code {
    Code { code, class, words }
}

const CODES: &[Code] = &[
    code(
        RATE_LIMITED,
        Class::Retry,
        "Twilio is rate limiting us; it will be tried again",
    ),
    code(
        INTERNAL_ERROR,
        Class::Retry,
        "Twilio could not send the message",
    ),
    code(21211, Class::Final, "The phone number is not valid"),
    code(
        21408,
        Class::Final,
        "Sending to this country is not enabled on the Twilio account",
    ),
    code(
        UNSUBSCRIBED,
        Class::Final,
        "The guest has unsubscribed (replied STOP)",
    ),
    code(21614, Class::Final, "The number is not a mobile number"),
    code(
        30003,
        Class::Retry,
        "The phone is unreachable (off or out of coverage)",
    ),
    code(30005, Class::Final, "The number does not exist"),
    code(
        30006,
        Class::Final,
        "The number cannot receive this message (landline or unreachable carrier)",
    ),
    code(30007, Class::Final, "The carrier filtered the message"),
    code(30008, Class::Retry, "Delivery failed for an unknown reason"),
    code(63003, Class::Final, "The number is not on WhatsApp"),
    code(
        OUTSIDE_SESSION_WINDOW,
        Class::Final,
        "Outside the 24-hour window: an approved template is needed",
    ),
    code(
        WHATSAPP_LIMIT,
        Class::Retry,
        "WhatsApp rate limit reached; it will be tried again",
    ),
    code(
        63024,
        Class::Final,
        "The number is not a valid WhatsApp recipient",
    ),
];

fn find(code: u32) -> Option<&'static Code> {
    CODES.iter().find(|c| c.code == code)
}

/// Twilio's error codes in words, for organizers reading a failed invitation.
pub fn describe(code: u32) -> &'static str {
    find(code).map_or("Twilio could not send the message", |c| c.words)
}

/// What an error answer from the Messages API says about the message. A
/// 429 (20429) was never processed and a 4xx names the request; a 5xx may
/// have been processed, so its outcome is unknown.
pub fn classify(http_status: u16, code: Option<u32>) -> FailureKind {
    if http_status == 429 || code == Some(RATE_LIMITED) {
        FailureKind::Retry
    } else if http_status >= 500 {
        FailureKind::Unknown
    } else if code.and_then(find).is_some_and(|c| c.class == Class::Retry) {
        FailureKind::Retry
    } else {
        FailureKind::Final
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        use FailureKind::*;
        assert_eq!(classify(429, Some(20429)), Retry);
        assert_eq!(classify(400, Some(63018)), Retry);
        // A 5xx may have been processed: never retried automatically.
        assert_eq!(classify(503, None), Unknown);
        assert_eq!(classify(500, Some(20500)), Unknown);
        assert_eq!(classify(400, Some(21211)), Final);
        assert_eq!(classify(400, Some(21610)), Final);
        assert_eq!(classify(400, Some(63024)), Final);
        assert_eq!(classify(401, Some(20003)), Final);
    }

    #[test]
    fn words() {
        assert_eq!(
            describe(UNSUBSCRIBED),
            "The guest has unsubscribed (replied STOP)"
        );
        assert_eq!(describe(1), "Twilio could not send the message");
    }
}
