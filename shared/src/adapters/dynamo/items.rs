//! Explicit conversions between domain types and DynamoDB items.

use super::keys;
use crate::domain::admission::{AdmissionChunk, Admitting};
use crate::domain::budget::{Learned, Ledger};
use crate::domain::guest::ListedGuest;
use crate::domain::reminder::ReminderTime;
use crate::domain::rsvp::{Answer, AnswerVia, Confirmations, Reply, Rsvp};
use crate::domain::{
    Event, EventId, Guest, GuestId, Invitation, InvitationId, Job, JobId, MessageTemplate, OptOut,
    OptOutSource, PhoneNumber, RsvpToken, Status, TemplateCategory, TemplateId, TemplateRef,
};
use crate::ports::{DueReminder, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, HashMap};

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Typed reads from an item, with errors that say which attribute is wrong.
pub struct Reader<'a>(pub &'a Item);

impl Reader<'_> {
    pub fn opt_s(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(|v| v.as_s().ok()).cloned()
    }
    pub fn s(&self, name: &str) -> Result<String, StoreError> {
        self.opt_s(name)
            .ok_or_else(|| StoreError::Corrupt(format!("missing string attribute {name}")))
    }
    pub fn n<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.0
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("missing numeric attribute {name}")))
    }
    pub fn opt_n<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.0.get(name).map(|_| self.n(name)).transpose()
    }
    pub fn opt_parsed<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, StoreError> {
        self.0
            .get(name)
            .map(|_| self.parsed(name, parse))
            .transpose()
    }
    pub fn parsed<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        parse(&self.s(name)?).map_err(|e| StoreError::Corrupt(format!("attribute {name}: {e}")))
    }
}

impl From<&Event> for Item {
    fn from(e: &Event) -> Self {
        let mut item = keys::event(&e.owner, &e.event_id).item();
        item.extend(keys::event_in_index(&e.owner, &e.event_id).index_attributes());
        item.extend([
            ("type".into(), s("event")),
            ("event_id".into(), s(e.event_id.as_str())),
            ("name".into(), s(&e.name)),
            ("starts_at".into(), s(&e.starts_at)),
            ("venue".into(), s(&e.venue)),
            ("host".into(), s(&e.host)),
            ("owner".into(), s(&e.owner)),
            ("updated_at".into(), s(&e.updated_at)),
        ]);
        if let Some(template) = &e.default_template_id {
            item.insert("default_template_id".into(), s(template.as_str()));
        }
        if let Some(url) = &e.rsvp_base_url {
            item.insert("rsvp_base_url".into(), s(url));
        }
        if let Some(deadline) = &e.rsvp_deadline {
            item.insert("rsvp_deadline".into(), s(deadline));
        }
        if let Some(template) = &e.reminder_template_id {
            item.insert("reminder_template_id".into(), s(template.as_str()));
        }
        if !e.reminders.is_empty() {
            // "days:HH:MM" each, in order.
            let times = e
                .reminders
                .iter()
                .map(|r| {
                    s(format!(
                        "{}:{:02}:{:02}",
                        r.days_before,
                        r.at.hour(),
                        r.at.minute()
                    ))
                })
                .collect();
            item.insert("reminders".into(), AttributeValue::L(times));
        }
        let confirmations = Answer::ALL
            .into_iter()
            .map(|a| (a.as_str().to_owned(), s(e.confirmations.for_answer(a))))
            .collect();
        item.insert("confirmations".into(), AttributeValue::M(confirmations));
        item
    }
}

