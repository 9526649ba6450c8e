//! Twilio's published OpenAPI for the three Messages operations, as request
//! checks: what the simulator accepts, Twilio's published API accepts too.
//!
//! The rules come from `openapi/messages.json`, an excerpt of
//! twilio/twilio-oai's `spec/json/twilio_api_v2010.json` (see
//! `openapi/README.md`). It is read once; a keyword or format this module
//! does not understand is a load error (a panic, caught by the tests), so a
//! refreshed excerpt cannot add a rule that is silently skipped.
//!
//! Beyond JSON Schema, it applies Twilio's own conventions:
//! - `format: phone-number`: E.164 (`+`, 2 to 15 digits, no leading 0),
//!   optionally behind a channel prefix such as `whatsapp:`. Stricter than
//!   Twilio, which also takes short codes and alphanumeric sender IDs in
//!   `From`; the simulator is WhatsApp-only anyway.
//! - `format: uri`: an absolute http(s) URL with a host, and no underscore
//!   in the host (the spec's prose for `StatusCallback`: "URL must contain a
//!   valid hostname and underscores are not allowed").
//! - `format: date-time`: RFC 3339; in a query (the list's `DateSent`
//!   filters) also `YYYY-MM-DD`, which the spec's description of those
//!   parameters documents and its examples use.
//! - `x-twilio.ignoreFormat: true` (on `MediaUrl` items): the format is not
//!   checked, as the spec says.
//! - `x-twilio.conditional`: groups of snake_case names of form fields, of
//!   which at least one each must be given (Twilio's errors 21603 and 21602:
//!   From or MessagingServiceSid; Body, MediaUrl or ContentSid).
//! - An empty value counts as absent: the spec lets `From` "be empty" with a
//!   `MessagingServiceSid`, and the simulator already treated empty `Body`,
//!   `ContentSid` and `StatusCallback` so.
//! - Form fields and query parameters the spec does not define are allowed
//!   (and ignored): the request schema has no `additionalProperties`, which
//!   in JSON Schema means any, and the spec's own `create` example sends a
//!   `Tags` field it does not define.
//!
//! Not enforced: what the spec says only in descriptions it leaves out of
//! the schema (Body up to 1,600 characters, up to ten MediaUrl,
//! ValidityPeriod 1 to 36000, ContentVariables needing ContentSid,
//! ShortenUrls needing MessagingServiceSid).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::api::TwilioError;

const EXCERPT: &str = include_str!("../openapi/messages.json");
const MESSAGES: &str = "/2010-04-01/Accounts/{AccountSid}/Messages.json";
const MESSAGE: &str = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json";
const FORM: &str = "application/x-www-form-urlencoded";

/// Channel prefixes whose addresses are E.164 numbers.
const CHANNELS: [&str; 2] = ["whatsapp", "rcs"];

static SPEC: LazyLock<Spec> = LazyLock::new(|| {
    Spec::parse(EXCERPT).unwrap_or_else(|error| panic!("openapi/messages.json: {error}"))
});

/// `POST .../Messages.json` (CreateMessage): the path's AccountSid and the form.
pub(crate) fn check_create(account_sid: &str, form: &[(String, String)]) -> Result<(), Violation> {
    SPEC.create.check(&[("AccountSid", account_sid)], &[], form)
}

/// `GET .../Messages.json` (ListMessage): the path's AccountSid and the query.
pub(crate) fn check_list(account_sid: &str, query: &[(String, String)]) -> Result<(), Violation> {
    SPEC.list.check(&[("AccountSid", account_sid)], query, &[])
}

/// `GET .../Messages/{Sid}.json` (FetchMessage): the path's AccountSid and Sid.
pub(crate) fn check_fetch(account_sid: &str, sid: &str) -> Result<(), Violation> {
    SPEC.fetch
        .check(&[("AccountSid", account_sid), ("Sid", sid)], &[], &[])
}

/// Whether `sid` is an account SID as the spec's path parameter wants it.
pub(crate) fn valid_account_sid(sid: &str) -> bool {
    check_list(sid, &[]).is_ok()
}

