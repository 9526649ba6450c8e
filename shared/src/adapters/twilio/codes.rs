//! Twilio's error codes: what each means to an organizer, and whether a
//! later try can get past it. The one place the product spells them.

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

/// Whether a failure is worth retrying: rate limits, Twilio outages (5xx),
/// and the codes Twilio documents as transient. Everything else is final.
pub fn classify(http_status: u16, code: Option<u32>) -> bool {
    http_status == 429
        || http_status >= 500
        || code.and_then(find).is_some_and(|c| c.class == Class::Retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(classify(429, Some(20429)));
        assert!(classify(503, None));
        assert!(classify(400, Some(63018)));
        assert!(!classify(400, Some(21211)));
        assert!(!classify(400, Some(21610)));
        assert!(!classify(400, Some(63024)));
        assert!(!classify(401, Some(20003)));
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