impl TryFrom<&Item> for Event {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let r = Reader(item);
        Ok(Event {
            event_id: r.parsed("event_id", EventId::parse)?,
            name: r.s("name")?,
            starts_at: r.s("starts_at")?,
            venue: r.s("venue")?,
            host: r.s("host")?,
            rsvp_base_url: r.opt_s("rsvp_base_url"),
            rsvp_deadline: r.opt_s("rsvp_deadline"),
            reminder_template_id: r.opt_parsed("reminder_template_id", TemplateId::parse)?,
            reminders: match item.get("reminders") {
                None => Vec::new(),
                Some(list) => list
                    .as_l()
                    .map_err(|_| StoreError::Corrupt("reminders is not a list".into()))?
                    .iter()
                    .map(|v| {
                        let text = v
                            .as_s()
                            .map_err(|_| StoreError::Corrupt("a reminder is not text".into()))?;
                        let parts: Vec<&str> = text.split(':').collect();
                        let bad = || StoreError::Corrupt(format!("reminder {text}"));
                        let [days, h, m] = parts.as_slice() else {
                            return Err(bad());
                        };
                        Ok(ReminderTime {
                            days_before: days.parse().map_err(|_| bad())?,
                            at: time::Time::from_hms(
                                h.parse().map_err(|_| bad())?,
                                m.parse().map_err(|_| bad())?,
                                0,
                            )
                            .map_err(|_| bad())?,
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
            default_template_id: r.opt_parsed("default_template_id", TemplateId::parse)?,
            // Events written before confirmations have the defaults.
            confirmations: {
                let text = |a: Answer| {
                    item.get("confirmations")
                        .and_then(|m| m.as_m().ok())
                        .and_then(|m| m.get(a.as_str()))
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                };
                let default = Confirmations::default();
                Confirmations {
                    yes: text(Answer::Yes).unwrap_or(default.yes),
                    no: text(Answer::No).unwrap_or(default.no),
                    maybe: text(Answer::Maybe).unwrap_or(default.maybe),
                }
            },
            owner: r.s("owner")?,
            updated_at: r.s("updated_at")?,
        })
    }
}

impl From<&Job> for Item {
    fn from(j: &Job) -> Self {
        let mut item = keys::job(&j.job_id).item();
        item.extend([
            ("type".into(), s("job")),
            ("job_id".into(), s(j.job_id.as_str())),
            ("event_id".into(), s(j.event_id.as_str())),
            ("owner".into(), s(&j.owner)),
            ("total".into(), n(j.total)),
            ("created_at".into(), s(&j.created_at)),
        ]);
        item.extend(
            Status::ALL
                .into_iter()
                .map(|st| (keys::count_attribute(st), n(j.count(st)))),
        );
        if let Some(a) = &j.admission {
            item.extend([
                (ADMIT_GUESTS.into(), n(a.guests)),
                (ADMIT_CHUNKS.into(), n(a.chunks)),
                (ADMIT_CHUNKS_DONE.into(), n(a.chunks_done)),
                (ADMIT_LEFT_OUT.into(), n(a.left_out)),
            ]);
        }
        item
    }
}

/// A large send's admission on its job item (absent for a small send's).
pub const ADMIT_GUESTS: &str = "admit_guests";
pub const ADMIT_CHUNKS: &str = "admit_chunks";
pub const ADMIT_CHUNKS_DONE: &str = "admit_chunks_done";
pub const ADMIT_LEFT_OUT: &str = "admit_left_out";

fn admission(r: &Reader<'_>) -> Result<Option<Admitting>, StoreError> {
    let Some(guests) = r.opt_n(ADMIT_GUESTS)? else {
        return Ok(None);
    };
    Ok(Some(Admitting {
        guests,
        chunks: r.n(ADMIT_CHUNKS)?,
        chunks_done: r.n(ADMIT_CHUNKS_DONE)?,
        left_out: r.n(ADMIT_LEFT_OUT)?,
    }))
}

/// A chunk of a large send's guests; listed among the undone chunks until
/// it is admitted.
impl From<&AdmissionChunk> for Item {
    fn from(c: &AdmissionChunk) -> Self {
        let mut item = keys::admission_chunk(&c.job_id, c.number).item();
        let guests = c
            .guests
            .iter()
            .map(|g| {
                AttributeValue::M(HashMap::from([
                    ("guest_id".into(), s(g.guest_id.as_str())),
                    ("name".into(), s(&g.name)),
                    ("phone".into(), s(g.phone.as_str())),
                    ("rsvp_token".into(), s(g.rsvp_token.as_str())),
                ]))
            })
            .collect();
        item.extend([
            ("type".into(), s("admission_chunk")),
            ("job_id".into(), s(c.job_id.as_str())),
            ("number".into(), n(c.number)),
            ("owner".into(), s(&c.owner)),
            ("event_id".into(), s(c.event_id.as_str())),
            ("template_id".into(), s(c.template.template_id.as_str())),
            ("template_version".into(), n(c.template.version)),
            ("resend".into(), AttributeValue::Bool(c.resend)),
            ("created_at".into(), s(&c.created_at)),
            ("guests".into(), AttributeValue::L(guests)),
        ]);
        if c.done {
            item.insert("done".into(), AttributeValue::Bool(true));
        } else {
            item.extend(keys::undone_chunk(&c.created_at, &c.job_id, c.number));
        }
        item
    }
}

impl TryFrom<&Item> for AdmissionChunk {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let r = Reader(item);
        let flag = |name: &str| item.get(name).and_then(|v| v.as_bool().ok()).copied();
        let guests = item
            .get("guests")
            .and_then(|v| v.as_l().ok())
            .ok_or_else(|| StoreError::Corrupt("missing list attribute guests".into()))?
            .iter()
            .map(|g| {
                let g = g
                    .as_m()
                    .map_err(|_| StoreError::Corrupt("a chunk's guest is not a map".into()))?;
                let r = Reader(g);
                Ok(Guest {
                    guest_id: r.parsed("guest_id", GuestId::parse)?,
                    name: r.s("name")?,
                    phone: r.parsed("phone", PhoneNumber::parse)?,
                    rsvp_token: r.parsed("rsvp_token", RsvpToken::parse)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(AdmissionChunk {
            job_id: r.parsed("job_id", JobId::parse)?,
            number: r.n("number")?,
            owner: r.s("owner")?,
            event_id: r.parsed("event_id", EventId::parse)?,
            template: TemplateRef {
                template_id: r.parsed("template_id", TemplateId::parse)?,
                version: r.n("template_version")?,
            },
            resend: flag("resend").unwrap_or(false),
            guests,
            created_at: r.s("created_at")?,
            done: flag("done").unwrap_or(false),
        })
    }
}

impl TryFrom<&Item> for Job {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let r = Reader(item);
        let counts = Status::ALL
            .into_iter()
            // A job written before a status existed counts none in it.
            .map(|st| Ok((st, r.opt_n(&keys::count_attribute(st))?.unwrap_or(0))))
            .collect::<Result<_, StoreError>>()?;
        Ok(Job {
            job_id: r.parsed("job_id", JobId::parse)?,
            event_id: r.parsed("event_id", EventId::parse)?,
            owner: r.s("owner")?,
            total: r.n("total")?,
            counts,
            created_at: r.s("created_at")?,
            admission: admission(&r)?,
        })
    }
}

/// A job from its item and counter shards: the job item holds the counts it was created
/// with, each counter shard the changes since (a shard holds only the
/// statuses its changes touched, and may be negative).
pub fn job_with_counters(job: &Item, counters: &[Item]) -> Result<Job, StoreError> {
    let mut job = Job::try_from(job)?;
    for shard in counters {
        let r = Reader(shard);
        for status in Status::ALL {
            if let Some(delta) = r.opt_n::<i64>(&keys::count_attribute(status))? {
                *job.counts.entry(status).or_insert(0) += delta;
            }
        }
    }
    Ok(job)
}

impl From<&Invitation> for Item {
    fn from(i: &Invitation) -> Self {
        let mut item = keys::invitation(&i.invitation_id).item();
        let created = i
            .timestamps
            .get(&Status::Queued)
            .cloned()
            .unwrap_or_else(|| i.updated_at.clone());
        item.extend(keys::invitation_in_event(
            &i.owner,
            &i.event_id,
            &created,
            &i.invitation_id,
        ));
        item.extend([
            ("type".into(), s("invitation")),
            ("invitation_id".into(), s(i.invitation_id.as_str())),
            ("event_id".into(), s(i.event_id.as_str())),
            ("job_id".into(), s(i.job_id.as_str())),
            ("owner".into(), s(&i.owner)),
            ("guest_id".into(), s(i.guest.guest_id.as_str())),
            ("name".into(), s(&i.guest.name)),
            ("phone".into(), s(i.guest.phone.as_str())),
            ("rsvp_token".into(), s(i.guest.rsvp_token.as_str())),
            ("status".into(), s(i.status.as_str())),
            ("attempt".into(), n(i.attempt)),
            ("updated_at".into(), s(&i.updated_at)),
        ]);
        if let Some(template) = &i.template {
            item.insert("template_id".into(), s(template.template_id.as_str()));
            item.insert("template_version".into(), n(template.version));
        }
        let optional = [
            ("message_sid", &i.message_sid),
            ("error_code", &i.error_code),
            ("error_message", &i.error_message),
            ("flag", &i.flag),
            ("due_at", &i.due_at),
        ];
        if !i.answer_secret.is_empty() {
            item.insert("answer_secret".into(), s(&i.answer_secret));
        }
        item.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), s(v)))),
        );
        item.extend(
            i.timestamps
                .iter()
                .map(|(st, at)| (keys::timestamp_attribute(*st), s(at))),
        );
        item.extend(keys::recipient(&i.guest.phone, &created, &i.invitation_id));
        if i.status.is_in_flight() {
            item.extend(keys::in_flight(
                &i.invitation_id,
                i.status,
                i.in_flight_since(),
            ));
        }
        item.extend(keys::change(
            &i.owner,
            &i.event_id,
            keys::Changed::Invitation,
            i.invitation_id.as_str(),
        ));
        item
    }
}

impl TryFrom<&Item> for Invitation {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let r = Reader(item);
        let timestamps = Status::ALL
            .into_iter()
            .filter_map(|st| r.opt_s(&keys::timestamp_attribute(st)).map(|at| (st, at)))
            .collect();
        Ok(Invitation {
            invitation_id: r.parsed("invitation_id", InvitationId::parse)?,
            event_id: r.parsed("event_id", EventId::parse)?,
            job_id: r.parsed("job_id", JobId::parse)?,
            owner: r.s("owner")?,
            guest: Guest {
                guest_id: r.parsed("guest_id", GuestId::parse)?,
                name: r.s("name")?,
                phone: r.parsed("phone", PhoneNumber::parse)?,
                rsvp_token: r.parsed("rsvp_token", RsvpToken::parse)?,
            },
            template: match r.opt_parsed("template_id", TemplateId::parse)? {
                Some(template_id) => Some(TemplateRef {
                    template_id,
                    // Written before versions: the first.
                    version: r.opt_n("template_version")?.unwrap_or(1),
                }),
                None => None,
            },
            status: r.parsed("status", str::parse::<Status>)?,
            attempt: r.n("attempt")?,
            message_sid: r.opt_s("message_sid"),
            error_code: r.opt_s("error_code"),
            error_message: r.opt_s("error_message"),
            flag: r.opt_s("flag"),
            updated_at: r.s("updated_at")?,
            due_at: r.opt_s("due_at"),
            timestamps,
            answer_secret: r.opt_s("answer_secret").unwrap_or_default(),
        })
    }
}

