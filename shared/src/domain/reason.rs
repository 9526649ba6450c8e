//! The product's own reasons for an invitation's outcome (Twilio's error
//! codes are the Twilio adapter's): a stable code and the words an
//! organizer reads.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason {
    pub code: &'static str,
    pub message: &'static str,
}

/// Not sent because the guest opted out.
pub const OPTED_OUT: Reason = Reason {
    code: "opted_out",
    message: "The guest opted out of WhatsApp messages from this sender (STOP); not sent",
};

/// The event was deleted before the message was rendered.
pub const EVENT_MISSING: Reason = Reason {
    code: "event_missing",
    message: "the event no longer exists",
};

/// The template version the invitation recorded is gone.
pub const TEMPLATE_MISSING: Reason = Reason {
    code: "template_missing",
    message: "the invitation's template version no longer exists",
};

/// A provider failure that carries no code of its own.
pub const SEND_FAILED: &str = "send_failed";

/// Flag set when a redelivered message finds its invitation mid-send: the
/// provider may have accepted the first try, so nothing is resent
/// automatically.
pub const SEND_UNCONFIRMED: &str = "send_unconfirmed";
