//! A guest's RSVP: yes, no or maybe, with companions, when and how it came.
//! The latest answer counts; earlier ones stay as history.

use super::{FieldError, GuestId, InvitationId};

/// What a guest answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    Yes,
    No,
    Maybe,
}

impl Answer {
    pub const ALL: [Answer; 3] = [Answer::Yes, Answer::No, Answer::Maybe];

    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Yes => "yes",
            Answer::No => "no",
            Answer::Maybe => "maybe",
        }
    }

    /// A typed reply as an answer, when it surely is one: its first words
    /// answer in English, Portuguese or Spanish and the rest neither
    /// hedges nor takes it back ([`super::reading`]). Anything else is not
    /// an answer (None): it is kept as a message for the organizer.
    pub fn from_reply(text: &str) -> Option<Answer> {
        super::reading::read(text)
    }
}

impl std::str::FromStr for Answer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Answer::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| "must be yes, no or maybe".to_owned())
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an answer reached the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerVia {
    /// A quick-reply button of the invitation, tapped in WhatsApp.
    Button,
    /// A reply typed in WhatsApp.
    Typed,
    /// The RSVP page at the invitation's link.
    Link,
    /// Entered or corrected by the organizer.
    Organizer,
}

impl AnswerVia {
    pub const ALL: [AnswerVia; 4] = [
        AnswerVia::Button,
        AnswerVia::Typed,
        AnswerVia::Link,
        AnswerVia::Organizer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnswerVia::Button => "button",
            AnswerVia::Typed => "typed",
            AnswerVia::Link => "link",
            AnswerVia::Organizer => "organizer",
        }
    }
}

impl std::str::FromStr for AnswerVia {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        AnswerVia::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown answer source {s}"))
    }
}

/// At most this many companions with one guest.
pub const MAX_COMPANIONS: u32 = 20;

/// Companions as given: a whole number from 0 to [`MAX_COMPANIONS`].
pub fn companions(raw: Option<i64>, field: &str) -> Result<u32, FieldError> {
    match raw {
        None => Ok(0),
        Some(n) if (0..=i64::from(MAX_COMPANIONS)).contains(&n) => Ok(n as u32),
        Some(_) => Err(FieldError::new(
            field,
            format!("must be a whole number from 0 to {MAX_COMPANIONS}"),
        )),
    }
}

/// One answer of a guest, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rsvp {
    pub answer: Answer,
    pub companions: u32,
    pub via: AnswerVia,
    pub at: String,
}

/// What the guest reads back after answering in WhatsApp, per answer:
/// templates with the invitation's variables, the organizer's to edit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Confirmations {
    pub yes: String,
    pub no: String,
    pub maybe: String,
}

impl Default for Confirmations {
    fn default() -> Self {
        Self {
            yes: "Thanks, {guest_first_name}! See you on {event_date}.".into(),
            no: "Thanks for letting us know, {guest_first_name}. We will miss you at {event_name}."
                .into(),
            maybe: "Thanks, {guest_first_name}! We noted a maybe for {event_name}; answer again whenever you know."
                .into(),
        }
    }
}

impl Confirmations {
    pub fn for_answer(&self, answer: Answer) -> &str {
        match answer {
            Answer::Yes => &self.yes,
            Answer::No => &self.no,
            Answer::Maybe => &self.maybe,
        }
    }
}

/// `confirmations` as an event is written with it: any answer left out
/// keeps its default.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationsInput {
    pub yes: Option<String>,
    pub no: Option<String>,
    pub maybe: Option<String>,
}

/// The longest confirmation template.
pub const MAX_CONFIRMATION_CHARS: usize = 1000;

impl ConfirmationsInput {
    /// Each text checked as a template is (`confirmations.yes`, ...).
    pub fn parse(self) -> Result<Confirmations, FieldError> {
        let mut out = Confirmations::default();
        for (answer, given) in [
            (Answer::Yes, self.yes),
            (Answer::No, self.no),
            (Answer::Maybe, self.maybe),
        ] {
            let Some(text) = given.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) else {
                continue;
            };
            let field = format!("confirmations.{answer}");
            if text.chars().count() > MAX_CONFIRMATION_CHARS {
                return Err(FieldError::new(
                    field,
                    format!("must be at most {MAX_CONFIRMATION_CHARS} characters"),
                ));
            }
            super::render::validate_text(&text).map_err(|e| FieldError::new(&field, e))?;
            match answer {
                Answer::Yes => out.yes = text,
                Answer::No => out.no = text,
                Answer::Maybe => out.maybe = text,
            }
        }
        Ok(out)
    }
}