/// A template version as its own item; the current version is the same
/// item under the current key ([`current_template_item`]).
/// A guest's item in their event's partition, with their place among the
/// event's changes (stamped as the item is made).
pub fn guest_item(owner: &str, event: &EventId, listed: &ListedGuest) -> Item {
    let guest = &listed.guest;
    let mut item = keys::guest(owner, event, &guest.guest_id).item();
    item.extend(keys::change(
        owner,
        event,
        keys::Changed::Guest,
        guest.guest_id.as_str(),
    ));
    item.extend([
        ("type".into(), s("guest")),
        ("guest_id".into(), s(guest.guest_id.as_str())),
        ("name".into(), s(&guest.name)),
        ("phone".into(), s(guest.phone.as_str())),
        ("rsvp_token".into(), s(guest.rsvp_token.as_str())),
        ("created_at".into(), s(&listed.created_at)),
        ("updated_at".into(), s(&listed.updated_at)),
    ]);
    if let Some(id) = &listed.invitation_id {
        item.insert("invitation_id".into(), s(id.as_str()));
    }
    if let Some(rsvp) = &listed.rsvp {
        item.extend(rsvp_attributes(rsvp));
    }
    item
}

/// An answer's attributes, on its guest (the latest) and in its history item.
pub fn rsvp_attributes(rsvp: &Rsvp) -> [(String, AttributeValue); 4] {
    [
        (RSVP_ANSWER.into(), s(rsvp.answer.as_str())),
        ("rsvp_companions".into(), n(rsvp.companions)),
        ("rsvp_via".into(), s(rsvp.via.as_str())),
        (RSVP_AT.into(), s(&rsvp.at)),
    ]
}

