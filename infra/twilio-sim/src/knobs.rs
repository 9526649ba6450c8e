//! The simulator's behaviour switches, read from the environment at startup
//! and replaceable at runtime through `POST /_sim/config`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Content template SIDs the simulator knows unless told otherwise. The
/// third is [`QUICK_REPLY_CONTENT_SID`].
pub const DEFAULT_CONTENT_SIDS: [&str; 3] = [
    "HX00000000000000000000000000000001",
    "HX00000000000000000000000000000002",
    QUICK_REPLY_CONTENT_SID,
];

/// A `twilio/quick-reply` Content template the simulator knows: an RSVP
/// invitation whose Yes / No / Maybe buttons take their ids from the
/// variables 3, 4 and 5 (the stack's `{rsvp_yes}`, `{rsvp_no}`,
/// `{rsvp_maybe}`), as an approved template's buttons would.
pub const QUICK_REPLY_CONTENT_SID: &str = "HX00000000000000000000000000000003";

/// The buttons of [`QUICK_REPLY_CONTENT_SID`]: title, and id with variables.
pub const QUICK_REPLY_BUTTONS: [(&str, &str); 3] =
    [("Yes", "{{3}}"), ("No", "{{4}}"), ("Maybe", "{{5}}")];

/// Environment variables [`Knobs::from_env`] reads, one per knob.
pub mod env {
    pub const LATENCY_MS: &str = "TWILIO_SIM_LATENCY_MS";
    pub const RATE_LIMIT: &str = "TWILIO_SIM_RATE_LIMIT";
    pub const ERROR_5XX_RATIO: &str = "TWILIO_SIM_ERROR_5XX_RATIO";
    pub const TIMEOUT_RATIO: &str = "TWILIO_SIM_TIMEOUT_RATIO";
    pub const TIMEOUT_HANG_MS: &str = "TWILIO_SIM_TIMEOUT_HANG_MS";
    pub const LOST_ANSWER_RATIO: &str = "TWILIO_SIM_LOST_ANSWER_RATIO";
    pub const LOST_CALLBACK_RATIO: &str = "TWILIO_SIM_LOST_CALLBACK_RATIO";
    pub const CALLBACK_DELAY_MS: &str = "TWILIO_SIM_CALLBACK_DELAY_MS";
    pub const REORDER_CALLBACKS: &str = "TWILIO_SIM_REORDER_CALLBACKS";
    pub const DUPLICATE_CALLBACKS: &str = "TWILIO_SIM_DUPLICATE_CALLBACKS";
    pub const FAIL_NUMBERS: &str = "TWILIO_SIM_FAIL_NUMBERS";
    pub const UNDELIVERED_NUMBERS: &str = "TWILIO_SIM_UNDELIVERED_NUMBERS";
    pub const ENFORCE_SESSION_WINDOW: &str = "TWILIO_SIM_ENFORCE_SESSION_WINDOW";
    pub const SESSION_OPEN_NUMBERS: &str = "TWILIO_SIM_SESSION_OPEN_NUMBERS";
    pub const CONTENT_SIDS: &str = "TWILIO_SIM_CONTENT_SIDS";
    pub const MARKETING_CONTENT_SIDS: &str = "TWILIO_SIM_MARKETING_CONTENT_SIDS";
    pub const DAILY_LIMIT: &str = "TWILIO_SIM_DAILY_LIMIT";
    pub const DAILY_WINDOW_SECONDS: &str = "TWILIO_SIM_DAILY_WINDOW_SECONDS";
}