/// Why a request does not fit the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Violation {
    /// A path segment that does not fit its schema: no such resource.
    Path { name: String, value: String },
    /// A required parameter is absent (or empty).
    Missing { name: String },
    /// None of an `x-twilio.conditional` group is given.
    NoneOf { names: Vec<String> },
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

impl Violation {
    /// The parameters the violation is about.
    #[cfg(test)]
    pub fn parameters(&self) -> Vec<&str> {
        match self {
            Self::Path { name, .. } | Self::Missing { name } | Self::Invalid { name, .. } => {
                vec![name]
            }
            Self::NoneOf { names } => names.iter().map(String::as_str).collect(),
        }
    }

    /// Twilio's answer: 404 for a path that names nothing, 400 otherwise,
    /// with the code Twilio uses for that parameter where it has one.
    pub fn into_error(self, path: &str) -> TwilioError {
        match self {
            Self::Path { .. } => TwilioError::resource_not_found(path),
            Self::Missing { name } if name == "To" => {
                TwilioError::bad_request(21604, "A 'To' phone number is required.")
            }
            Self::Missing { name } => TwilioError::bad_request(
                20001,
                format!("Missing required parameter {name} in the post body"),
            ),
            Self::NoneOf { names } if names.iter().any(|n| n == "From") => {
                TwilioError::bad_request(
                    21603,
                    "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
                )
            }
            Self::NoneOf { names } if names.iter().any(|n| n == "Body") => {
                TwilioError::bad_request(
                    21602,
                    format!("Message body is required: give one of {}.", quoted(&names)),
                )
            }
            Self::NoneOf { names } => {
                TwilioError::bad_request(20001, format!("One of {} is required.", quoted(&names)))
            }
            Self::Invalid { name, value, .. } if name == "To" => {
                TwilioError::bad_request(21211, format!("Invalid 'To' Phone Number: {value}"))
            }
            Self::Invalid { name, value, .. } if name == "From" => {
                TwilioError::bad_request(21212, format!("Invalid 'From' Phone Number: {value}"))
            }
            Self::Invalid { name, value, .. } if name == "StatusCallback" => {
                TwilioError::bad_request(21609, format!("Invalid StatusCallback url: {value}"))
            }
            Self::Invalid { name, value, .. } if name == "ContentSid" => {
                TwilioError::bad_request(21656, format!("The ContentSid is invalid: {value}"))
            }
            Self::Invalid {
                name,
                value,
                reason,
            } => TwilioError::bad_request(
                20001,
                format!("Invalid parameter {name}: {value:?} {reason}"),
            ),
        }
    }
}

fn quoted(names: &[String]) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    names.join(", ")
}

struct Spec {
    create: Operation,
    list: Operation,
    fetch: Operation,
}

impl Spec {
    fn parse(text: &str) -> Result<Self, String> {
        let root: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let operation = |path: &str, method: &str, id: &str| {
            let found = root
                .pointer(&format!("/paths/{}/{method}", escape(path)))
                .ok_or_else(|| format!("no {method} {path}"))?;
            let operation = Operation::parse(found).map_err(|e| format!("{method} {path}: {e}"))?;
            match found.get("operationId").and_then(Value::as_str) {
                Some(found_id) if found_id == id => Ok(operation),
                other => Err(format!(
                    "{method} {path}: operationId {other:?}, expected {id}"
                )),
            }
        };
        Ok(Self {
            create: operation(MESSAGES, "post", "CreateMessage")?,
            list: operation(MESSAGES, "get", "ListMessage")?,
            fetch: operation(MESSAGE, "get", "FetchMessage")?,
        })
    }
}

/// A JSON pointer token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    Path,
    Query,
    /// A form field.
    Body,
}

struct Param {
    name: String,
    location: In,
    required: bool,
    schema: Schema,
}

/// A form-encoded request body.
struct Form {
    /// In the spec's order, which is the order they are checked in.
    properties: Vec<(String, Schema)>,
    required: Vec<String>,
    /// `x-twilio.conditional`, as form field names.
    conditional: Vec<Vec<String>>,
}

struct Operation {
    params: Vec<Param>,
    form: Option<Form>,
}

