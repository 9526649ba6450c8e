//! Twilio at the edge: the Messages API client, its error classification,
//! and the request signature.

mod client;
pub mod signature;

pub use client::{TwilioClient, TwilioCredentials, classify};

/// Twilio's error codes in words, for organizers reading a failed invitation.
pub fn describe(code: u32) -> &'static str {
    match code {
        20429 => "Twilio is rate limiting us; it will be tried again",
        21211 => "The phone number is not valid",
        21408 => "Sending to this country is not enabled on the Twilio account",
        21610 => "The guest has unsubscribed (replied STOP)",
        21614 => "The number is not a mobile number",
        30003 => "The phone is unreachable (off or out of coverage)",
        30005 => "The number does not exist",
        30006 => "The number cannot receive this message (landline or unreachable carrier)",
        30007 => "The carrier filtered the message",
        30008 => "Delivery failed for an unknown reason",
        63003 => "The number is not on WhatsApp",
        63016 => "Outside the 24-hour window: an approved template is needed",
        63018 => "WhatsApp rate limit reached; it will be tried again",
        63024 => "The number is not a valid WhatsApp recipient",
        _ => "Twilio could not send the message",
    }
}
