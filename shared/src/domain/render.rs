//! Message templates: tinytemplate, rendered unescaped (WhatsApp text is not
//! HTML), validated when saved so that rendering one at send time cannot
//! fail; and the built-in default.

use super::rsvp::Answer;
use super::{Event, Guest, Invitation, MessageContent, MessageTemplate, TemplateId};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use tinytemplate::TinyTemplate;

/// The template used when none is chosen; every organizer has it.
pub const DEFAULT_TEMPLATE_ID: &str = "default";
pub const DEFAULT_TEMPLATE_NAME: &str = "Default invitation";
pub const DEFAULT_TEMPLATE: &str = "Hi {guest_name}! {event_host} invites you to {event_name} on {event_date} at {event_venue}.\nPlease let us know if you can come: {rsvp_link}";

/// WhatsApp's limit on a message body, in characters, after substitution.
/// Also applied to each Content variable's value.
pub const MAX_BODY_CHARS: usize = 1600;
/// The longest template text accepted: WhatsApp's limit, since a text
/// longer than it is refused once rendered (what a variable holds is
/// rarely shorter than its name).
pub const MAX_TEXT_CHARS: usize = MAX_BODY_CHARS;
/// The longest expression for one Content variable.
pub const MAX_EXPRESSION_CHARS: usize = 1024;
pub const MAX_CONTENT_VARIABLES: usize = 50;

/// One variable a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Variable {
    pub name: &'static str,
    pub description: &'static str,
    pub example: &'static str,
}

const fn var(name: &'static str, description: &'static str, example: &'static str) -> Variable {
    Variable {
        name,
        description,
        example,
    }
}

/// The variables templates may use: the documented contract. A template
/// naming any other is refused when saved.
pub const VARIABLES: &[Variable] = &[
    var("guest_name", "The guest's name, as sent", "Ana Souza"),
    var(
        "guest_first_name",
        "The first word of the guest's name",
        "Ana",
    ),
    var("event_name", "The event's name", "Spring Gala"),
    var(
        "event_date",
        "The event's start, in the organizer's time zone",
        "Saturday, 1 May 2027, 17:00",
    ),
    var("event_venue", "The event's venue", "Casa Rosa"),
    var("event_host", "Who invites", "Marina"),
    var(
        "rsvp_link",
        "The guest's own RSVP link: the stack's RSVP page with the invitation's answer token, or the event's base URL and the guest's token",
        "https://rsvp.example.com/r/3f9c2a",
    ),
    var(
        "rsvp_yes",
        "The id of the guest's Yes quick-reply button: a tap on it records yes",
        "rsvp.yes.inv_5d41402abc4b2a76b9719d911017c592.9e107d9d372bb6826bd81d3542a419d6",
    ),
    var(
        "rsvp_no",
        "The id of the guest's No quick-reply button",
        "rsvp.no.inv_5d41402abc4b2a76b9719d911017c592.9e107d9d372bb6826bd81d3542a419d6",
    ),
    var(
        "rsvp_maybe",
        "The id of the guest's Maybe quick-reply button",
        "rsvp.maybe.inv_5d41402abc4b2a76b9719d911017c592.9e107d9d372bb6826bd81d3542a419d6",
    ),
];

