//! Domain types. Each parses its input once; a value that exists is valid.
//! This layer imports no other layer of the crate.

pub mod admission;
pub mod budget;
pub mod cost;
mod event;
pub mod guest;
mod ids;
mod invitation;
pub mod opt_out;
mod phone;
pub mod reading;
pub mod reason;
pub mod reminder;
pub mod render;
pub mod rsvp;
mod status;
mod template;

pub use event::{Event, EventInput};
pub use ids::{EventId, GuestId, IdError, InvitationId, JobId, RsvpToken, TemplateId};
pub use invitation::{Guest, GuestInput, Invitation, Job, SendRequest};
pub use opt_out::{Keyword, OptOut, OptOutSource, OptOuts, SeenOptOuts};
pub use phone::{PhoneError, PhoneNumber, mask_digits};
pub use status::{Status, StatusError};
pub use template::{
    ContentDefinition, MessageContent, MessageTemplate, TemplateCategory, TemplateInput,
    TemplateRef,
};

/// A validation failure that names the offending field (dotted path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl ToString) -> Self {
        Self {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// An optional whole number of a request body as JSON may write it, `4`
/// or `4.0` (both integers to JSON Schema, and so to the API's document);
/// for `#[serde(default, deserialize_with = "whole_number")]`.
pub fn whole_number<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::Deserialize as _;
    use serde::de::Error as _;
    let Some(n) = Option::<serde_json::Number>::deserialize(de)? else {
        return Ok(None);
    };
    let whole = n
        .as_i64()
        .or_else(|| {
            // Integral and within what a float holds exactly.
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
                .map(|f| f as i64)
        })
        .ok_or_else(|| D::Error::custom(format!("must be a whole number, not {n}")))?;
    T::try_from(whole)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("{whole} is out of range")))
}

/// Text made safe inside HTML or XML markup (a page, TwiML): the five
/// characters markup reads, as entities both understand.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The current time as stored: RFC 3339, UTC, millisecond precision.
pub fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// A time as the product writes times: RFC 3339 UTC, always with three
/// digits of milliseconds, so that times sort as text (sort keys, cursors,
/// newest-first lists): `...:28.800Z`, never `...:28.8Z`.
pub fn timestamp(at: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("a UTC time formats")
}

/// Parses a time the product wrote (or any RFC 3339 time).
pub fn parse_timestamp(at: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod whole_number_tests {
    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "super::whole_number")]
        n: Option<u32>,
    }

    fn n(json: &str) -> Result<Option<u32>, String> {
        serde_json::from_str::<Body>(json)
            .map(|b| b.n)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_whole_number_may_be_written_as_a_float_but_not_be_a_fraction_or_out_of_range() {
        assert_eq!(n(r#"{"n": 4}"#), Ok(Some(4)));
        assert_eq!(n(r#"{"n": 4.0}"#), Ok(Some(4)));
        assert_eq!(n(r#"{}"#), Ok(None));
        assert_eq!(n(r#"{"n": null}"#), Ok(None));
        assert!(n(r#"{"n": 4.5}"#).unwrap_err().contains("whole number"));
        assert!(n(r#"{"n": -1}"#).unwrap_err().contains("out of range"));
        assert!(n(r#"{"n": "4"}"#).is_err());
    }
}

#[cfg(test)]
mod timestamp_tests {
    use super::*;

    fn at(ms: i64) -> String {
        let nanos = (1_795_000_000_000_i128 + i128::from(ms)) * 1_000_000;
        timestamp(time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap())
    }

    #[test]
    fn times_have_fixed_width_and_sort_as_text() {
        assert_eq!(at(800), "2026-11-18T11:06:40.800Z");
        assert_eq!(at(0), "2026-11-18T11:06:40.000Z");
        let mut times = vec![at(853), at(800), at(99), at(1_000)];
        times.sort();
        assert_eq!(times, [at(99), at(800), at(853), at(1_000)]);
        assert!(parse_timestamp(&at(800)).is_some());
    }
}
