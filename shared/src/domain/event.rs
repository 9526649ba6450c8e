use super::reminder::{ReminderInput, ReminderTime, parse_plan};
use super::rsvp::{Confirmations, ConfirmationsInput};
use super::{EventId, FieldError, TemplateId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An event as the organizer defined it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    pub event_id: EventId,
    pub name: String,
    /// RFC 3339 with the organizer's offset, kept as given so the invitation
    /// shows the local time the organizer meant.
    pub starts_at: String,
    pub venue: String,
    pub host: String,
    /// The organizer's own RSVP app: each guest's link is this URL and the
    /// guest's `rsvp_token`. None: the stack's own RSVP page, whose links
    /// carry each invitation's answer token.
    pub rsvp_base_url: Option<String>,
    /// The template sends for this event use unless they name one.
    pub default_template_id: Option<TemplateId>,
    /// What a guest reads back after answering in WhatsApp.
    pub confirmations: Confirmations,
    /// When answers are wanted by (RFC 3339, the organizer's offset).
    pub rsvp_deadline: Option<String>,
    /// When guests without an answer are reminded, counting down to the
    /// deadline (else the start).
    pub reminders: Vec<ReminderTime>,
    /// The template reminders are sent with (usually a Utility one); None:
    /// the built-in reminder.
    pub reminder_template_id: Option<TemplateId>,
    /// The organizer (caller identity) that owns the event; never shown.
    #[serde(skip)]
    pub owner: String,
    pub updated_at: String,
}

/// The body of `PUT /events/{eventId}`, before validation.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    pub name: Option<String>,
    pub starts_at: Option<String>,
    pub venue: Option<String>,
    pub host: Option<String>,
    pub rsvp_base_url: Option<String>,
    pub default_template_id: Option<String>,
    pub confirmations: Option<ConfirmationsInput>,
    pub rsvp_deadline: Option<String>,
    pub reminders: Option<Vec<ReminderInput>>,
    pub reminder_template_id: Option<String>,
}