/// The attribute a guest's answer is known by, and the one its time is.
pub const RSVP_ANSWER: &str = "rsvp_answer";
pub const RSVP_AT: &str = "rsvp_at";

/// The answer an item carries, if it has one.
pub fn read_rsvp(r: &Reader<'_>) -> Result<Option<Rsvp>, StoreError> {
    if r.opt_s(RSVP_ANSWER).is_none() {
        return Ok(None);
    }
    Ok(Some(Rsvp {
        answer: r.parsed(RSVP_ANSWER, str::parse::<Answer>)?,
        companions: r.opt_n("rsvp_companions")?.unwrap_or(0),
        via: r.parsed("rsvp_via", str::parse::<AnswerVia>)?,
        at: r.s(RSVP_AT)?,
    }))
}

impl TryFrom<&Item> for ListedGuest {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let r = Reader(item);
        Ok(ListedGuest {
            guest: Guest {
                guest_id: r.parsed("guest_id", GuestId::parse)?,
                name: r.s("name")?,
                phone: r.parsed("phone", PhoneNumber::parse)?,
                rsvp_token: r.parsed("rsvp_token", RsvpToken::parse)?,
            },
            created_at: r.s("created_at")?,
            updated_at: r.s("updated_at")?,
            invitation_id: r.opt_parsed("invitation_id", InvitationId::parse)?,
            rsvp: read_rsvp(&r)?,
        })
    }
}