/// How the simulator misbehaves. Global to one simulator instance.
///
/// Phone numbers are E.164 (`+15550000001`), without the `whatsapp:` prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Added before answering every create request.
    pub latency_ms: u64,
    /// Accepted creates per wall-clock second before answering 429 (20429); 0 means no limit.
    pub rate_limit_per_second: u32,
    /// Share (0..=1) of creates answered 503 (20500).
    pub error_5xx_ratio: f64,
    /// Share (0..=1) of creates that hang for `timeout_hang_ms`, then answer 504.
    pub timeout_ratio: f64,
    /// How long a simulated timeout hangs; long enough for the client to give up first.
    pub timeout_hang_ms: u64,
    /// Share (0..=1) of creates that are accepted (recorded, callbacks sent)
    /// but whose answer is lost: the request hangs for `timeout_hang_ms`,
    /// then answers 500 (20500), as when Twilio's answer never arrives.
    pub lost_answer_ratio: f64,
    /// Share (0..=1) of status callbacks never sent (the message's status
    /// still moves on, as reads of the message resource show).
    pub lost_callback_ratio: f64,
    /// Pause before each status callback, counted from the previous one (or the 201).
    pub callback_delay_ms: u64,
    /// Send one message's callbacks in reverse order.
    pub reorder_callbacks: bool,
    /// Send every callback twice.
    pub duplicate_callbacks: bool,
    /// To numbers whose create is rejected with 400 and this error code.
    pub fail_numbers: BTreeMap<String, u32>,
    /// To numbers whose messages go `sent`, then `undelivered` with this error code.
    pub undelivered_numbers: BTreeMap<String, u32>,
    /// Fail free-form `Body` messages (63016) to numbers outside `session_open_numbers`.
    pub enforce_session_window: bool,
    /// Numbers with an open 24-hour session (the guest wrote): free-form
    /// messages reach them when `enforce_session_window` is on, and messages
    /// to them never count toward `daily_limit`.
    pub session_open_numbers: BTreeSet<String>,
    /// Content template SIDs accepted as `ContentSid`.
    pub content_sids: BTreeSet<String>,
    /// Of those, the ones approved as Marketing: WhatsApp does not deliver
    /// them to US numbers (failed with 63049; +1 is also Canada and the Caribbean).
    pub marketing_content_sids: BTreeSet<String>,
    /// WhatsApp's messaging limit: unique recipients one sender (`From`, or
    /// its `MessagingServiceSid`) may reach with business-initiated messages
    /// within `daily_window_seconds`; Meta's tiers are 250, 2000, 10000 and
    /// 100000. Messages past it fail with 63018. `None` means unlimited.
    pub daily_limit: Option<u64>,
    /// The moving window of `daily_limit`: 24 hours at WhatsApp, seconds in tests.
    pub daily_window_seconds: u64,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            rate_limit_per_second: 0,
            error_5xx_ratio: 0.0,
            timeout_ratio: 0.0,
            timeout_hang_ms: 20_000,
            lost_answer_ratio: 0.0,
            lost_callback_ratio: 0.0,
            callback_delay_ms: 50,
            reorder_callbacks: false,
            duplicate_callbacks: false,
            fail_numbers: BTreeMap::new(),
            undelivered_numbers: BTreeMap::new(),
            enforce_session_window: false,
            session_open_numbers: BTreeSet::new(),
            content_sids: DEFAULT_CONTENT_SIDS.iter().map(|s| s.to_string()).collect(),
            marketing_content_sids: BTreeSet::from([DEFAULT_CONTENT_SIDS[0].to_string()]),
            daily_limit: None,
            daily_window_seconds: 86_400,
        }
    }
}

/// A knob environment variable that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.name, self.value, self.reason)
    }
}

impl std::error::Error for EnvError {}

