use super::PhoneNumber;

/// Who last changed a number's opt-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptOutSource {
    /// The guest, with a keyword (STOP, START, ...) sent to our WhatsApp sender.
    Inbound,
    /// Twilio refused a send with 21610 (the recipient unsubscribed).
    Twilio,
    /// An organizer, through the API.
    Api,
}

impl OptOutSource {
    pub fn as_str(self) -> &'static str {
        match self {
            OptOutSource::Inbound => "inbound",
            OptOutSource::Twilio => "twilio",
            OptOutSource::Api => "api",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Inbound, Self::Twilio, Self::Api]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }

    /// Only the guest can take back what the guest (or Twilio, for the
    /// guest) said; an organizer can lift only an opt-out an organizer made.
    pub fn is_guests_own(self) -> bool {
        matches!(self, OptOutSource::Inbound | OptOutSource::Twilio)
    }
}

/// Whether a WhatsApp number may be messaged. One record per number for the
/// whole stack: the guest said STOP to our sender, whichever organizer's
/// invitation it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    pub phone: PhoneNumber,
    pub opted_out: bool,
    pub source: OptOutSource,
    /// The guest's keyword (upper case), when the guest made the change.
    pub keyword: Option<String>,
    /// The organizer who made the change through the API.
    pub by: Option<String>,
    pub updated_at: String,
}

impl OptOut {
    /// The guest's own keyword to our sender: STOP (`opted_out`) or START.
    pub fn by_guest(phone: PhoneNumber, opted_out: bool, keyword: String, at: &str) -> Self {
        Self {
            phone,
            opted_out,
            source: OptOutSource::Inbound,
            keyword: Some(keyword),
            by: None,
            updated_at: at.to_owned(),
        }
    }

    /// Twilio refused a send because the guest unsubscribed.
    pub fn by_twilio(phone: PhoneNumber, at: &str) -> Self {
        Self {
            phone,
            opted_out: true,
            source: OptOutSource::Twilio,
            keyword: None,
            by: None,
            updated_at: at.to_owned(),
        }
    }

    /// An organizer opting a number out (`opted_out`) or lifting their own opt-out.
    pub fn by_organizer(phone: PhoneNumber, organizer: &str, opted_out: bool, at: &str) -> Self {
        Self {
            phone,
            opted_out,
            source: OptOutSource::Api,
            keyword: None,
            by: Some(organizer.to_owned()),
            updated_at: at.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert!(OptOutSource::Inbound.is_guests_own());
        assert!(!OptOutSource::Api.is_guests_own());
        assert_eq!(OptOutSource::parse("twilio"), Some(OptOutSource::Twilio));
    }
}