fn variable_names() -> String {
    VARIABLES
        .iter()
        .map(|v| v.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `rsvp_link` reads where no invitation is rendered (a preview) and
/// the event uses the stack's RSVP page: each invitation has its own.
pub const STACK_LINK_PLACEHOLDER: &str = "(the guest's own RSVP page link)";

/// The values one guest's message is rendered with; names are [`VARIABLES`].
/// A value that is missing renders as empty text.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TemplateContext {
    pub guest_name: String,
    pub guest_first_name: String,
    pub event_name: String,
    pub event_date: String,
    pub event_venue: String,
    pub event_host: String,
    pub rsvp_link: String,
    pub rsvp_yes: String,
    pub rsvp_no: String,
    pub rsvp_maybe: String,
}

impl TemplateContext {
    pub fn new(event: &Event, guest: &Guest) -> Self {
        Self {
            guest_name: guest.name.clone(),
            guest_first_name: guest
                .name
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned(),
            event_name: event.name.clone(),
            event_date: event.display_date(),
            event_venue: event.venue.clone(),
            event_host: event.host.clone(),
            rsvp_link: event
                .rsvp_link(guest.rsvp_token.as_str())
                .unwrap_or_else(|| STACK_LINK_PLACEHOLDER.to_owned()),
            ..Self::default()
        }
    }

    /// What one invitation is rendered with: its buttons' payloads, and its
    /// link into the stack's RSVP page at `rsvp_page_url` when the event
    /// uses it.
    pub fn for_invitation(event: &Event, invitation: &Invitation, rsvp_page_url: &str) -> Self {
        let mut context = Self::new(event, &invitation.guest);
        if let Some(token) = invitation.answer_token() {
            context.rsvp_yes = token.payload(Answer::Yes);
            context.rsvp_no = token.payload(Answer::No);
            context.rsvp_maybe = token.payload(Answer::Maybe);
            if event.rsvp_base_url.is_none() {
                context.rsvp_link = format!("{rsvp_page_url}{token}");
            }
        }
        context
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Does not compile; the message gives the line and column.
    #[error("{0}")]
    Syntax(String),
    /// Names a variable that is not one of [`VARIABLES`].
    #[error("{message}")]
    UnknownVariable { name: String, message: String },
    #[error("{0}")]
    Render(String),
    #[error(
        "the message is {0} characters after substitution; WhatsApp allows at most {MAX_BODY_CHARS}"
    )]
    TooLong(usize),
}

impl TemplateError {
    /// The code an invitation that could not be rendered is failed with.
    pub fn code(&self) -> &'static str {
        match self {
            TemplateError::TooLong(_) => TOO_LONG_CODE,
            _ => ERROR_CODE,
        }
    }
}

const TOO_LONG_CODE: &str = "template_too_long";
const ERROR_CODE: &str = "template_error";

/// Whether `code` is one of [`TemplateError::code`]'s.
pub fn is_template_error_code(code: &str) -> bool {
    [TOO_LONG_CODE, ERROR_CODE].contains(&code)
}

/// The template's name inside tinytemplate. It has a space, which a
/// `{{ call }}` cannot name, so a template cannot call itself.
const NAME: &str = "organizer template";

/// Line and column (both from 1, the column in characters) of tinytemplate's
/// position (a line from 1 and a byte offset within it from 0).
fn position(text: &str, line: usize, byte_column: usize) -> String {
    let column = text
        .split('\n')
        .nth(line.saturating_sub(1))
        .and_then(|l| l.get(..byte_column))
        .map_or(byte_column, |prefix| prefix.chars().count());
    format!("line {line}, column {}", column + 1)
}

/// The path in tinytemplate's "Failed to find value 'x' from path 'x.y'." message.
fn missing_path(msg: &str) -> Option<&str> {
    let rest = msg.split_once("from path '")?.1;
    rest.split_once('\'').map(|(path, _)| path)
}

fn convert(text: &str, err: tinytemplate::error::Error) -> TemplateError {
    use tinytemplate::error::Error as E;
    match err {
        E::ParseError { msg, line, column } => {
            TemplateError::Syntax(format!("{}: {msg}", position(text, line, column)))
        }
        E::RenderError { msg, line, column } => match missing_path(&msg) {
            Some(path) => TemplateError::UnknownVariable {
                name: path.to_owned(),
                message: format!(
                    "unknown variable '{path}' at {}; the variables are {}",
                    position(text, line, column),
                    variable_names()
                ),
            },
            None => TemplateError::Render(format!("{}: {msg}", position(text, line, column))),
        },
        E::CalledFormatterError {
            name, line, column, ..
        } => TemplateError::Render(format!(
            "{}: the formatter '{name}' failed",
            position(text, line, column)
        )),
        other => TemplateError::Render(other.to_string()),
    }
}

/// A compiled template, rendered unescaped.
struct Compiled<'t> {
    tt: TinyTemplate<'t>,
    text: &'t str,
}

impl<'t> Compiled<'t> {
    fn new(text: &'t str) -> Result<Self, TemplateError> {
        let mut tt = TinyTemplate::new();
        tt.set_default_formatter(&tinytemplate::format_unescaped);
        tt.add_template(NAME, text).map_err(|e| convert(text, e))?;
        Ok(Self { tt, text })
    }

    fn render<C: serde::Serialize>(&self, context: &C) -> Result<String, TemplateError> {
        self.tt
            .render(NAME, context)
            .map_err(|e| convert(self.text, e))
    }
}