impl From<&MessageTemplate> for Item {
    fn from(t: &MessageTemplate) -> Self {
        let mut item = keys::template(&t.owner, &t.template_id, Some(t.version)).item();
        item.extend([
            ("type".into(), s("template")),
            ("template_id".into(), s(t.template_id.as_str())),
            ("owner".into(), s(&t.owner)),
            ("version".into(), n(t.version)),
            ("name".into(), s(&t.name)),
            ("created_at".into(), s(&t.created_at)),
            ("updated_at".into(), s(&t.updated_at)),
        ]);
        if let Some(text) = &t.text {
            item.insert("text".into(), s(text));
        }
        if let Some(sid) = &t.content_sid {
            item.insert("content_sid".into(), s(sid));
        }
        if let Some(category) = t.category {
            item.insert("category".into(), s(category.as_str()));
        }
        if !t.content_variables.is_empty() {
            let map = t
                .content_variables
                .iter()
                .map(|(k, v)| (k.clone(), s(v)))
                .collect();
            item.insert("content_variables".into(), AttributeValue::M(map));
        }
        item
    }
}

/// The item naming a template's current version (listed by the index).
pub fn current_template_item(t: &MessageTemplate) -> Item {
    let mut item = Item::from(t);
    item.extend(keys::template(&t.owner, &t.template_id, None).item());
    item.extend(keys::template_in_index(&t.owner, &t.template_id).index_attributes());
    item
}