impl Knobs {
    /// Defaults overridden by whichever `TWILIO_SIM_*` variables are set (see [`env`]).
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Knobs::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let mut knobs = Self::default();
        let vars = Vars(&lookup);
        vars.set(env::LATENCY_MS, &mut knobs.latency_ms, parse_number)?;
        vars.set(
            env::RATE_LIMIT,
            &mut knobs.rate_limit_per_second,
            parse_number,
        )?;
        vars.set(
            env::ERROR_5XX_RATIO,
            &mut knobs.error_5xx_ratio,
            parse_ratio,
        )?;
        vars.set(env::TIMEOUT_RATIO, &mut knobs.timeout_ratio, parse_ratio)?;
        vars.set(
            env::TIMEOUT_HANG_MS,
            &mut knobs.timeout_hang_ms,
            parse_number,
        )?;
        vars.set(
            env::LOST_ANSWER_RATIO,
            &mut knobs.lost_answer_ratio,
            parse_ratio,
        )?;
        vars.set(
            env::LOST_CALLBACK_RATIO,
            &mut knobs.lost_callback_ratio,
            parse_ratio,
        )?;
        vars.set(
            env::CALLBACK_DELAY_MS,
            &mut knobs.callback_delay_ms,
            parse_number,
        )?;
        vars.set(
            env::REORDER_CALLBACKS,
            &mut knobs.reorder_callbacks,
            parse_bool,
        )?;
        vars.set(
            env::DUPLICATE_CALLBACKS,
            &mut knobs.duplicate_callbacks,
            parse_bool,
        )?;
        vars.set(env::FAIL_NUMBERS, &mut knobs.fail_numbers, parse_code_map)?;
        vars.set(
            env::UNDELIVERED_NUMBERS,
            &mut knobs.undelivered_numbers,
            parse_code_map,
        )?;
        vars.set(
            env::ENFORCE_SESSION_WINDOW,
            &mut knobs.enforce_session_window,
            parse_bool,
        )?;
        vars.set(
            env::SESSION_OPEN_NUMBERS,
            &mut knobs.session_open_numbers,
            parse_numbers,
        )?;
        vars.set(env::CONTENT_SIDS, &mut knobs.content_sids, parse_list)?;
        vars.set(
            env::MARKETING_CONTENT_SIDS,
            &mut knobs.marketing_content_sids,
            parse_list,
        )?;
        vars.set(env::DAILY_LIMIT, &mut knobs.daily_limit, parse_limit)?;
        vars.set(
            env::DAILY_WINDOW_SECONDS,
            &mut knobs.daily_window_seconds,
            parse_window,
        )?;
        Ok(knobs)
    }

    /// These knobs with the fields present in `patch` (a JSON object) replaced.
    pub fn patched(&self, patch: serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(patch) = patch else {
            return Err("expected a JSON object of knobs".into());
        };
        let mut merged = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => unreachable!("Knobs serialize to a JSON object"),
        };
        merged.extend(patch);
        let knobs: Self =
            serde_json::from_value(serde_json::Value::Object(merged)).map_err(|e| e.to_string())?;
        knobs.validate()?;
        Ok(knobs)
    }

    /// Checks what the types cannot: ratios are probabilities, the daily
    /// window is not empty.
    pub fn validate(&self) -> Result<(), String> {
        if self.daily_window_seconds == 0 {
            return Err("daily_window_seconds must be at least 1".into());
        }
        for (name, ratio) in [
            ("error_5xx_ratio", self.error_5xx_ratio),
            ("timeout_ratio", self.timeout_ratio),
            ("lost_answer_ratio", self.lost_answer_ratio),
            ("lost_callback_ratio", self.lost_callback_ratio),
        ] {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(format!("{name} must be between 0 and 1, got {ratio}"));
            }
        }
        Ok(())
    }
}

/// Applies each variable that is set, naming it in the error if it does not parse.
struct Vars<'a, F>(&'a F);

impl<F: Fn(&str) -> Option<String>> Vars<'_, F> {
    fn set<T>(
        &self,
        name: &'static str,
        field: &mut T,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<(), EnvError> {
        let Some(value) = (self.0)(name) else {
            return Ok(());
        };
        *field = parse(value.trim()).map_err(|reason| EnvError {
            name,
            value: value.clone(),
            reason,
        })?;
        Ok(())
    }
}

