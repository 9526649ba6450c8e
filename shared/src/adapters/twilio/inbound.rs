//! A guest's message to our WhatsApp sender: Twilio's standard opt-out and
//! opt-in keywords.

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
    }
}
