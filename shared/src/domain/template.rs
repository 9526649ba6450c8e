use super::event::required_text;
use super::render::{
    self, MAX_CONTENT_VARIABLES, MAX_EXPRESSION_CHARS, MAX_TEXT_CHARS, TemplateError,
};
use super::{FieldError, TemplateId};
use std::collections::BTreeMap;

/// One version of an organizer's message template: either free-form text
/// (sent as the message `Body`) or a Twilio Content template (`ContentSid`
/// and the expressions its variables are filled with).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageTemplate {
    pub template_id: TemplateId,
    /// The organizer it belongs to; never shown.
    #[serde(skip)]
    pub owner: String,
    /// From 1; every change is a new version, and old ones are kept.
    pub version: u32,
    pub name: String,
    pub text: Option<String>,
    pub content_sid: Option<String>,
    /// Content variable ("1", "2", ...) to template expression.
    pub content_variables: BTreeMap<String, String>,
    /// The category WhatsApp approved a Content template in; None for
    /// free-form text (a session message, which has none).
    pub category: Option<TemplateCategory>,
    /// When version 1 was written.
    pub created_at: String,
    /// When this version was written.
    pub updated_at: String,
}

impl MessageTemplate {
    pub fn reference(&self) -> TemplateRef {
        TemplateRef {
            template_id: self.template_id.clone(),
            version: self.version,
        }
    }
}

/// WhatsApp's template categories: what WhatsApp delivers, to whom, and
/// what it charges depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateCategory {
    /// An unsolicited invitation is one; WhatsApp does not deliver them to
    /// US numbers.
    Marketing,
    Utility,
    Authentication,
}

impl TemplateCategory {
    pub const ALL: [Self; 3] = [Self::Marketing, Self::Utility, Self::Authentication];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marketing => "marketing",
            Self::Utility => "utility",
            Self::Authentication => "authentication",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

impl MessageTemplate {
    /// Whether WhatsApp would deliver this template to `phone`: not a
    /// Marketing template to a US number (WhatsApp stopped delivering
    /// those in April 2025; Twilio answers 63049).
    pub fn deliverable_to(&self, phone: &super::PhoneNumber) -> bool {
        !(self.category == Some(TemplateCategory::Marketing) && phone.is_us())
    }
}

/// A message's content: free-form text, or an approved Content template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageContent {
    /// Twilio's `Body`: WhatsApp delivers it only inside the 24-hour
    /// session window (or in the sandbox).
    Body(String),
    /// Twilio's `ContentSid` and `ContentVariables` (a JSON object of strings).
    Template {
        content_sid: String,
        variables: BTreeMap<String, String>,
    },
}

/// The template version an invitation is sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    pub template_id: TemplateId,
    pub version: u32,
}

/// A Content template as the provider approved it: its text and its
/// buttons' titles, with `{{1}}`-style variables in both.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContentDefinition {
    /// The provider's content type, e.g. `twilio/quick-reply`.
    #[serde(rename = "type")]
    pub kind: String,
    pub body: String,
    pub buttons: Vec<String>,
}

impl ContentDefinition {
    /// With each `{{n}}` replaced by its value; one without a value stays
    /// as written, so the reader sees what is missing.
    pub fn filled(&self, variables: &BTreeMap<String, String>) -> ContentDefinition {
        let fill = |text: &str| {
            let mut out = text.to_owned();
            for (key, value) in variables {
                out = out.replace(&format!("{{{{{key}}}}}"), value);
            }
            out
        };
        ContentDefinition {
            kind: self.kind.clone(),
            body: fill(&self.body),
            buttons: self.buttons.iter().map(|b| fill(b)).collect(),
        }
    }
}

/// The body of `POST /templates` and `PUT /templates/{id}`, before validation.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// Only when creating; generated when absent.
    pub template_id: Option<String>,
    pub name: Option<String>,
    pub text: Option<String>,
    pub content_sid: Option<String>,
    pub content_variables: Option<BTreeMap<String, String>>,
    /// A Content template's category as WhatsApp approved it: `marketing`
    /// (the default: an invitation is one), `utility`, `authentication`.
    pub category: Option<String>,
}

fn content_sid_ok(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("HX") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn variable_key_ok(key: &str) -> bool {
    (1..=2).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_digit()) && !key.starts_with('0')
}

fn template_error(field: &str, err: TemplateError) -> FieldError {
    FieldError::new(field, err)
}

