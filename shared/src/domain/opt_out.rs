use super::PhoneNumber;
use super::reason::{OPTED_OUT, OPTED_OUT_BY_YOU, Reason};
use std::collections::HashMap;

/// Numbers one opt-out lookup may ask about: a 2,000-guest event is two requests.
pub const MAX_LOOKUP: usize = 1_000;

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

/// Whether a WhatsApp number may be messaged. The guest's own record (a
/// keyword, or Twilio's 21610) is one per WhatsApp user for the whole stack:
/// the guest said STOP to our sender, whichever organizer's invitation it
/// answered. An organizer's record binds that organizer only.
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
    /// Why a binding opt-out keeps an invitation from being sent: the
    /// guest's own, or the organizer's.
    pub fn reason(&self) -> Reason {
        if self.source.is_guests_own() {
            OPTED_OUT
        } else {
            OPTED_OUT_BY_YOU
        }
    }

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

    /// Whether this record keeps `organizer` from messaging the number.
    pub fn binds(&self, organizer: &str) -> bool {
        self.opted_out && self.concerns(organizer)
    }

    /// Whether `organizer` may see this record: the guest's own records
    /// concern every organizer, an organizer's only that organizer.
    pub fn concerns(&self, organizer: &str) -> bool {
        self.source.is_guests_own() || self.by.as_deref() == Some(organizer)
    }
}

/// What one organizer may know of one WhatsApp number: the guest's own
/// record only once the organizer has invited the number (no organizer
/// learns anything about a number it never invited), and its own record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenOptOuts {
    pub guests: Option<OptOut>,
    pub own: Option<OptOut>,
}

impl SeenOptOuts {
    /// Filters what the store holds to what `organizer` may see.
    pub fn of(organizer: &str, guests: Option<OptOut>, own: Option<OptOut>, invited: bool) -> Self {
        Self {
            guests: guests.filter(|g| invited && g.concerns(organizer)),
            own: own.filter(|o| o.concerns(organizer)),
        }
    }

    /// The record that answers "may I message this number?": one that binds
    /// (the guest's first, as only the guest can lift it), else the latest.
    pub fn effective(&self) -> Option<&OptOut> {
        let records = || self.guests.iter().chain(self.own.iter());
        records()
            .find(|r| r.opted_out)
            .or_else(|| records().max_by(|a, b| a.updated_at.cmp(&b.updated_at)))
    }
}

/// The opt-out records read for a set of (organizer, number) pairs: answers
/// which of them may not be messaged.
#[derive(Debug, Clone, Default)]
pub struct OptOuts {
    /// By WhatsApp identity, the guest's own records.
    guests: HashMap<String, OptOut>,
    /// By (WhatsApp identity, organizer), organizers' own records.
    organizers: HashMap<(String, String), OptOut>,
}

impl OptOuts {
    pub fn add(&mut self, record: OptOut) {
        let identity = record.phone.whatsapp_identity();
        match (record.source.is_guests_own(), record.by.clone()) {
            (false, Some(by)) => {
                self.organizers.insert((identity, by), record);
            }
            _ => {
                self.guests.insert(identity, record);
            }
        }
    }

    /// Whether `organizer` may not message `phone`, in whatever form the
    /// opt-out was recorded.
    pub fn bind(&self, organizer: &str, phone: &PhoneNumber) -> bool {
        self.binding(organizer, phone).is_some()
    }

    /// The record that keeps `organizer` from messaging `phone`: the
    /// guest's own first (only the guest can lift it), else the organizer's.
    pub fn binding(&self, organizer: &str, phone: &PhoneNumber) -> Option<&OptOut> {
        let identity = phone.whatsapp_identity();
        let guests = self.guests.get(&identity);
        let own = self.organizers.get(&(identity, organizer.to_owned()));
        guests.into_iter().chain(own).find(|r| r.binds(organizer))
    }

    /// Why `organizer` may not message `phone`, if it may not.
    pub fn reason(&self, organizer: &str, phone: &PhoneNumber) -> Option<Reason> {
        self.binding(organizer, phone).map(OptOut::reason)
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

    fn phone(raw: &str) -> PhoneNumber {
        PhoneNumber::parse(raw).unwrap()
    }

    #[test]
    fn a_guests_stop_binds_everyone_an_organizers_only_itself() {
        let mut read = OptOuts::default();
        read.add(OptOut::by_guest(
            phone("+552187001234"),
            true,
            "STOP".into(),
            "t1",
        ));
        read.add(OptOut::by_organizer(
            phone("+5511999990001"),
            "a",
            true,
            "t1",
        ));
        // The guest's STOP, recorded in the form WhatsApp reported, holds
        // for the dialled form too, for every organizer.
        assert!(read.bind("a", &phone("+5521987001234")));
        assert!(read.bind("b", &phone("+5521987001234")));
        assert!(read.bind("a", &phone("+5511999990001")));
        assert!(!read.bind("b", &phone("+5511999990001")));
    }

    #[test]
    fn an_organizer_sees_the_guests_record_only_for_numbers_it_invited() {
        let stop = OptOut::by_guest(phone("+5511999990001"), true, "STOP".into(), "t1");
        let others = OptOut::by_organizer(phone("+5511999990001"), "b", true, "t2");
        let seen = SeenOptOuts::of("a", Some(stop.clone()), Some(others.clone()), false);
        assert_eq!(seen, SeenOptOuts::default());
        let seen = SeenOptOuts::of("a", Some(stop.clone()), None, true);
        assert_eq!(seen.effective(), Some(&stop));
        let own_lifted = OptOut::by_organizer(phone("+5511999990001"), "a", false, "t3");
        let seen = SeenOptOuts::of("a", Some(stop.clone()), Some(own_lifted), true);
        assert_eq!(seen.effective(), Some(&stop));
    }
}

/// A guest's message as a keyword: opt out of messages, or back in.
/// What an inbound message's text asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    OptOut,
    OptIn,
}

/// The opt-out and opt-in keywords guests know from WhatsApp senders
/// (Twilio's standard set).
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
mod keyword_tests {
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