fn check_length(rendered: String) -> Result<String, TemplateError> {
    let chars = rendered.chars().count();
    if chars > MAX_BODY_CHARS {
        return Err(TemplateError::TooLong(chars));
    }
    Ok(rendered)
}

/// Renders `text` for one guest, within WhatsApp's length limit.
pub fn render(text: &str, context: &TemplateContext) -> Result<String, TemplateError> {
    check_length(Compiled::new(text)?.render(context)?)
}

/// Checks a template expression the way saving does: it compiles, and it
/// renders whatever the variables hold. Every variable is either filled in
/// or empty; the only thing a template can branch on is whether a value is
/// empty, so rendering every combination follows every path through it.
/// Answers the longest text of the literal parts alone (all variables empty).
pub fn validate(text: &str) -> Result<usize, TemplateError> {
    let compiled = Compiled::new(text)?;
    let combinations = 1u32 << VARIABLES.len();
    let mut literal_chars = 0;
    for mask in 0..combinations {
        let context: Map<String, Value> = VARIABLES
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let value = if mask & (1 << i) != 0 { v.example } else { "" };
                (v.name.to_owned(), Value::from(value))
            })
            .collect();
        let rendered = compiled.render(&context)?;
        if mask == 0 {
            literal_chars = rendered.chars().count();
        }
    }
    Ok(literal_chars)
}

/// Validates a body template's text: compiles, renders for any values, and
/// is not too long before a single variable is filled in.
pub fn validate_text(text: &str) -> Result<(), TemplateError> {
    let literal = validate(text)?;
    if literal > MAX_BODY_CHARS {
        return Err(TemplateError::TooLong(literal));
    }
    Ok(())
}

/// A message that could not be rendered, and the template field at fault
/// (`text`, or `content_variables.N`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {error}")]
pub struct MessageError {
    pub field: String,
    pub error: TemplateError,
}

/// Renders a template's message for one guest: the body, or the Content
/// template's SID and variables. Errors are permanent for this guest.
pub fn render_message(
    template: &MessageTemplate,
    context: &TemplateContext,
) -> Result<MessageContent, MessageError> {
    let at = |field: String| move |error| MessageError { field, error };
    match (&template.content_sid, &template.text) {
        (Some(content_sid), _) => {
            let mut variables = BTreeMap::new();
            for (key, expression) in &template.content_variables {
                let value =
                    render(expression, context).map_err(at(format!("content_variables.{key}")))?;
                variables.insert(key.clone(), value);
            }
            Ok(MessageContent::Template {
                content_sid: content_sid.clone(),
                variables,
            })
        }
        (None, Some(text)) => render(text, context)
            .map(MessageContent::Body)
            .map_err(at("text".into())),
        (None, None) => Err(MessageError {
            field: "text".into(),
            error: TemplateError::Render("the template has neither text nor a Content SID".into()),
        }),
    }
}

/// The built-in default template, as version 1 of `default`.
pub fn builtin_default(owner: &str, at: &str) -> MessageTemplate {
    MessageTemplate {
        template_id: TemplateId::parse(DEFAULT_TEMPLATE_ID).expect("a valid id"),
        owner: owner.to_owned(),
        version: 1,
        name: DEFAULT_TEMPLATE_NAME.to_owned(),
        text: Some(DEFAULT_TEMPLATE.to_owned()),
        content_sid: None,
        content_variables: BTreeMap::new(),
        category: None,
        created_at: at.to_owned(),
        updated_at: at.to_owned(),
    }
}

pub fn is_default(id: &TemplateId) -> bool {
    id.as_str() == DEFAULT_TEMPLATE_ID
}

/// The template reminders use when the event names none; every organizer has it.
pub const REMINDER_TEMPLATE_ID: &str = "default-reminder";
pub const REMINDER_TEMPLATE_NAME: &str = "Default reminder";
pub const REMINDER_TEMPLATE: &str = "Hi {guest_first_name}! A reminder from {event_host}: {event_name} is on {event_date} at {event_venue}.\nPlease let us know if you can come: {rsvp_link}";