impl TemplateInput {
    /// Validates the content as version `version` of `template_id`.
    /// Errors name the field (`text`, `content_sid`, `content_variables.1`).
    pub fn parse(
        self,
        template_id: TemplateId,
        owner: &str,
        version: u32,
        created_at: &str,
        now: &str,
    ) -> Result<MessageTemplate, FieldError> {
        let name = match self.name {
            Some(name) => required_text(Some(name), "name", 100)?,
            None => template_id.to_string(),
        };
        let text = self.text.filter(|t| !t.trim().is_empty());
        let content_sid = self
            .content_sid
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        let variables = self.content_variables.unwrap_or_default();
        let category = match self.category.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(TemplateCategory::parse(raw).ok_or_else(|| {
                FieldError::new(
                    "category",
                    "must be marketing, utility or authentication (as WhatsApp approved the template)",
                )
            })?),
        };
        let (text, content_sid) = match (text, content_sid) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "content_sid",
                    "give either text (a free-form message) or content_sid (a Twilio Content template), not both",
                ));
            }
            (None, None) => {
                return Err(FieldError::new(
                    "text",
                    "is required (or content_sid, for a Twilio Content template)",
                ));
            }
            (Some(text), None) => {
                if text.chars().count() > MAX_TEXT_CHARS {
                    return Err(FieldError::new(
                        "text",
                        format!("must be at most {MAX_TEXT_CHARS} characters"),
                    ));
                }
                if !variables.is_empty() {
                    return Err(FieldError::new(
                        "content_variables",
                        "only a Content template (content_sid) has variables",
                    ));
                }
                render::validate_text(&text).map_err(|e| template_error("text", e))?;
                if category.is_some() {
                    return Err(FieldError::new(
                        "category",
                        "only a Content template (content_sid) has a category; free-form text is a session message",
                    ));
                }
                (Some(text), None)
            }
            (None, Some(sid)) => {
                if !content_sid_ok(&sid) {
                    return Err(FieldError::new(
                        "content_sid",
                        "must be a Twilio Content SID: HX and 32 hexadecimal digits",
                    ));
                }
                if variables.len() > MAX_CONTENT_VARIABLES {
                    return Err(FieldError::new(
                        "content_variables",
                        format!("at most {MAX_CONTENT_VARIABLES} variables"),
                    ));
                }
                for (key, expression) in &variables {
                    let field = format!("content_variables.{key}");
                    if !variable_key_ok(key) {
                        return Err(FieldError::new(
                            field,
                            "variable names are Content's placeholders: 1, 2, 3, ... (up to 99)",
                        ));
                    }
                    if expression.trim().is_empty() {
                        return Err(FieldError::new(
                            field,
                            "must not be empty (WhatsApp refuses empty variables)",
                        ));
                    }
                    if expression.chars().count() > MAX_EXPRESSION_CHARS {
                        return Err(FieldError::new(
                            field,
                            format!("must be at most {MAX_EXPRESSION_CHARS} characters"),
                        ));
                    }
                    render::validate_text(expression).map_err(|e| template_error(&field, e))?;
                }
                (None, Some(sid))
            }
        };
        Ok(MessageTemplate {
            template_id,
            owner: owner.to_owned(),
            version,
            name,
            text,
            category: content_sid
                .as_ref()
                .map(|_| category.unwrap_or(TemplateCategory::Marketing)),
            content_sid,
            content_variables: variables,
            created_at: created_at.to_owned(),
            updated_at: now.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_content_definition_is_filled_with_its_variables_and_shows_what_is_missing() {
        let definition = super::ContentDefinition {
            kind: "twilio/quick-reply".into(),
            body: "Hi {{1}}! {{2}} at {{9}}".into(),
            buttons: vec!["Yes, {{1}}".into(), "No".into()],
        };
        let variables = [("1", "Ana"), ("2", "Gala")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let filled = definition.filled(&variables);
        assert_eq!(filled.body, "Hi Ana! Gala at {{9}}");
        assert_eq!(filled.buttons, ["Yes, Ana", "No"]);
    }

    use super::*;

    fn parse(input: TemplateInput) -> Result<MessageTemplate, FieldError> {
        input.parse(TemplateId::parse("t1").unwrap(), "org", 1, "then", "now")
    }

    #[test]
    fn a_body_template() {
        let t = parse(TemplateInput {
            text: Some("Hi {guest_first_name}".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(t.name, "t1");
        assert_eq!(t.text.as_deref(), Some("Hi {guest_first_name}"));
        let err = parse(TemplateInput {
            text: Some("Hi {guest}".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.field, "text");
        assert!(err.message.contains("'guest'"), "{err}");
    }

    #[test]
    fn a_content_template() {
        let sid = "HX00000000000000000000000000000001";
        let t = parse(TemplateInput {
            content_sid: Some(sid.into()),
            content_variables: Some(BTreeMap::from([
                ("1".into(), "{guest_first_name}".into()),
                ("2".into(), "{event_date}".into()),
            ])),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(t.content_sid.as_deref(), Some(sid));
        let bad = |sid: &str, vars: &[(&str, &str)]| {
            parse(TemplateInput {
                content_sid: Some(sid.into()),
                content_variables: Some(
                    vars.iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..Default::default()
            })
            .unwrap_err()
            .field
        };
        assert_eq!(bad("HX123", &[]), "content_sid");
        assert_eq!(
            bad(sid, &[("one", "{guest_name}")]),
            "content_variables.one"
        );
        assert_eq!(bad(sid, &[("01", "{guest_name}")]), "content_variables.01");
        assert_eq!(bad(sid, &[("2", "{nobody}")]), "content_variables.2");
        assert_eq!(bad(sid, &[("3", " ")]), "content_variables.3");
        let both = parse(TemplateInput {
            text: Some("x".into()),
            content_sid: Some(sid.into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(both.field, "content_sid");
        assert_eq!(parse(TemplateInput::default()).unwrap_err().field, "text");
    }
}