pub(crate) fn required_text(
    value: Option<String>,
    field: &str,
    max: usize,
) -> Result<String, FieldError> {
    let value = value.map(|v| v.trim().to_owned()).unwrap_or_default();
    if value.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if let Some(c) = value.chars().find(|c| not_in_one_line(*c)) {
        return Err(FieldError::new(
            field,
            format!(
                "must be one line of text: no line breaks, tabs, control characters or direction overrides (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    Ok(value)
}

/// What a one-line text (a name, a venue) never holds: it goes into
/// messages, where WhatsApp refuses line breaks and tabs in a template's
/// variables, and a direction override (U+202E) would turn the rest of
/// the message around.
fn not_in_one_line(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

impl EventInput {
    pub fn parse(self, event_id: EventId, owner: &str, now: &str) -> Result<Event, FieldError> {
        let name = required_text(self.name, "name", 200)?;
        let starts_at = required_text(self.starts_at, "starts_at", 64)?;
        let start = OffsetDateTime::parse(&starts_at, &Rfc3339).map_err(|_| {
            FieldError::new(
                "starts_at",
                "must be an RFC 3339 date-time such as 2027-05-01T17:00:00-03:00",
            )
        })?;
        let (rsvp_deadline, reminders) = parse_plan(self.rsvp_deadline, self.reminders, &start)?;
        let reminder_template_id = self
            .reminder_template_id
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .map(|t| TemplateId::parse(&t))
            .transpose()
            .map_err(|e| FieldError::new("reminder_template_id", e))?;
        let venue = required_text(self.venue, "venue", 300)?;
        let host = required_text(self.host, "host", 200)?;
        let rsvp_base_url = self
            .rsvp_base_url
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        if let Some(url) = &rsvp_base_url {
            let valid_url = (url.starts_with("https://") || url.starts_with("http://"))
                && !url.contains(char::is_whitespace);
            if !valid_url {
                return Err(FieldError::new(
                    "rsvp_base_url",
                    "must be an http(s) URL such as https://rsvp.example.com/r/, or left out for this stack's own RSVP page",
                ));
            }
            if url.chars().count() > 500 {
                return Err(FieldError::new(
                    "rsvp_base_url",
                    "must be at most 500 characters",
                ));
            }
        }
        let default_template_id = self
            .default_template_id
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .map(|t| TemplateId::parse(&t))
            .transpose()
            .map_err(|e| FieldError::new("default_template_id", e))?;
        let confirmations = self
            .confirmations
            .map(ConfirmationsInput::parse)
            .transpose()?
            .unwrap_or_default();
        Ok(Event {
            confirmations,
            rsvp_deadline,
            reminders,
            reminder_template_id,
            event_id,
            name,
            starts_at,
            venue,
            host,
            rsvp_base_url,
            default_template_id,
            owner: owner.to_owned(),
            updated_at: now.to_owned(),
        })
    }
}

impl Event {
    /// The guest's link into the organizer's own RSVP app (the base URL
    /// with the guest's token appended); None when the event uses the
    /// stack's RSVP page.
    pub fn rsvp_link(&self, token: &str) -> Option<String> {
        self.rsvp_base_url
            .as_ref()
            .map(|base| format!("{base}{token}"))
    }

    /// The start as an instant, for ordering events with different offsets.
    pub fn starts_at_instant(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(&self.starts_at, &Rfc3339).ok()
    }

    /// The date as guests read it, e.g. "Saturday, 1 May 2027, 17:00".
    pub fn display_date(&self) -> String {
        let Ok(at) = OffsetDateTime::parse(&self.starts_at, &Rfc3339) else {
            return self.starts_at.clone();
        };
        let format = time::macros::format_description!(
            "[weekday], [day padding:none] [month repr:long] [year], [hour]:[minute]"
        );
        at.format(&format)
            .unwrap_or_else(|_| self.starts_at.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> EventInput {
        EventInput {
            name: Some("Gala".into()),
            starts_at: Some("2027-05-01T17:00:00-03:00".into()),
            venue: Some("Hall".into()),
            host: Some("Ana".into()),
            rsvp_base_url: Some("https://rsvp.example.com/r/".into()),
            ..Default::default()
        }
    }

    #[test]
    fn one_line_texts_refuse_line_breaks_controls_and_direction_overrides() {
        let id = EventId::parse("e1").unwrap();
        for (venue, found) in [
            ("Casa\nRosa", "U+000A"),
            ("Casa\tRosa", "U+0009"),
            ("Casa \u{202E}asoR", "U+202E"),
            ("Casa \u{2067}Rosa", "U+2067"),
            ("Casa\u{2028}Rosa", "U+2028"),
            ("Casa\u{7}Rosa", "U+0007"),
        ] {
            let err = EventInput {
                venue: Some(venue.into()),
                ..input()
            }
            .parse(id.clone(), "org", "now")
            .unwrap_err();
            assert_eq!(err.field, "venue", "{venue:?}");
            assert!(err.message.contains(found), "{venue:?}: {}", err.message);
        }
        // Right-to-left names and their marks are text like any other.
        let hebrew = EventInput {
            host: Some("\u{5D3}\u{5E0}\u{5D4} \u{200F}(+972)".into()),
            ..input()
        };
        assert!(hebrew.parse(id, "org", "now").is_ok());
    }

    #[test]
    fn parses_and_names_bad_fields() {
        let id = EventId::parse("e1").unwrap();
        let ev = input().parse(id.clone(), "org", "now").unwrap();
        assert_eq!(ev.display_date(), "Saturday, 1 May 2027, 17:00");
        assert_eq!(
            ev.rsvp_link("tok").as_deref(),
            Some("https://rsvp.example.com/r/tok")
        );
        let own = EventInput {
            rsvp_base_url: Some(" ".into()),
            ..input()
        }
        .parse(id.clone(), "o", "n")
        .unwrap();
        assert_eq!(own.rsvp_link("tok"), None);
        let err = EventInput {
            starts_at: Some("tomorrow".into()),
            ..input()
        }
        .parse(id.clone(), "o", "n")
        .unwrap_err();
        assert_eq!(err.field, "starts_at");
        let err = EventInput {
            name: None,
            ..input()
        }
        .parse(id.clone(), "o", "n")
        .unwrap_err();
        assert_eq!(err.field, "name");
        let err = EventInput {
            rsvp_base_url: Some("ftp://x".into()),
            ..input()
        }
        .parse(id, "o", "n")
        .unwrap_err();
        assert_eq!(err.field, "rsvp_base_url");
    }
}

#[cfg(test)]
mod ordering_tests {
    use super::*;

    #[test]
    fn instants_order_across_offsets() {
        let at = |s: &str| {
            let mut e = EventInput {
                name: Some("n".into()),
                starts_at: Some(s.into()),
                venue: Some("v".into()),
                host: Some("h".into()),
                rsvp_base_url: Some("https://r.example/".into()),
                ..Default::default()
            }
            .parse(EventId::parse("e").unwrap(), "o", "now")
            .unwrap();
            e.updated_at.clear();
            e
        };
        // 18:00-03:00 (21:00 UTC) is after 20:00+00:00, though its text sorts first.
        assert!(
            at("2027-05-01T18:00:00-03:00").starts_at_instant()
                > at("2027-05-01T20:00:00+00:00").starts_at_instant()
        );
    }
}