/// A built-in template by id (`default`, `reminder`), as version 1.
pub fn builtin(id: &TemplateId, owner: &str, at: &str) -> Option<MessageTemplate> {
    match id.as_str() {
        DEFAULT_TEMPLATE_ID => Some(builtin_default(owner, at)),
        REMINDER_TEMPLATE_ID => Some(MessageTemplate {
            template_id: id.clone(),
            name: REMINDER_TEMPLATE_NAME.to_owned(),
            text: Some(REMINDER_TEMPLATE.to_owned()),
            ..builtin_default(owner, at)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> TemplateContext {
        TemplateContext {
            guest_name: "Ana & Bo".into(),
            guest_first_name: "Ana".into(),
            event_name: "Gala <2027>".into(),
            event_date: "Saturday, 1 May 2027, 17:00".into(),
            event_venue: "Hall".into(),
            event_host: "Carla".into(),
            rsvp_link: "https://rsvp.example.com/r/tok".into(),
            ..Default::default()
        }
    }

    #[test]
    fn default_template_renders_unescaped() {
        let body = render(DEFAULT_TEMPLATE, &context()).unwrap();
        assert_eq!(
            body,
            "Hi Ana & Bo! Carla invites you to Gala <2027> on Saturday, 1 May 2027, 17:00 at Hall.\nPlease let us know if you can come: https://rsvp.example.com/r/tok"
        );
        validate_text(DEFAULT_TEMPLATE).unwrap();
    }

    #[test]
    fn the_variables_are_the_contexts_fields() {
        let value = serde_json::to_value(context()).unwrap();
        let fields: Vec<&String> = value.as_object().unwrap().keys().collect();
        let mut names: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        names.sort();
        assert_eq!(fields, names);
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let err = validate("Hi {guest_name}!\nSee you {{ if event_host }}there").unwrap_err();
        let TemplateError::Syntax(message) = &err else {
            panic!("{err:?}")
        };
        assert!(message.starts_with("line "), "{message}");
        assert!(message.contains("column"), "{message}");
        let err = validate("Olá {guest_name").unwrap_err();
        assert!(matches!(err, TemplateError::Syntax(_)), "{err:?}");
    }

    #[test]
    fn unknown_variables_are_named_wherever_they_hide() {
        for (text, name, at) in [
            ("Hi {nobody}", "nobody", "line 1, column 5"),
            ("Olá!\nçà {guest.name}", "guest.name", "line 2, column 5"),
            (
                "{{ if event_host }}ok{{ else }}{missing}{{ endif }}",
                "missing",
                "",
            ),
            (
                "{{ if guest_name }}{{ if event_venue }}{{ else }}{deep}{{ endif }}{{ endif }}",
                "deep",
                "",
            ),
        ] {
            match validate(text) {
                Err(TemplateError::UnknownVariable {
                    name: found,
                    message,
                }) => {
                    assert_eq!(found, name, "{text}");
                    assert!(message.contains(at), "{message}");
                    assert!(message.contains("guest_first_name"), "{message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn other_misuse_is_refused_not_panicked_on() {
        for text in [
            "{guest_name | shout}",
            "{{ for x in guest_name }}{x}{{ endfor }}",
            "{{ call organizer with @root }}",
            "{@root}",
            "{{ if }}x{{ endif }}",
            "{}",
            "{{}}",
            "{{ endif }}",
            "{",
            "{{",
        ] {
            assert!(validate(text).is_err(), "{text} was accepted");
        }
        validate("{{ if event_host }}Hosted by {event_host}.{{ endif }} \\{literal} }").unwrap();
    }

    #[test]
    fn missing_values_render_empty() {
        let ctx = TemplateContext {
            event_host: String::new(),
            ..context()
        };
        let body = render(
            "Hi {guest_first_name}{{ if event_host }}, from {event_host}{{ endif }}.",
            &ctx,
        )
        .unwrap();
        assert_eq!(body, "Hi Ana.");
    }

    #[test]
    fn length_is_checked_after_substitution() {
        assert_eq!(
            render(&"x".repeat(1601), &context()),
            Err(TemplateError::TooLong(1601))
        );
        let text = format!("{}{{guest_name}}", "x".repeat(1595));
        validate_text(&text).unwrap();
        assert_eq!(render(&text, &context()), Err(TemplateError::TooLong(1603)));
        assert_eq!(
            validate_text(&"y".repeat(1700)),
            Err(TemplateError::TooLong(1700))
        );
        assert_eq!(TemplateError::TooLong(1).code(), "template_too_long");
    }
}