/// A guest's message that was not an answer (nor STOP or START), kept for
/// the organizer to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub guest_id: GuestId,
    pub text: String,
    pub at: String,
    /// Twilio's id of the message: the same message is kept once.
    pub message_sid: String,
}

/// A guest's answers, oldest first; the latest counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RsvpHistory(Vec<Rsvp>);

impl RsvpHistory {
    pub fn new(answers: Vec<Rsvp>) -> Self {
        let mut answers = answers;
        answers.sort_by(|a, b| a.at.cmp(&b.at));
        Self(answers)
    }

    /// The answer that counts.
    pub fn latest(&self) -> Option<&Rsvp> {
        self.0.last()
    }

    pub fn all(&self) -> &[Rsvp] {
        &self.0
    }
}

/// The guest's credential for answering one invitation without a login:
/// the invitation's id and a random secret the stack generated for it
/// (`{invitation_id}.{secret}`). It is what the RSVP page's link and each
/// quick-reply button's payload carry; the secret is checked against the
/// stored one, so an altered token names nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerToken {
    pub invitation_id: InvitationId,
    pub secret: String,
}

/// Hex digits of an answer token's secret: 128 random bits.
const SECRET_HEX: usize = 32;

impl AnswerToken {
    /// A fresh secret for an invitation.
    pub fn new_secret() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// A token as it came in a link or a payload; None when it cannot be one.
    pub fn parse(raw: &str) -> Option<Self> {
        let (id, secret) = raw.rsplit_once('.')?;
        let hex = secret.len() == SECRET_HEX && secret.bytes().all(|b| b.is_ascii_hexdigit());
        Some(Self {
            invitation_id: InvitationId::parse(id).ok().filter(|_| hex)?,
            secret: secret.to_ascii_lowercase(),
        })
    }

    /// Whether `stored` is this token's secret, compared in constant time.
    pub fn opens(&self, stored: &str) -> bool {
        use subtle::ConstantTimeEq;
        !stored.is_empty() && bool::from(self.secret.as_bytes().ct_eq(stored.as_bytes()))
    }

    /// The payload of the button that answers `answer`: `rsvp.{answer}.{token}`.
    pub fn payload(&self, answer: Answer) -> String {
        format!("{PAYLOAD_PREFIX}{answer}.{self}")
    }
}

impl std::fmt::Display for AnswerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.invitation_id, self.secret)
    }
}

/// What every payload this stack puts on a button starts with.
const PAYLOAD_PREFIX: &str = "rsvp.";

/// A button payload, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// One of ours: an answer and the token it carries.
    Answer(Answer, AnswerToken),
    /// Ours in form, but altered: it names no invitation.
    Altered,
    /// Not one of ours (a button the organizer defined otherwise).
    Foreign,
}

impl Payload {
    pub fn parse(raw: &str) -> Payload {
        let Some(rest) = raw.trim().strip_prefix(PAYLOAD_PREFIX) else {
            return Payload::Foreign;
        };
        let parsed = rest.split_once('.').and_then(|(answer, token)| {
            Some((answer.parse::<Answer>().ok()?, AnswerToken::parse(token)?))
        });
        match parsed {
            Some((answer, token)) => Payload::Answer(answer, token),
            None => Payload::Altered,
        }
    }
}

/// An event's headcount: guests per answer, those without one, and the
/// companions of those coming.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Headcount {
    pub yes: u64,
    pub no: u64,
    pub maybe: u64,
    pub no_answer: u64,
    /// Companions of guests who answered yes.
    pub companions: u64,
}

