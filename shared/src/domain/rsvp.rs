//! A guest's RSVP: yes, no or maybe, with companions, when and how it came.
//! The latest answer counts; earlier ones stay as history.

use super::FieldError;

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

    /// A typed reply as an answer, when it is one: the reply's words in
    /// English, Portuguese or Spanish, any case, accents or none, with the
    /// punctuation and emoji people add ("Sim!", "não", "Quizás 🙂").
    /// Anything else is not an answer (None): it is kept as a message.
    pub fn from_reply(text: &str) -> Option<Answer> {
        // Letters only (emoji and punctuation become spaces), then accents folded.
        let letters: String = text
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let folded = deunicode::deunicode(&letters).to_lowercase();
        let words: Vec<&str> = folded.split_whitespace().collect();
        let phrase = words.join(" ");
        // One word or phrase, or one word said twice ("sim sim"): a sentence
        // is for the organizer to read, not for a guess.
        let said = match words.as_slice() {
            [one, two] if one == two => *one,
            _ => phrase.as_str(),
        };
        REPLY_WORDS
            .iter()
            .find(|(words, _)| words.contains(&said))
            .map(|(_, answer)| *answer)
    }
}

/// The words a typed reply may be, accents folded: English, Portuguese, Spanish.
const REPLY_WORDS: [(&[&str], Answer); 3] = [
    (&["yes", "y", "sim", "si", "s"], Answer::Yes),
    (&["no", "n", "nao"], Answer::No),
    (
        &["maybe", "talvez", "quizas", "quiza", "tal vez"],
        Answer::Maybe,
    ),
];

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
