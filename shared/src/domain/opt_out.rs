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

/// What an inbound message's text asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    OptOut,
    OptIn,
}

/// Twilio's standard opt-out and opt-in keywords.
pub const OPT_OUT_KEYWORDS: [&str; 6] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
pub const OPT_IN_KEYWORDS: [&str; 3] = ["START", "YES", "UNSTOP"];

impl Keyword {
    /// The message as a keyword: the whole text, trimmed (of spaces and
    /// punctuation, so "Stop." counts), in any case.
    pub fn of(body: &str) -> Option<(Keyword, String)> {
        let word = body
            .trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
            .to_uppercase();
        if OPT_OUT_KEYWORDS.contains(&word.as_str()) {
            Some((Keyword::OptOut, word))
        } else if OPT_IN_KEYWORDS.contains(&word.as_str()) {
            Some((Keyword::OptIn, word))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords() {
        assert_eq!(
            Keyword::of(" stop\n"),
            Some((Keyword::OptOut, "STOP".into()))
        );
        assert_eq!(
            Keyword::of("Unsubscribe"),
            Some((Keyword::OptOut, "UNSUBSCRIBE".into()))
        );
        assert_eq!(Keyword::of("quit"), Some((Keyword::OptOut, "QUIT".into())));
        assert_eq!(Keyword::of("Start"), Some((Keyword::OptIn, "START".into())));
        assert_eq!(Keyword::of("Stop!"), Some((Keyword::OptOut, "STOP".into())));
        assert_eq!(Keyword::of("please stop"), None);
        assert_eq!(Keyword::of("stop it"), None);
        assert_eq!(Keyword::of(""), None);
        assert!(OptOutSource::Inbound.is_guests_own());
        assert!(!OptOutSource::Api.is_guests_own());
        assert_eq!(OptOutSource::parse("twilio"), Some(OptOutSource::Twilio));
    }
}
