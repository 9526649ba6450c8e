//! The product's own reasons for an invitation's outcome (Twilio's error
//! codes are the Twilio adapter's): a stable code and the words an
//! organizer reads.

/// What an invitation's failure means for the organizer: what the product
/// does about it, or what the organizer can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Tried again automatically.
    RetryLater,
    /// WhatsApp's daily limit of new conversations: retry once it frees up.
    WaitForDailyLimit,
    /// Free-form text outside the 24-hour window: an approved template is needed.
    NeedsApprovedTemplate,
    #[serde(rename = "not_on_whatsapp")]
    NotOnWhatsApp,
    /// WhatsApp does not deliver this Marketing template to this guest.
    MarketingNotDelivered,
    /// The guest opted out or blocked the sender: recorded as an opt-out.
    OptedOut,
    /// The organizer opted the number out; only it binds.
    LiftYourOptOut,
    /// The message expired before it could be delivered.
    Expired,
    InvalidNumber,
    /// The Twilio account or sender needs attention (whoever runs the stack).
    CheckAccount,
    /// The template cannot be rendered for this guest.
    FixTemplate,
    /// Anything else: retry, or check the guest's details.
    RetryByHand,
    /// A reminder the guest's answer made needless.
    Answered,
    /// The guest was removed from the list, or their number changed,
    /// after the invitation was queued.
    GuestListChanged,
}

impl Action {
    /// What to do, in an organizer's words.
    pub fn what_to_do(self) -> &'static str {
        match self {
            Action::RetryLater => "Nothing to do: it is tried again automatically.",
            Action::WaitForDailyLimit => {
                "Nothing to do: WhatsApp's daily limit on new conversations is reached, and it goes out by itself as the 24-hour window frees places, oldest first."
            }
            Action::NeedsApprovedTemplate => {
                "Send it with an approved WhatsApp template, or once the guest has written to you in the last 24 hours."
            }
            Action::NotOnWhatsApp => "Check the number with the guest, or invite them another way.",
            Action::MarketingNotDelivered => {
                "WhatsApp does not deliver marketing messages to this guest: invite them another way, or with a Utility template if it fits."
            }
            Action::OptedOut => {
                "Nothing to send: only the guest can opt back in, by sending START."
            }
            Action::LiftYourOptOut => {
                "You opted this number out: lift your opt-out first if you mean to invite them."
            }
            Action::Expired => "Retry it: it expired before it could be delivered.",
            Action::InvalidNumber => "Correct the guest's number, then send again.",
            Action::CheckAccount => {
                "Ask whoever runs the stack to check the Twilio account and WhatsApp sender."
            }
            Action::FixTemplate => "Fix the template (or the event's details it uses), then retry.",
            Action::RetryByHand => "Retry it; if it fails again, check the guest's number.",
            Action::Answered => "Nothing to do: the guest answered, so the reminder was not sent.",
            Action::GuestListChanged => {
                "Nothing to do if you meant it: the guest list changed after this was queued. To invite the guest at their number now, send to them again."
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason {
    pub code: &'static str,
    pub message: &'static str,
    pub action: Action,
}

/// Every reason the product records.
pub const ALL: [Reason; 9] = [
    OPTED_OUT,
    OPTED_OUT_BY_YOU,
    MARKETING_TO_US,
    MARKETING_HELD_BACK,
    EVENT_MISSING,
    TEMPLATE_MISSING,
    ANSWERED,
    GUEST_REMOVED,
    NUMBER_CHANGED,
];

/// What one of the product's own reason codes means for the organizer
/// (rendering's codes included).
pub fn action(code: &str) -> Action {
    if super::render::is_template_error_code(code) {
        return Action::FixTemplate;
    }
    ALL.into_iter()
        .find(|r| r.code == code)
        .map_or(Action::RetryByHand, |r| r.action)
}

/// A reminder not sent: the guest answered before it went out.
pub const ANSWERED: Reason = Reason {
    code: "answered",
    message: "The guest answered before this reminder went out",
    action: Action::Answered,
};

/// Not sent: the guest was removed from the list before it went out.
pub const GUEST_REMOVED: Reason = Reason {
    code: "guest_removed",
    message: "Removed from the guest list before it went out; not sent",
    action: Action::GuestListChanged,
};

/// Not sent: the guest's number changed on the list before it went out
/// (the message would have gone to the old number).
pub const NUMBER_CHANGED: Reason = Reason {
    code: "number_changed",
    message: "The guest's number changed before it went out; not sent to the old number",
    action: Action::GuestListChanged,
};

/// Not sent because the guest opted out.
pub const OPTED_OUT: Reason = Reason {
    code: "opted_out",
    message: "The guest opted out of WhatsApp messages from this sender (STOP); not sent",
    action: Action::OptedOut,
};

/// Not sent because the organizer opted the number out.
pub const OPTED_OUT_BY_YOU: Reason = Reason {
    code: "opted_out_by_you",
    message: "You opted this number out; not sent",
    action: Action::LiftYourOptOut,
};

/// Not sent: WhatsApp does not deliver Marketing templates to US numbers.
pub const MARKETING_TO_US: Reason = Reason {
    code: "marketing_to_us",
    message: "WhatsApp does not deliver Marketing templates to US numbers; not sent",
    action: Action::MarketingNotDelivered,
};

/// WhatsApp held back a marketing message for a guest outside the US
/// (Twilio's 63049): it waits and is tried again later, by itself.
pub const MARKETING_HELD_BACK: Reason = Reason {
    code: "marketing_held_back",
    message: "WhatsApp held back this marketing message for now (63049)",
    action: Action::RetryLater,
};

/// The event was deleted before the message was rendered.
pub const EVENT_MISSING: Reason = Reason {
    code: "event_missing",
    message: "the event no longer exists",
    action: Action::RetryByHand,
};

/// The template version the invitation recorded is gone.
pub const TEMPLATE_MISSING: Reason = Reason {
    code: "template_missing",
    message: "the invitation's template version no longer exists",
    action: Action::FixTemplate,
};

/// A provider failure that carries no code of its own.
pub const SEND_FAILED: &str = "send_failed";

/// Flag set when a redelivered message finds its invitation mid-send: the
/// provider may have accepted the first try, so nothing is resent
/// automatically.
pub const SEND_UNCONFIRMED: &str = "send_unconfirmed";

/// Every flag an invitation can carry, with the words an organizer reads.
pub const FLAGS: [(&str, &str); 1] = [(
    SEND_UNCONFIRMED,
    "Unconfirmed: sending was interrupted, so Twilio may or may not have taken the message. Retry only if the guest did not get it.",
)];