impl Operation {
    fn parse(operation: &Value) -> Result<Self, String> {
        let params = match operation.get("parameters") {
            None => Vec::new(),
            Some(list) => array(list, "parameters")?
                .iter()
                .map(Param::parse)
                .collect::<Result<_, _>>()?,
        };
        let form = match operation.get("requestBody") {
            None => None,
            Some(body) => Some(Form::parse(body, operation.get("x-twilio"))?),
        };
        if form.is_none() && operation.get("x-twilio").is_some() {
            return Err("x-twilio on an operation without a form".into());
        }
        Ok(Self { params, form })
    }

    /// Path segments, then query parameters, then the form.
    fn check(
        &self,
        path: &[(&str, &str)],
        query: &[(String, String)],
        form: &[(String, String)],
    ) -> Result<(), Violation> {
        for param in &self.params {
            match param.location {
                In::Path => {
                    let value = path
                        .iter()
                        .find(|(name, _)| *name == param.name)
                        .map(|(_, value)| *value)
                        .unwrap_or_default();
                    if param.schema.check(value, param.location).is_err() {
                        return Err(Violation::Path {
                            name: param.name.clone(),
                            value: value.into(),
                        });
                    }
                }
                // Param::parse makes only path and query parameters.
                In::Query | In::Body => {
                    let values = given(query, &param.name);
                    if param.required && values.is_empty() {
                        return Err(Violation::Missing {
                            name: param.name.clone(),
                        });
                    }
                    check_values(&param.name, &param.schema, &values, param.location)?;
                }
            }
        }
        if let Some(spec) = &self.form {
            spec.check(form)?;
        }
        Ok(())
    }
}

impl Param {
    fn parse(param: &Value) -> Result<Self, String> {
        let fields = object(param, "parameter")?;
        let name = string(fields.get("name"), "parameter name")?;
        let context = |e: String| format!("parameter {name}: {e}");
        known_keys(fields, &["name", "in", "schema", "required", "x-twilio"]).map_err(context)?;
        let location = match fields.get("in").and_then(Value::as_str) {
            Some("path") => In::Path,
            Some("query") => In::Query,
            other => return Err(context(format!("in: {other:?} is not path or query"))),
        };
        let required = fields
            .get("required")
            .map(|r| r.as_bool().ok_or("required is not a boolean"))
            .transpose()
            .map_err(|e| context(e.into()))?
            .unwrap_or(false);
        if location == In::Path && !required {
            return Err(context("a path parameter must be required".into()));
        }
        if let Some(twilio) = fields.get("x-twilio") {
            // Only how Twilio handles personal data, nothing to check.
            known_keys(object(twilio, "x-twilio").map_err(context)?, &["pii"]).map_err(context)?;
        }
        let schema = fields
            .get("schema")
            .ok_or_else(|| context("no schema".into()))
            .and_then(|s| Schema::parse(s).map_err(context))?;
        if matches!(schema.kind, Kind::Array(_)) {
            return Err(context("array parameters are not supported".into()));
        }
        Ok(Self {
            name,
            location,
            required,
            schema,
        })
    }
}

