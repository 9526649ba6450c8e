//! Reminders to guests who have not answered: an event's RSVP deadline and
//! its reminder times ("3 days before, at 10:00"), in the event's own UTC
//! offset (the one its start was given with), and the job a reminder time
//! sends as: one per time, so running it again sends nothing.

use super::{Event, EventId, FieldError, JobId};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, Time};

/// At most this many reminder times per event.
pub const MAX_REMINDERS: usize = 5;
/// The furthest a reminder may come before its deadline.
pub const MAX_DAYS_BEFORE: u32 = 60;

/// One reminder time: so many days before the deadline (or the event's
/// start), at this time of day in the event's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReminderTime {
    pub days_before: u32,
    #[serde(serialize_with = "hh_mm")]
    pub at: Time,
}

fn hh_mm<S: serde::Serializer>(at: &Time, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{:02}:{:02}", at.hour(), at.minute()))
}

/// A reminder time as given, before validation.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderInput {
    #[serde(default, deserialize_with = "super::whole_number")]
    pub days_before: Option<i64>,
    pub at: Option<String>,
}

impl ReminderInput {
    pub fn parse(self, field: &str) -> Result<ReminderTime, FieldError> {
        let days = self
            .days_before
            .ok_or_else(|| FieldError::new(format!("{field}.days_before"), "is required"))?;
        if !(0..=i64::from(MAX_DAYS_BEFORE)).contains(&days) {
            return Err(FieldError::new(
                format!("{field}.days_before"),
                format!("must be a whole number from 0 to {MAX_DAYS_BEFORE}"),
            ));
        }
        let bad_at =
            || FieldError::new(format!("{field}.at"), "must be a time of day such as 10:00");
        let at = self.at.ok_or_else(bad_at)?;
        let (h, m) = at.trim().split_once(':').ok_or_else(bad_at)?;
        let at = match (h.parse::<u8>(), m.parse::<u8>()) {
            (Ok(h), Ok(m))
                if m < 60 && h < 24 && m.to_string().len() <= 2 && h.to_string().len() <= 2 =>
            {
                Time::from_hms(h, m, 0).map_err(|_| bad_at())?
            }
            _ => return Err(bad_at()),
        };
        Ok(ReminderTime {
            days_before: days as u32,
            at,
        })
    }
}