fn parse_number<T: FromStr>(value: &str) -> Result<T, String>
where
    T::Err: fmt::Display,
{
    value.parse().map_err(|e: T::Err| e.to_string())
}

fn parse_ratio(value: &str) -> Result<f64, String> {
    let ratio: f64 = parse_number(value)?;
    if (0.0..=1.0).contains(&ratio) {
        Ok(ratio)
    } else {
        Err("expected a number between 0 and 1".into())
    }
}

/// A number of recipients, or `unlimited` (also empty, like an unset variable).
fn parse_limit(value: &str) -> Result<Option<u64>, String> {
    if value.is_empty() || value.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    parse_number(value)
        .map(Some)
        .map_err(|e| format!("expected a number of recipients or \"unlimited\": {e}"))
}

fn parse_window(value: &str) -> Result<u64, String> {
    match parse_number(value)? {
        0 => Err("expected a number of seconds, at least 1".into()),
        seconds => Ok(seconds),
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_list(value: &str) -> Result<BTreeSet<String>, String> {
    Ok(value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(String::from)
        .collect())
}

fn parse_numbers(value: &str) -> Result<BTreeSet<String>, String> {
    parse_list(value)?.iter().map(|n| phone_number(n)).collect()
}

/// `+15550000001=21211,+15550000002=63024`
fn parse_code_map(value: &str) -> Result<BTreeMap<String, u32>, String> {
    parse_list(value)?
        .iter()
        .map(|entry| {
            let (number, code) = entry
                .split_once('=')
                .ok_or_else(|| format!("expected NUMBER=CODE, got {entry:?}"))?;
            let code = parse_number(code.trim())?;
            Ok((phone_number(number.trim())?, code))
        })
        .collect()
}

/// Tolerates the `whatsapp:` prefix since that is how numbers appear in requests.
fn phone_number(value: &str) -> Result<String, String> {
    let number = value.strip_prefix("whatsapp:").unwrap_or(value);
    if number.starts_with('+') && number.len() > 1 {
        Ok(number.to_string())
    } else {
        Err(format!(
            "expected an E.164 number like +15550000001, got {value:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_vars(vars: &[(&str, &str)]) -> Result<Knobs, EnvError> {
        Knobs::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_without_variables() {
        assert_eq!(from_vars(&[]).unwrap(), Knobs::default());
        assert_eq!(Knobs::default().callback_delay_ms, 50);
        assert!(
            Knobs::default()
                .content_sids
                .contains(DEFAULT_CONTENT_SIDS[0])
        );
    }

    #[test]
    fn reads_every_variable() {
        let knobs = from_vars(&[
            (env::LATENCY_MS, "120"),
            (env::RATE_LIMIT, "80"),
            (env::ERROR_5XX_RATIO, "0.1"),
            (env::TIMEOUT_RATIO, "0.05"),
            (env::TIMEOUT_HANG_MS, "3000"),
            (env::CALLBACK_DELAY_MS, "5"),
            (env::REORDER_CALLBACKS, "true"),
            (env::DUPLICATE_CALLBACKS, "1"),
            (
                env::FAIL_NUMBERS,
                "+15550000001=21211, whatsapp:+15550000002=63024",
            ),
            (env::UNDELIVERED_NUMBERS, "+15550000003=30006"),
            (env::ENFORCE_SESSION_WINDOW, "yes"),
            (env::SESSION_OPEN_NUMBERS, "+15550000004,+15550000005"),
            (env::CONTENT_SIDS, "HXaaa,HXbbb"),
            (env::DAILY_LIMIT, "250"),
            (env::DAILY_WINDOW_SECONDS, "2"),
        ])
        .unwrap();
        assert_eq!(knobs.latency_ms, 120);
        assert_eq!(knobs.rate_limit_per_second, 80);
        assert_eq!(knobs.error_5xx_ratio, 0.1);
        assert_eq!(knobs.timeout_ratio, 0.05);
        assert_eq!(knobs.timeout_hang_ms, 3000);
        assert_eq!(knobs.callback_delay_ms, 5);
        assert!(knobs.reorder_callbacks && knobs.duplicate_callbacks);
        assert_eq!(knobs.fail_numbers["+15550000001"], 21211);
        assert_eq!(knobs.fail_numbers["+15550000002"], 63024);
        assert_eq!(knobs.undelivered_numbers["+15550000003"], 30006);
        assert!(knobs.enforce_session_window);
        assert_eq!(knobs.session_open_numbers.len(), 2);
        assert_eq!(
            knobs.content_sids,
            BTreeSet::from(["HXaaa".to_string(), "HXbbb".to_string()])
        );
        assert_eq!(knobs.daily_limit, Some(250));
        assert_eq!(knobs.daily_window_seconds, 2);
    }

    #[test]
    fn daily_limit_is_a_number_or_unlimited() {
        assert_eq!(Knobs::default().daily_limit, None);
        assert_eq!(Knobs::default().daily_window_seconds, 86_400);
        for unlimited in ["unlimited", "UNLIMITED", ""] {
            let knobs = from_vars(&[(env::DAILY_LIMIT, unlimited)]).unwrap();
            assert_eq!(knobs.daily_limit, None, "{unlimited:?}");
        }
        for bad in ["many", "-1", "2.5"] {
            let err = from_vars(&[(env::DAILY_LIMIT, bad)]).unwrap_err();
            assert_eq!(err.name, env::DAILY_LIMIT);
            assert!(err.reason.contains("unlimited"), "{err}");
        }
        for bad in ["0", "a day"] {
            let err = from_vars(&[(env::DAILY_WINDOW_SECONDS, bad)]).unwrap_err();
            assert_eq!(err.name, env::DAILY_WINDOW_SECONDS);
        }
        let knobs = Knobs::default()
            .patched(serde_json::json!({"daily_limit": 3, "daily_window_seconds": 2}))
            .unwrap();
        assert_eq!(
            (knobs.daily_limit, knobs.daily_window_seconds),
            (Some(3), 2)
        );
        let knobs = knobs
            .patched(serde_json::json!({"daily_limit": null}))
            .unwrap();
        assert_eq!(knobs.daily_limit, None);
        assert!(
            knobs
                .patched(serde_json::json!({"daily_window_seconds": 0}))
                .is_err()
        );
    }

    #[test]
    fn names_the_variable_that_does_not_parse() {
        let err = from_vars(&[(env::ERROR_5XX_RATIO, "1.5")]).unwrap_err();
        assert_eq!(err.name, env::ERROR_5XX_RATIO);
        assert!(from_vars(&[(env::FAIL_NUMBERS, "+1555=abc")]).is_err());
        assert!(from_vars(&[(env::FAIL_NUMBERS, "15550000001=21211")]).is_err());
        assert!(from_vars(&[(env::REORDER_CALLBACKS, "maybe")]).is_err());
    }

    #[test]
    fn patch_replaces_only_given_fields() {
        let knobs = Knobs::default()
            .patched(serde_json::json!({"latency_ms": 7, "reorder_callbacks": true}))
            .unwrap();
        assert_eq!(knobs.latency_ms, 7);
        assert!(knobs.reorder_callbacks);
        assert_eq!(knobs.callback_delay_ms, Knobs::default().callback_delay_ms);
    }

    #[test]
    fn patch_rejects_unknown_fields_and_bad_ratios() {
        let knobs = Knobs::default();
        assert!(knobs.patched(serde_json::json!({"latency": 7})).is_err());
        assert!(
            knobs
                .patched(serde_json::json!({"timeout_ratio": 2.0}))
                .is_err()
        );
        assert!(knobs.patched(serde_json::json!([1])).is_err());
    }
}
