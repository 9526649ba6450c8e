//! Message templates: tinytemplate, rendered unescaped (WhatsApp text is not HTML).

use crate::domain::{Event, Guest};
use tinytemplate::TinyTemplate;

/// The template used when none is chosen.
pub const DEFAULT_TEMPLATE_ID: &str = "default";
pub const DEFAULT_TEMPLATE: &str = "Hi {guest_name}! {event_host} invites you to {event_name} on {event_date} at {event_venue}.\nPlease let us know if you can come: {rsvp_link}";

/// WhatsApp's limit on a message body, in characters.
pub const MAX_BODY_CHARS: usize = 1600;

/// The variables a template may use; names are the documented contract.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TemplateContext {
    pub guest_name: String,
    pub event_name: String,
    pub event_date: String,
    pub event_venue: String,
    pub event_host: String,
    pub rsvp_link: String,
}

impl TemplateContext {
    pub fn new(event: &Event, guest: &Guest) -> Self {
        Self {
            guest_name: guest.name.clone(),
            event_name: event.name.clone(),
            event_date: event.display_date(),
            event_venue: event.venue.clone(),
            event_host: event.host.clone(),
            rsvp_link: event.rsvp_link(guest.rsvp_token.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template does not compile: {0}")]
    Syntax(String),
    #[error("template does not render: {0}")]
    Render(String),
    #[error("rendered message is {0} characters; WhatsApp allows {MAX_BODY_CHARS}")]
    TooLong(usize),
}

/// Renders `text` for one guest.
pub fn render(text: &str, context: &TemplateContext) -> Result<String, TemplateError> {
    let mut tt = TinyTemplate::new();
    tt.set_default_formatter(&tinytemplate::format_unescaped);
    tt.add_template("message", text)
        .map_err(|e| TemplateError::Syntax(e.to_string()))?;
    let body = tt
        .render("message", context)
        .map_err(|e| TemplateError::Render(e.to_string()))?;
    let chars = body.chars().count();
    if chars > MAX_BODY_CHARS {
        return Err(TemplateError::TooLong(chars));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> TemplateContext {
        TemplateContext {
            guest_name: "Ana & Bo".into(),
            event_name: "Gala <2027>".into(),
            event_date: "Saturday, 1 May 2027, 17:00".into(),
            event_venue: "Hall".into(),
            event_host: "Carla".into(),
            rsvp_link: "https://rsvp.example.com/r/tok".into(),
        }
    }

    #[test]
    fn default_template_renders_unescaped() {
        let body = render(DEFAULT_TEMPLATE, &context()).unwrap();
        assert_eq!(
            body,
            "Hi Ana & Bo! Carla invites you to Gala <2027> on Saturday, 1 May 2027, 17:00 at Hall.\nPlease let us know if you can come: https://rsvp.example.com/r/tok"
        );
    }

    #[test]
    fn errors_are_reported() {
        assert!(matches!(
            render("Hi {guest_name", &context()),
            Err(TemplateError::Syntax(_))
        ));
        assert!(matches!(
            render("Hi {nobody}", &context()),
            Err(TemplateError::Render(_))
        ));
        assert_eq!(
            render(&"x".repeat(1601), &context()),
            Err(TemplateError::TooLong(1601))
        );
    }
}