/// Parses an event's `rsvp_deadline` and `reminders` (the deadline must come
/// before the start; reminder times are kept in order, each once).
pub fn parse_plan(
    deadline: Option<String>,
    reminders: Option<Vec<ReminderInput>>,
    starts_at: &OffsetDateTime,
) -> Result<(Option<String>, Vec<ReminderTime>), FieldError> {
    let deadline = deadline
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
    if let Some(d) = &deadline {
        let at = OffsetDateTime::parse(d, &Rfc3339).map_err(|_| {
            FieldError::new(
                "rsvp_deadline",
                "must be an RFC 3339 date-time such as 2027-04-25T23:59:00-03:00",
            )
        })?;
        if at > *starts_at {
            return Err(FieldError::new(
                "rsvp_deadline",
                "must not be after the event starts",
            ));
        }
    }
    let given = reminders.unwrap_or_default();
    if given.len() > MAX_REMINDERS {
        return Err(FieldError::new(
            "reminders",
            format!("at most {MAX_REMINDERS} reminder times"),
        ));
    }
    let mut times = given
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.parse(&format!("reminders[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    times.sort_by_key(|t| (std::cmp::Reverse(t.days_before), t.at));
    times.dedup();
    Ok((deadline, times))
}

impl Event {
    /// What reminders count down to: the RSVP deadline, else the start.
    fn reminder_anchor(&self) -> Option<OffsetDateTime> {
        let anchor = self.rsvp_deadline.as_deref().unwrap_or(&self.starts_at);
        OffsetDateTime::parse(anchor, &Rfc3339).ok()
    }

    /// The instants of the event's reminder times that come before what
    /// they count down to, in order.
    pub fn reminder_instants(&self) -> Vec<OffsetDateTime> {
        let Some(anchor) = self.reminder_anchor() else {
            return Vec::new();
        };
        let mut instants: Vec<OffsetDateTime> = self
            .reminders
            .iter()
            .filter_map(|r| {
                let day = anchor.date() - Duration::days(i64::from(r.days_before));
                let at = PrimitiveDateTime::new(day, r.at).assume_offset(anchor.offset());
                (at < anchor).then_some(at)
            })
            .collect();
        instants.sort();
        instants.dedup();
        instants
    }
}

impl Event {
    /// The first of the event's reminder times after `now`, in the event's
    /// offset: when the schedule reminds next.
    pub fn next_reminder_after(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.reminder_instants().into_iter().find(|at| *at > now)
    }
}

/// The job a reminder sends as, one per (event, reminder key): a second run
/// for the same key finds it and sends nothing more.
pub fn reminder_job(owner: &str, event: &EventId, key: &str) -> JobId {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(format!("{owner}\n{event}\n{key}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    JobId::parse(&format!("{REMINDER_JOB_PREFIX}{hex}")).expect("prefix and hex make an id")
}

/// What a reminder's job id starts with (a send's start with `job_`).
pub const REMINDER_JOB_PREFIX: &str = "rem_";

pub fn is_reminder(job: &JobId) -> bool {
    job.as_str().starts_with(REMINDER_JOB_PREFIX)
}

/// The key of a scheduled reminder time: its instant in UTC, to the second
/// (reminder times fall on whole minutes), as keys and job ids have it.
pub fn scheduled_key(at: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("a UTC time formats")
}

/// The key of "remind now": one a day (in the event's offset), so pressing
/// it twice, or a retried request, reminds once.
pub fn remind_now_key(event: &Event, now: OffsetDateTime) -> String {
    let offset = event
        .starts_at_instant()
        .map_or(time::UtcOffset::UTC, |s| s.offset());
    format!("now-{}", now.to_offset(offset).date())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventInput;

    fn event(deadline: Option<&str>, reminders: serde_json::Value) -> Result<Event, FieldError> {
        EventInput {
            name: Some("Gala".into()),
            starts_at: Some("2027-05-01T17:00:00-03:00".into()),
            venue: Some("Hall".into()),
            host: Some("Ana".into()),
            rsvp_deadline: deadline.map(str::to_owned),
            reminders: Some(serde_json::from_value(reminders).unwrap()),
            ..Default::default()
        }
        .parse(EventId::parse("gala").unwrap(), "o", "now")
    }

    #[test]
    fn reminder_times_count_down_to_the_deadline_in_the_events_offset() {
        let e = event(
            Some("2027-04-28T23:59:00-03:00"),
            serde_json::json!([{"days_before": 1, "at": "10:00"}, {"days_before": 3, "at": "10:00"}]),
        )
        .unwrap();
        let at: Vec<String> = e
            .reminder_instants()
            .into_iter()
            .map(scheduled_key)
            .collect();
        assert_eq!(at, ["2027-04-25T13:00:00Z", "2027-04-27T13:00:00Z"]);
        // Without a deadline, to the start; one after it (0 days, 18:00) is dropped.
        let e = event(None, serde_json::json!([{"days_before": 0, "at": "18:00"}, {"days_before": 0, "at": "09:30"}])).unwrap();
        let at: Vec<String> = e
            .reminder_instants()
            .into_iter()
            .map(scheduled_key)
            .collect();
        assert_eq!(at, ["2027-05-01T12:30:00Z"]);
    }

    #[test]
    fn the_next_reminder_is_the_first_time_still_ahead() {
        let e = event(
            Some("2027-04-28T23:59:00-03:00"),
            serde_json::json!([{"days_before": 1, "at": "10:00"}, {"days_before": 3, "at": "10:00"}]),
        )
        .unwrap();
        let at = |t: &str| OffsetDateTime::parse(t, &Rfc3339).unwrap();
        let next = |now: &str| e.next_reminder_after(at(now)).map(scheduled_key);
        assert_eq!(
            next("2027-04-01T00:00:00Z").as_deref(),
            Some("2027-04-25T13:00:00Z")
        );
        assert_eq!(
            next("2027-04-25T13:00:00Z").as_deref(),
            Some("2027-04-27T13:00:00Z")
        );
        assert_eq!(next("2027-04-27T13:00:01Z"), None);
    }

    #[test]
    fn bad_plans_name_the_field() {
        let field =
            |deadline: Option<&str>, reminders| event(deadline, reminders).unwrap_err().field;
        assert_eq!(field(Some("soon"), serde_json::json!([])), "rsvp_deadline");
        assert_eq!(
            field(Some("2027-06-01T00:00:00Z"), serde_json::json!([])),
            "rsvp_deadline"
        );
        assert_eq!(
            field(
                None,
                serde_json::json!([{"days_before": 61, "at": "10:00"}])
            ),
            "reminders[0].days_before"
        );
        assert_eq!(
            field(None, serde_json::json!([{"days_before": 1}])),
            "reminders[0].at"
        );
        assert_eq!(
            field(None, serde_json::json!([{"days_before": 1, "at": "25:00"}])),
            "reminders[0].at"
        );
        assert_eq!(
            field(
                None,
                serde_json::json!([{"days_before": 1, "at": "10:00"}, {"days_before": 2, "at": "10:00"}, {"days_before": 3, "at": "10:00"}, {"days_before": 4, "at": "10:00"}, {"days_before": 5, "at": "10:00"}, {"days_before": 6, "at": "10:00"}])
            ),
            "reminders"
        );
    }

    #[test]
    fn a_reminder_time_is_one_job() {
        let e = EventId::parse("gala").unwrap();
        assert_eq!(reminder_job("o", &e, "k"), reminder_job("o", &e, "k"));
        assert_ne!(reminder_job("o", &e, "k"), reminder_job("p", &e, "k"));
        assert!(is_reminder(&reminder_job("o", &e, "k")));
    }
}