impl Headcount {
    /// Counts each guest once, by their latest answer (None: no answer yet).
    pub fn of<'a>(latest: impl IntoIterator<Item = Option<&'a Rsvp>>) -> Self {
        let mut count = Headcount::default();
        for rsvp in latest {
            match rsvp {
                None => count.no_answer += 1,
                Some(r) => match r.answer {
                    Answer::Yes => {
                        count.yes += 1;
                        count.companions += u64::from(r.companions);
                    }
                    Answer::No => count.no += 1,
                    Answer::Maybe => count.maybe += 1,
                },
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_payloads_parse_and_check() {
        let secret = AnswerToken::new_secret();
        let token = AnswerToken {
            invitation_id: InvitationId::parse("inv_0123").unwrap(),
            secret: secret.clone(),
        };
        let again = AnswerToken::parse(&token.to_string()).unwrap();
        assert_eq!(again, token);
        assert!(again.opens(&secret));
        assert!(!again.opens(&AnswerToken::new_secret()));
        assert!(!again.opens(""));
        assert_eq!(
            Payload::parse(&token.payload(Answer::Maybe)),
            Payload::Answer(Answer::Maybe, token.clone())
        );
        for altered in [
            format!("rsvp.yes.inv_0123.{}", &secret[..31]),
            format!("rsvp.sure.inv_0123.{secret}"),
            format!("rsvp.yes.inv 0123.{secret}"),
            "rsvp.yes".to_owned(),
        ] {
            assert_eq!(Payload::parse(&altered), Payload::Altered, "{altered}");
        }
        assert_eq!(Payload::parse("YES_BUTTON"), Payload::Foreign);
    }

    #[test]
    fn typed_replies_in_three_languages_any_case_and_accent() {
        for (text, answer) in [
            ("yes", Answer::Yes),
            ("YES!", Answer::Yes),
            ("Sim", Answer::Yes),
            ("sí", Answer::Yes),
            ("Si 🙂", Answer::Yes),
            ("sim sim", Answer::Yes),
            ("no", Answer::No),
            ("Não", Answer::No),
            ("nao.", Answer::No),
            ("NO", Answer::No),
            ("maybe", Answer::Maybe),
            ("Talvez", Answer::Maybe),
            ("quizás", Answer::Maybe),
            ("Quizas?", Answer::Maybe),
            ("tal vez", Answer::Maybe),
        ] {
            assert_eq!(Answer::from_reply(text), Some(answer), "{text:?}");
        }
    }

    #[test]
    fn anything_else_is_a_message_not_an_answer() {
        for text in [
            "",
            "   ",
            "yes but I'll be late",
            "can I bring my sister?",
            "no sé",
            "thanks",
            "sim e não",
            "yesterday",
        ] {
            assert_eq!(Answer::from_reply(text), None, "{text:?}");
        }
    }

    #[test]
    fn answers_parse_from_their_names_only() {
        assert_eq!("maybe".parse::<Answer>(), Ok(Answer::Maybe));
        assert!("Maybe".parse::<Answer>().is_err());
        assert!("si".parse::<Answer>().is_err());
    }

    #[test]
    fn companions_are_a_small_whole_number() {
        assert_eq!(companions(None, "companions"), Ok(0));
        assert_eq!(companions(Some(3), "companions"), Ok(3));
        assert_eq!(
            companions(Some(-1), "companions").unwrap_err().field,
            "companions"
        );
        assert!(companions(Some(21), "companions").is_err());
    }

    fn rsvp(answer: Answer, companions: u32, at: &str) -> Rsvp {
        Rsvp {
            answer,
            companions,
            via: AnswerVia::Button,
            at: at.to_owned(),
        }
    }

    #[test]
    fn the_latest_answer_counts_and_the_history_stays() {
        let history = RsvpHistory::new(vec![
            rsvp(Answer::Maybe, 0, "2027-04-02T10:00:00.000Z"),
            rsvp(Answer::Yes, 2, "2027-04-03T10:00:00.000Z"),
            rsvp(Answer::No, 0, "2027-04-01T10:00:00.000Z"),
        ]);
        assert_eq!(history.latest().map(|r| r.answer), Some(Answer::Yes));
        let order: Vec<Answer> = history.all().iter().map(|r| r.answer).collect();
        assert_eq!(order, [Answer::No, Answer::Maybe, Answer::Yes]);
    }

    #[test]
    fn the_headcount_counts_each_guest_once_by_their_latest_answer() {
        let yes = rsvp(Answer::Yes, 2, "t");
        let also_yes = rsvp(Answer::Yes, 0, "t");
        let no = rsvp(Answer::No, 1, "t");
        let maybe = rsvp(Answer::Maybe, 0, "t");
        let count = Headcount::of([
            Some(&yes),
            Some(&also_yes),
            Some(&no),
            Some(&maybe),
            None,
            None,
        ]);
        assert_eq!(
            count,
            Headcount {
                yes: 2,
                no: 1,
                maybe: 1,
                no_answer: 2,
                companions: 2,
            }
        );
    }
}