impl TryFrom<&Item> for MessageTemplate {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let r = Reader(item);
        let content_variables = match item.get("content_variables") {
            None => BTreeMap::new(),
            Some(value) => value
                .as_m()
                .map_err(|_| StoreError::Corrupt("content_variables is not a map".into()))?
                .iter()
                .map(|(k, v)| {
                    v.as_s().map(|v| (k.clone(), v.clone())).map_err(|_| {
                        StoreError::Corrupt(format!("content_variables.{k} is not a string"))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(MessageTemplate {
            template_id: r.parsed("template_id", TemplateId::parse)?,
            owner: r.s("owner")?,
            version: r.n("version")?,
            name: r.s("name")?,
            text: r.opt_s("text"),
            // Content templates written before categories are marketing,
            // as an invitation is.
            category: match (r.opt_s("category"), item.contains_key("content_sid")) {
                (Some(raw), _) => Some(TemplateCategory::parse(&raw).ok_or_else(|| {
                    StoreError::Corrupt(format!("unknown template category {raw}"))
                })?),
                (None, true) => Some(TemplateCategory::Marketing),
                (None, false) => None,
            },
            content_sid: r.opt_s("content_sid"),
            content_variables,
            created_at: r.s("created_at")?,
            updated_at: r.s("updated_at")?,
        })
    }
}

/// That an organizer invited a number: its key ([`keys::invited`]) says all.
pub fn invited(key: keys::Key) -> Item {
    let mut item = key.item();
    item.insert("type".into(), s("invited"));
    item
}

impl TryFrom<&Item> for OptOut {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let r = Reader(item);
        Ok(OptOut {
            phone: r.parsed("phone", PhoneNumber::parse)?,
            opted_out: item
                .get("opted_out")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .ok_or_else(|| StoreError::Corrupt("missing boolean attribute opted_out".into()))?,
            source: r.parsed("source", |v| {
                OptOutSource::parse(v).ok_or_else(|| format!("unknown source {v}"))
            })?,
            keyword: r.opt_s("keyword"),
            by: r.opt_s("by"),
            updated_at: r.s("updated_at")?,
        })
    }
}

/// One answer in its guest's history.
pub fn answer_item(owner: &str, event: &EventId, guest: &GuestId, rsvp: &Rsvp) -> Item {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let mut item = keys::answer(owner, event, guest, &rsvp.at, &unique[..8]).item();
    item.extend([
        ("type".into(), s("answer")),
        ("guest_id".into(), s(guest.as_str())),
    ]);
    item.extend(rsvp_attributes(rsvp));
    item
}

impl TryFrom<&Item> for Rsvp {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        read_rsvp(&Reader(item))?
            .ok_or_else(|| StoreError::Corrupt(format!("missing string attribute {RSVP_ANSWER}")))
    }
}

/// A guest's message kept for the organizer.
pub fn reply_item(owner: &str, event: &EventId, reply: &Reply) -> Item {
    let mut item = keys::reply(owner, event, &reply.message_sid).item();
    item.extend([
        ("type".into(), s("reply")),
        ("guest_id".into(), s(reply.guest_id.as_str())),
        ("text".into(), s(&reply.text)),
        ("at".into(), s(&reply.at)),
        ("message_sid".into(), s(&reply.message_sid)),
    ]);
    item
}

impl TryFrom<&Item> for Reply {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let r = Reader(item);
        Ok(Reply {
            guest_id: r.parsed("guest_id", GuestId::parse)?,
            text: r.s("text")?,
            at: r.s("at")?,
            message_sid: r.s("message_sid")?,
        })
    }
}

/// A reminder time where scheduled runs find it ([`keys::scheduled_reminder`]).
pub fn scheduled_reminder(owner: &str, event: &EventId, at: time::OffsetDateTime) -> Item {
    let at = crate::domain::reminder::scheduled_key(at);
    let mut item = keys::scheduled_reminder(owner, event, &at).item();
    item.extend([
        ("type".into(), s("reminder")),
        ("owner".into(), s(owner)),
        ("event_id".into(), s(event.as_str())),
        ("at".into(), s(&at)),
    ]);
    item
}

impl TryFrom<&Item> for DueReminder {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let r = Reader(item);
        Ok(DueReminder {
            owner: r.s("owner")?,
            event_id: r.parsed("event_id", EventId::parse)?,
            at: r.s("at")?,
        })
    }
}

/// A part of a sender's daily budget as stored, with the version its next
/// write is conditioned on (None: never written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredLedger {
    pub ledger: Ledger,
    pub version: Option<u64>,
}

/// A budget part's item ([`keys::budget_part`]): its holds as a map from
/// the epoch second they end to how many, what it learned, its version.
pub fn ledger_item(key: keys::Key, ledger: &Ledger, version: u64) -> Item {
    let holds = ledger
        .holds
        .iter()
        .map(|(until, count)| (until.to_string(), n(count)))
        .collect();
    let mut item = key.item();
    item.extend([
        ("type".into(), s("budget")),
        ("holds".into(), AttributeValue::M(holds)),
        ("version".into(), n(version)),
    ]);
    if let Some(learned) = ledger.learned {
        item.insert("learned_limit".into(), n(learned.limit));
        item.insert("learned_at".into(), n(learned.at));
    }
    item
}

impl TryFrom<&Item> for StoredLedger {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let r = Reader(item);
        let mut holds = BTreeMap::new();
        if let Some(map) = item.get("holds").and_then(|v| v.as_m().ok()) {
            for (until, count) in map {
                let until: i64 = until
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("budget hold end {until}")))?;
                let count: u32 = count
                    .as_n()
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt(format!("budget hold count at {until}")))?;
                holds.insert(until, count);
            }
        }
        let learned = match (r.opt_n("learned_limit")?, r.opt_n("learned_at")?) {
            (Some(limit), Some(at)) => Some(Learned { limit, at }),
            _ => None,
        };
        Ok(StoredLedger {
            ledger: Ledger { holds, learned },
            version: Some(r.n("version")?),
        })
    }
}