impl Form {
    fn parse(body: &Value, twilio: Option<&Value>) -> Result<Self, String> {
        let body = object(body, "requestBody")?;
        // `required` on the requestBody itself: absent here; a body with no
        // fields fails the schema's own `required` anyway.
        known_keys(body, &["content", "required"])?;
        let content = object(body.get("content").unwrap_or(&Value::Null), "content")?;
        if content.len() != 1 || !content.contains_key(FORM) {
            return Err(format!("content must be {FORM} only"));
        }
        let media = object(&content[FORM], FORM)?;
        known_keys(media, &["schema"])?;
        let schema = object(media.get("schema").unwrap_or(&Value::Null), "form schema")?;
        known_keys(schema, &["type", "title", "properties", "required"])?;
        if schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err("form schema is not an object".into());
        }
        let properties = object(
            schema.get("properties").unwrap_or(&Value::Null),
            "properties",
        )?
        .iter()
        .map(|(name, s)| {
            Schema::parse(s)
                .map(|s| (name.clone(), s))
                .map_err(|e| format!("{name}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
        let required = match schema.get("required") {
            None => Vec::new(),
            Some(list) => strings(list, "required")?,
        };
        if let Some(missing) = required
            .iter()
            .find(|r| !properties.iter().any(|(name, _)| name == *r))
        {
            return Err(format!("required {missing} is not a property"));
        }
        let conditional = match twilio {
            None => Vec::new(),
            Some(twilio) => {
                let twilio = object(twilio, "x-twilio")?;
                known_keys(twilio, &["conditional"])?;
                array(
                    twilio.get("conditional").unwrap_or(&Value::Null),
                    "conditional",
                )?
                .iter()
                .map(|group| {
                    strings(group, "conditional group")?
                        .iter()
                        .map(|snake| {
                            properties
                                .iter()
                                .map(|(name, _)| name)
                                .find(|name| snake_case(name) == *snake)
                                .cloned()
                                .ok_or_else(|| format!("conditional {snake} is not a property"))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(Self {
            properties,
            required,
            conditional,
        })
    }

    fn check(&self, form: &[(String, String)]) -> Result<(), Violation> {
        if let Some(name) = self.required.iter().find(|r| given(form, r).is_empty()) {
            return Err(Violation::Missing { name: name.clone() });
        }
        for (name, schema) in &self.properties {
            check_values(name, schema, &given(form, name), In::Body)?;
        }
        for group in &self.conditional {
            if group.iter().all(|name| given(form, name).is_empty()) {
                return Err(Violation::NoneOf {
                    names: group.clone(),
                });
            }
        }
        Ok(())
    }
}

/// The non-empty values sent for `name`, in order.
fn given<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(n, v)| n == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Every value of a parameter: an array's values are its items (a form
/// repeats the name, e.g. `MediaUrl=..&MediaUrl=..`); a scalar's are each checked.
fn check_values(
    name: &str,
    schema: &Schema,
    values: &[&str],
    location: In,
) -> Result<(), Violation> {
    let schema = match &schema.kind {
        Kind::Array(items) => items,
        _ => schema,
    };
    for value in values {
        schema
            .check(value, location)
            .map_err(|reason| Violation::Invalid {
                name: name.into(),
                value: (*value).into(),
                reason,
            })?;
    }
    Ok(())
}

#[derive(Debug)]
enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    Array(Box<Schema>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    PhoneNumber,
    Uri,
    DateTime,
    /// An integer's width; the value is parsed as an i64 anyway.
    Int64,
}

#[derive(Debug)]
struct Schema {
    kind: Kind,
    format: Option<Format>,
    pattern: Option<Regex>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    minimum: Option<i64>,
    maximum: Option<i64>,
    choices: Option<Vec<String>>,
}

impl Schema {
    fn parse(schema: &Value) -> Result<Self, String> {
        let fields = object(schema, "schema")?;
        known_keys(
            fields,
            &[
                "type",
                "format",
                "pattern",
                "minLength",
                "maxLength",
                "minimum",
                "maximum",
                "enum",
                "items",
                "x-twilio",
            ],
        )?;
        let kind = match fields.get("type").and_then(Value::as_str) {
            Some("string") => Kind::String,
            Some("integer") => Kind::Integer,
            Some("number") => Kind::Number,
            Some("boolean") => Kind::Boolean,
            Some("array") => {
                let items = Schema::parse(fields.get("items").ok_or("array without items")?)
                    .map_err(|e| format!("items: {e}"))?;
                if matches!(items.kind, Kind::Array(_)) {
                    return Err("arrays of arrays are not supported".into());
                }
                Kind::Array(Box::new(items))
            }
            other => return Err(format!("type {other:?} is not supported")),
        };
        let ignore_format = match fields.get("x-twilio") {
            None => false,
            Some(twilio) => {
                let twilio = object(twilio, "x-twilio")?;
                known_keys(twilio, &["ignoreFormat"])?;
                twilio.get("ignoreFormat") == Some(&Value::Bool(true))
            }
        };
        let format = match fields.get("format").map(|f| f.as_str()) {
            None => None,
            Some(Some("phone-number")) => Some(Format::PhoneNumber),
            Some(Some("uri")) => Some(Format::Uri),
            Some(Some("date-time")) => Some(Format::DateTime),
            Some(Some("int64")) => Some(Format::Int64),
            Some(other) => return Err(format!("format {other:?} is not supported")),
        };
        let format = format.filter(|_| !ignore_format);
        let pattern = match fields.get("pattern") {
            None => None,
            Some(p) => {
                let p = p.as_str().ok_or("pattern is not a string")?;
                Some(Regex::new(p).map_err(|e| format!("pattern {p}: {e}"))?)
            }
        };
        let size = |key: &str| -> Result<Option<usize>, String> {
            fields
                .get(key)
                .map(|v| {
                    v.as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| format!("{key} is not a size"))
                })
                .transpose()
        };
        let bound = |key: &str| -> Result<Option<i64>, String> {
            fields
                .get(key)
                .map(|v| v.as_i64().ok_or_else(|| format!("{key} is not an integer")))
                .transpose()
        };
        let choices = fields
            .get("enum")
            .map(|list| strings(list, "enum"))
            .transpose()?;
        let schema = Self {
            kind,
            format,
            pattern,
            min_length: size("minLength")?,
            max_length: size("maxLength")?,
            minimum: bound("minimum")?,
            maximum: bound("maximum")?,
            choices,
        };
        let string_only = schema.pattern.is_some()
            || schema.min_length.is_some()
            || schema.max_length.is_some()
            || matches!(
                schema.format,
                Some(Format::PhoneNumber | Format::Uri | Format::DateTime)
            );
        if string_only && !matches!(schema.kind, Kind::String) {
            return Err("string keywords on a non-string".into());
        }
        let integer_only = schema.minimum.is_some()
            || schema.maximum.is_some()
            || schema.format == Some(Format::Int64);
        if integer_only && !matches!(schema.kind, Kind::Integer) {
            return Err("integer keywords on a non-integer".into());
        }
        if schema.choices.is_some() && !matches!(schema.kind, Kind::String) {
            return Err("enum on a non-string".into());
        }
        Ok(schema)
    }

    /// One value as sent (form fields and query parameters are all text).
    fn check(&self, value: &str, location: In) -> Result<(), String> {
        match self.kind {
            Kind::String => {}
            Kind::Integer => {
                let n: i64 = value.parse().map_err(|_| "is not an integer".to_string())?;
                if self.minimum.is_some_and(|min| n < min)
                    || self.maximum.is_some_and(|max| n > max)
                {
                    return Err(format!(
                        "is out of range ({}..={})",
                        self.minimum.map(|m| m.to_string()).unwrap_or_default(),
                        self.maximum.map(|m| m.to_string()).unwrap_or_default(),
                    ));
                }
            }
            Kind::Number => {
                if !value.parse::<f64>().is_ok_and(f64::is_finite) {
                    return Err("is not a number".into());
                }
            }
            Kind::Boolean => {
                if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
                    return Err("is not true or false".into());
                }
            }
            Kind::Array(_) => unreachable!("checked item by item"),
        }
        let length = value.chars().count();
        if self.min_length.is_some_and(|min| length < min)
            || self.max_length.is_some_and(|max| length > max)
        {
            return Err(format!("has {length} characters"));
        }
        if let Some(pattern) = &self.pattern
            && !pattern.is_match(value)
        {
            return Err(format!("does not match {pattern}"));
        }
        if let Some(choices) = &self.choices
            && !choices.iter().any(|c| c == value)
        {
            return Err(format!("is not one of {}", choices.join(", ")));
        }
        match self.format {
            Some(Format::PhoneNumber) if !phone_number(value) => {
                Err("is not an E.164 phone number".into())
            }
            Some(Format::Uri) if !http_url(value) => Err("is not an absolute http(s) URL".into()),
            Some(Format::DateTime) if !date_time(value, location == In::Query) => {
                Err("is not an RFC 3339 date-time".into())
            }
            _ => Ok(()),
        }
    }
}

/// `+` and 2 to 15 digits, not starting with 0, optionally behind a channel
/// prefix whose addresses are phone numbers (`whatsapp:+15551234567`).
fn phone_number(value: &str) -> bool {
    let number = match value.split_once(':') {
        Some((channel, number)) if CHANNELS.contains(&channel) => number,
        Some(_) => return false,
        None => value,
    };
    number.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

fn http_url(value: &str) -> bool {
    reqwest::Url::parse(value).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https")
            && url
                .host_str()
                .is_some_and(|host| !host.is_empty() && !host.contains('_'))
    })
}

/// RFC 3339; with `date_only`, a `YYYY-MM-DD` date too.
fn date_time(value: &str, date_only: bool) -> bool {
    OffsetDateTime::parse(value, &Rfc3339).is_ok()
        || date_only
            && time::Date::parse(
                value,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .is_ok()
}

/// `MessagingServiceSid` -> `messaging_service_sid`, as `x-twilio.conditional` names fields.
fn snake_case(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{what} is not an object"))
}

fn array<'a>(value: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{what} is not an array"))
}

fn string(value: Option<&Value>, what: &str) -> Result<String, String> {
    value
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| format!("{what} is not a string"))
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    array(value, what)?
        .iter()
        .map(|v| string(Some(v), what))
        .collect()
}

/// Fails on a keyword this module would not enforce.
fn known_keys(object: &Map<String, Value>, known: &[&str]) -> Result<(), String> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(format!("{key} is not supported")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    const ACCOUNT: &str = crate::DEFAULT_ACCOUNT_SID;
    const TO: (&str, &str) = ("To", "whatsapp:+5511999990000");
    const FROM: (&str, &str) = ("From", "whatsapp:+14155238886");
    const CALLBACK: (&str, &str) = (
        "StatusCallback",
        "https://abc123.execute-api.us-east-1.amazonaws.com/webhook?invitation_id=01J&job_id=01K&attempt=1",
    );
    const TEMPLATE: (&str, &str) = ("ContentSid", "HX0123456789abcdef0123456789ABCDEF");
    const VARIABLES: (&str, &str) = ("ContentVariables", r#"{"1":"Ana","2":"Saturday"}"#);

    /// A form as a test writes it.
    type Form<'a> = &'a [(&'a str, &'a str)];

    fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn create(form: &[(&str, &str)]) -> Result<(), Violation> {
        check_create(ACCOUNT, &pairs(form))
    }

    /// The parameter the create request is refused for, and Twilio's code.
    fn refused(form: &[(&str, &str)]) -> (String, u32) {
        let violation = create(form).unwrap_err();
        let named = violation.parameters().join(",");
        let error = violation.into_error("/path");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        (named, error.code)
    }

    #[test]
    fn the_excerpt_loads() {
        let spec = &*SPEC;
        let form = spec.create.form.as_ref().unwrap();
        assert_eq!(form.properties.len(), 25);
        assert_eq!(form.required, ["To"]);
        assert_eq!(
            form.conditional,
            [
                vec!["From", "MessagingServiceSid"],
                vec!["Body", "MediaUrl", "ContentSid"]
            ]
        );
        assert_eq!(spec.list.params.len(), 9);
        assert_eq!(spec.fetch.params.len(), 2);
    }

    #[test]
    fn unknown_keywords_fail_to_load() {
        let with = |schema: &str| Schema::parse(&serde_json::from_str(schema).unwrap());
        assert!(with(r#"{"type":"string","maxItems":3}"#).is_err());
        assert!(with(r#"{"type":"string","format":"email"}"#).is_err());
        assert!(with(r#"{"type":"object"}"#).is_err());
        assert!(with(r#"{"type":"integer","pattern":"^1$"}"#).is_err());
        assert!(with(r#"{"type":"string","pattern":"("}"#).is_err());
        assert!(with(r#"{"type":"string","pattern":"^AC[0-9a-fA-F]{32}$"}"#).is_ok());
    }

    #[test]
    fn the_default_account_sid_fits_the_spec() {
        assert!(valid_account_sid(crate::DEFAULT_ACCOUNT_SID));
        assert!(!valid_account_sid("ACsim0000000000000000000000000001"));
    }

    #[test]
    fn what_the_product_sends_passes() {
        create(&[TO, FROM, ("Body", "Olá, Ana! 🎉"), CALLBACK]).unwrap();
        create(&[TO, FROM, TEMPLATE, VARIABLES, CALLBACK]).unwrap();
        create(&[TO, FROM, TEMPLATE, CALLBACK]).unwrap();
        // Fields the spec does not define are ignored, as the spec allows.
        create(&[TO, FROM, ("Body", "hi"), ("Tags", "{}")]).unwrap();
        // The other fields, well formed.
        create(&[
            TO,
            ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
            ("MediaUrl", "https://example.com/a.png"),
            ("MediaUrl", "not checked: x-twilio ignoreFormat"),
            ("ApplicationSid", "AP0123456789abcdef0123456789abcdef"),
            ("MaxPrice", "0.5"),
            ("ProvideFeedback", "true"),
            ("Attempt", "2"),
            ("ValidityPeriod", "600"),
            ("ContentRetention", "discard"),
            ("AddressRetention", "obfuscate"),
            ("PersistentAction", "geo:37.787890,-122.391664"),
            ("ScheduleType", "fixed"),
            ("SendAt", "2030-01-02T03:04:05Z"),
            ("RiskCheck", "disable"),
            ("FallbackFrom", "+15551234567"),
        ])
        .unwrap();
        // An empty From is allowed next to a MessagingServiceSid.
        create(&[
            TO,
            ("From", ""),
            ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
            ("Body", "hi"),
        ])
        .unwrap();
    }

    #[test]
    fn a_bad_account_sid_is_a_missing_resource() {
        for sid in [
            "ACdeadbeef",
            "ACsim0000000000000000000000000001",
            "XXdeadbeefdeadbeefdeadbeefdeadbeef",
        ] {
            let violation = check_create(sid, &pairs(&[TO, FROM, ("Body", "hi")])).unwrap_err();
            assert_eq!(violation.parameters(), ["AccountSid"]);
            let path = format!("/2010-04-01/Accounts/{sid}/Messages.json");
            let error = violation.into_error(&path);
            assert_eq!((error.status, error.code), (StatusCode::NOT_FOUND, 20404));
            assert!(error.message.contains(&path), "{}", error.message);
        }
        assert!(check_list("ACnope", &[]).is_err());
        assert!(check_fetch("ACnope", "SM0123456789abcdef0123456789abcdef").is_err());
    }

    #[test]
    fn bad_fields_are_refused_by_name() {
        let body = ("Body", "hi");
        let cases: [(Form, &str, u32); 14] = [
            (&[FROM, body], "To", 21604),
            (&[("To", ""), FROM, body], "To", 21604),
            (&[("To", "5511999990000"), FROM, body], "To", 21211),
            (
                &[("To", "whatsapp:+0511999990000"), FROM, body],
                "To",
                21211,
            ),
            (&[("To", "fax:+5511999990000"), FROM, body], "To", 21211),
            (&[TO, ("From", "whatsapp:555"), body], "From", 21212),
            (&[TO, body], "From,MessagingServiceSid", 21603),
            (&[TO, FROM], "Body,MediaUrl,ContentSid", 21602),
            (&[TO, FROM, ("Body", "")], "Body,MediaUrl,ContentSid", 21602),
            (&[TO, FROM, ("ContentSid", "HXnope")], "ContentSid", 21656),
            (
                &[
                    TO,
                    FROM,
                    ("ContentSid", "HX0123456789abcdef0123456789abcdeg"),
                ],
                "ContentSid",
                21656,
            ),
            (
                &[TO, FROM, body, ("StatusCallback", "not a url")],
                "StatusCallback",
                21609,
            ),
            (
                &[TO, FROM, body, ("StatusCallback", "ftp://example.com/x")],
                "StatusCallback",
                21609,
            ),
            (
                &[TO, FROM, body, ("StatusCallback", "http://my_host/x")],
                "StatusCallback",
                21609,
            ),
        ];
        for (form, named, code) in cases {
            assert_eq!(refused(form), (named.to_string(), code), "{form:?}");
        }
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let ok = [TO, FROM, ("Body", "hi")];
        let cases = [
            ("ContentRetention", "forever"),
            ("RiskCheck", "Disable"),
            ("ScheduleType", "later"),
            ("TrafficType", "paid"),
            ("Attempt", "two"),
            ("ValidityPeriod", "1.5"),
            ("ProvideFeedback", "yes"),
            ("MaxPrice", "cheap"),
            ("SendAt", "2030-01-02"),
            ("MessagingServiceSid", "MGnope"),
            ("ApplicationSid", "AP0123456789abcdef0123456789abcdef0"),
            ("FallbackFrom", "Brand"),
        ];
        for (name, value) in cases {
            let mut form = ok.to_vec();
            form.push((name, value));
            let violation = create(&form).unwrap_err();
            assert_eq!(violation.parameters(), [name], "{name}={value}");
            let error = violation.into_error("/path");
            assert_eq!((error.status, error.code), (StatusCode::BAD_REQUEST, 20001));
            assert!(error.message.contains(name), "{}", error.message);
            assert!(error.message.contains(value), "{}", error.message);
        }
    }

    #[test]
    fn list_queries() {
        let list = |query: &[(&str, &str)]| check_list(ACCOUNT, &pairs(query));
        // What the product's reconciliation sends.
        list(&[
            TO,
            FROM,
            ("DateSent>", "2026-04-14T09:26:42.123Z"),
            ("PageSize", "20"),
        ])
        .unwrap();
        list(&[]).unwrap();
        list(&[
            ("DateSent", "2008-01-02"),
            ("DateSent<", "2008-01-02"),
            ("Page", "0"),
        ])
        .unwrap();
        list(&[
            ("PageSize", "1"),
            ("PageToken", "PASMxyz"),
            ("Unknown", "x"),
        ])
        .unwrap();
        for (name, value) in [
            ("To", "15551234567"),
            ("From", "whatsapp:+1"),
            ("DateSent>", "yesterday"),
            ("DateSent", "06/11/2019 22:05:25 MST"),
            ("PageSize", "0"),
            ("PageSize", "1001"),
            ("PageSize", "many"),
            ("Page", "-1"),
        ] {
            let violation = list(&[(name, value)]).unwrap_err();
            assert_eq!(violation.parameters(), [name], "{name}={value}");
            assert_eq!(
                violation.into_error("/path").status,
                StatusCode::BAD_REQUEST
            );
        }
    }

    #[test]
    fn fetch_sids() {
        check_fetch(ACCOUNT, "SM0123456789abcdef0123456789abcdef").unwrap();
        check_fetch(ACCOUNT, "MM0123456789abcdef0123456789abcdef").unwrap();
        check_fetch(ACCOUNT, &crate::api::new_message_sid()).unwrap();
        for sid in ["SMnope", "XX0123456789abcdef0123456789abcdef", ""] {
            let violation = check_fetch(ACCOUNT, sid).unwrap_err();
            assert_eq!(violation.parameters(), ["Sid"]);
            let error = violation.into_error("/path");
            assert_eq!((error.status, error.code), (StatusCode::NOT_FOUND, 20404));
        }
    }

    #[test]
    fn formats() {
        assert!(phone_number("+15551234567"));
        assert!(phone_number("whatsapp:+15551234567"));
        assert!(phone_number("+12"));
        assert!(!phone_number("+1"));
        assert!(!phone_number("+1234567890123456"));
        assert!(!phone_number("whatsapp:15551234567"));
        assert!(!phone_number("+1 555 123 4567"));
        assert!(http_url("http://127.0.0.1:3000/webhook?a_b=1"));
        assert!(!http_url("/webhook"));
        assert!(!http_url("mailto:a@example.com"));
        assert!(date_time("2030-01-02T03:04:05+01:00", false));
        assert!(!date_time("2030-01-02", false));
        assert!(date_time("2030-01-02", true));
        assert_eq!(snake_case("MessagingServiceSid"), "messaging_service_sid");
        assert_eq!(snake_case("To"), "to");
    }
}
