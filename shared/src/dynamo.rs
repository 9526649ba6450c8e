//! The [`Store`] on one DynamoDB table (layout in [`crate::schema`]).
//!
//! | item       | pk              | sk    | by-event index                |
//! |------------|-----------------|-------|-------------------------------|
//! | event      | `EVENT#{owner}#{id}` | EVENT | `OWNER#{owner}` / `EVENT#{id}` |
//! | job        | `JOB#{id}`      | JOB   |                               |
//! | invitation | `INV#{id}`      | INV   | `EVENT#{owner}#{event}` / `{created}#{id}` |
//! | template (current) | `TEMPLATE#{owner}#{id}` | CURRENT | `TEMPLATES#{owner}` / `{id}` |
//! | template version   | `TEMPLATE#{owner}#{id}` | `V#{version:06}` |     |
//! | opt-out    | `OPTOUT#{phone}` | OPTOUT |                              |

use crate::domain::{
    Event, EventId, Guest, GuestId, Invitation, InvitationId, Job, JobId, MessageTemplate, OptOut,
    OptOutSource, PhoneNumber, RsvpToken, Status, TemplateId, TemplateRef,
};
use crate::ports::{Annotation, IdempotencyClaim, ListQuery, Page, Store, StoreError, Transition};
use crate::schema::{BY_EVENT_INDEX, TABLE, TTL_ATTRIBUTE};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's BatchWriteItem limit.
const BATCH_WRITE_SIZE: usize = 25;
/// DynamoDB's BatchGetItem limit.
const BATCH_GET_SIZE: usize = 100;
/// Batch writes in flight at once per request.
const WRITE_PARALLELISM: usize = 8;
const MAX_UNPROCESSED_RETRIES: u32 = 8;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn backend<E: std::error::Error + 'static>(err: E) -> StoreError {
    StoreError::Backend(DisplayErrorContext(err).to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn ts_attr(status: Status) -> String {
    format!("ts_{status}")
}

fn count_attr(status: Status) -> String {
    format!("n_{status}")
}

fn key_item(pk: String, sk: &str) -> Item {
    HashMap::from([
        (TABLE.partition_key.to_owned(), s(pk)),
        (TABLE.sort_key.to_owned(), s(sk)),
    ])
}

fn event_key(owner: &str, id: &EventId) -> Item {
    key_item(event_partition(owner, id), "EVENT")
}
fn event_partition(owner: &str, id: &EventId) -> String {
    format!("EVENT#{owner}#{id}")
}
fn job_key(id: &JobId) -> Item {
    key_item(format!("JOB#{id}"), "JOB")
}
fn invitation_key(id: &InvitationId) -> Item {
    key_item(format!("INV#{id}"), "INV")
}
fn template_partition(owner: &str, id: &TemplateId) -> String {
    format!("TEMPLATE#{owner}#{id}")
}
const TEMPLATE_CURRENT: &str = "CURRENT";
fn template_version_sort(version: u32) -> String {
    format!("V#{version:06}")
}
fn opt_out_key(phone: &PhoneNumber) -> Item {
    key_item(format!("OPTOUT#{}", phone.as_str()), "OPTOUT")
}

/// Typed reads from an item, with errors that say which attribute is wrong.
struct Reader<'a>(&'a Item);

impl Reader<'_> {
    fn opt_s(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(|v| v.as_s().ok()).cloned()
    }
    fn s(&self, name: &str) -> Result<String, StoreError> {
        self.opt_s(name)
            .ok_or_else(|| StoreError::Corrupt(format!("missing string attribute {name}")))
    }
    fn n<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.0
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("missing numeric attribute {name}")))
    }
    fn opt_n<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.0.get(name).map(|_| self.n(name)).transpose()
    }
    fn opt_parsed<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, StoreError> {
        self.0
            .get(name)
            .map(|_| self.parsed(name, parse))
            .transpose()
    }
    fn parsed<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        parse(&self.s(name)?).map_err(|e| StoreError::Corrupt(format!("attribute {name}: {e}")))
    }
}

impl From<&Event> for Item {
    fn from(e: &Event) -> Self {
        let mut item = event_key(&e.owner, &e.event_id);
        item.extend([
            ("type".into(), s("event")),
            ("gsi1pk".into(), s(format!("OWNER#{}", e.owner))),
            ("gsi1sk".into(), s(format!("EVENT#{}", e.event_id))),
            ("event_id".into(), s(e.event_id.as_str())),
            ("name".into(), s(&e.name)),
            ("starts_at".into(), s(&e.starts_at)),
            ("venue".into(), s(&e.venue)),
            ("host".into(), s(&e.host)),
            ("rsvp_base_url".into(), s(&e.rsvp_base_url)),
            ("owner".into(), s(&e.owner)),
            ("updated_at".into(), s(&e.updated_at)),
        ]);
        if let Some(template) = &e.default_template_id {
            item.insert("default_template_id".into(), s(template.as_str()));
        }
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
            rsvp_base_url: r.s("rsvp_base_url")?,
            default_template_id: r.opt_parsed("default_template_id", TemplateId::parse)?,
            owner: r.s("owner")?,
            updated_at: r.s("updated_at")?,
        })
    }
}

impl From<&Job> for Item {
    fn from(j: &Job) -> Self {
        let mut item = job_key(&j.job_id);
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
                .map(|st| (count_attr(st), n(j.count(st)))),
        );
        item
    }
}

impl TryFrom<&Item> for Job {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let r = Reader(item);
        let counts = Status::ALL
            .into_iter()
            .map(|st| Ok((st, r.n(&count_attr(st))?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(Job {
            job_id: r.parsed("job_id", JobId::parse)?,
            event_id: r.parsed("event_id", EventId::parse)?,
            owner: r.s("owner")?,
            total: r.n("total")?,
            counts,
            created_at: r.s("created_at")?,
        })
    }
}

impl From<&Invitation> for Item {
    fn from(i: &Invitation) -> Self {
        let mut item = invitation_key(&i.invitation_id);
        let created = i
            .timestamps
            .get(&Status::Queued)
            .cloned()
            .unwrap_or_else(|| i.updated_at.clone());
        item.extend([
            ("type".into(), s("invitation")),
            ("gsi1pk".into(), s(event_partition(&i.owner, &i.event_id))),
            ("gsi1sk".into(), s(format!("{created}#{}", i.invitation_id))),
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
        ];
        item.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), s(v)))),
        );
        item.extend(i.timestamps.iter().map(|(st, at)| (ts_attr(*st), s(at))));
        item
    }
}

impl TryFrom<&Item> for Invitation {
    type Error = StoreError;
    fn try_from(item: &Item) -> Result<Self, StoreError> {
        let r = Reader(item);
        let timestamps = Status::ALL
            .into_iter()
            .filter_map(|st| r.opt_s(&ts_attr(st)).map(|at| (st, at)))
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
            timestamps,
        })
    }
}

/// A template version as its own item (`V#{version}`); the current
/// version is the same item under [`current_template_item`]'s key.
impl From<&MessageTemplate> for Item {
    fn from(t: &MessageTemplate) -> Self {
        let mut item = key_item(
            template_partition(&t.owner, &t.template_id),
            &template_version_sort(t.version),
        );
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
fn current_template_item(t: &MessageTemplate) -> Item {
    let mut item = Item::from(t);
    item.insert(TABLE.sort_key.into(), s(TEMPLATE_CURRENT));
    item.insert("gsi1pk".into(), s(format!("TEMPLATES#{}", t.owner)));
    item.insert("gsi1sk".into(), s(t.template_id.as_str()));
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
            content_sid: r.opt_s("content_sid"),
            content_variables,
            created_at: r.s("created_at")?,
            updated_at: r.s("updated_at")?,
        })
    }
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

/// Whether a transaction was refused because one of its conditions failed.
fn condition_failed(err: &TransactWriteItemsError) -> bool {
    matches!(err, TransactWriteItemsError::TransactionCanceledException(cancelled)
        if cancelled
            .cancellation_reasons()
            .iter()
            .any(|r| r.code() == Some("ConditionalCheckFailed")))
}

/// Wait before resubmitting items DynamoDB left unprocessed (throttling):
/// 50 ms doubling to 1.6 s.
fn unprocessed_backoff(retry: u32) -> Duration {
    Duration::from_millis(25 << retry.min(6))
}

impl DynamoStore {
    /// Runs a transaction; Ok(false) when one of its conditions failed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) => {
                let service = err.into_service_error();
                if condition_failed(&service) {
                    Ok(false)
                } else {
                    Err(backend(service))
                }
            }
        }
    }

    async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.item)
    }

    /// Every item under one partition of the by-event index.
    async fn query_index(&self, partition: String) -> Result<Vec<Item>, StoreError> {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(BY_EVENT_INDEX)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(partition))
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|item| item.map_err(backend))
            .collect()
    }

    /// One BatchWriteItem of at most 25, resubmitting unprocessed items with
    /// exponential backoff (DynamoDB returns them under throttling).
    async fn write_batch(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let mut pending: Vec<WriteRequest> = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(backend)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, StoreError>>()?;
        for retry in 0..=MAX_UNPROCESSED_RETRIES {
            if retry > 0 {
                tokio::time::sleep(unprocessed_backoff(retry)).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(backend)?;
            pending = out
                .unprocessed_items
                .and_then(|mut m| m.remove(&self.table))
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(StoreError::Backend(format!(
            "{} items still unprocessed after retries",
            pending.len()
        )))
    }
}

impl DynamoStore {
    /// One BatchGetItem of at most 100 keys (strongly consistent),
    /// resubmitting unprocessed keys with backoff.
    async fn get_batch(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(backend)?,
        );
        for retry in 0..=MAX_UNPROCESSED_RETRIES {
            let Some(request) = pending.take().filter(|r| !r.keys().is_empty()) else {
                return Ok(found);
            };
            if retry > 0 {
                tokio::time::sleep(unprocessed_backoff(retry)).await;
            }
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(backend)?;
            found.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table));
        }
        match pending {
            Some(p) if !p.keys().is_empty() => Err(StoreError::Backend(format!(
                "{} keys still unprocessed after retries",
                p.keys().len()
            ))),
            _ => Ok(found),
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn put_event(&self, event: &Event) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(event.into()))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get_event(&self, owner: &str, id: &EventId) -> Result<Option<Event>, StoreError> {
        self.get(event_key(owner, id))
            .await?
            .as_ref()
            .map(Event::try_from)
            .transpose()
    }

    async fn list_events(&self, owner: &str) -> Result<Vec<Event>, StoreError> {
        let items = self.query_index(format!("OWNER#{owner}")).await?;
        items.iter().map(Event::try_from).collect()
    }

    async fn create_job(&self, job: &Job, invitations: &[Invitation]) -> Result<(), StoreError> {
        // The job is written last: a job that exists has all its invitations.
        let items: Vec<Item> = invitations.iter().map(Item::from).collect();
        let batches: Vec<Vec<Item>> = items
            .chunks(BATCH_WRITE_SIZE)
            .map(<[Item]>::to_vec)
            .collect();
        let writes: Vec<_> = batches
            .into_iter()
            .map(|batch| self.write_batch(batch))
            .collect();
        futures::stream::iter(writes)
            .buffer_unordered(WRITE_PARALLELISM)
            .try_collect::<Vec<()>>()
            .await?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job.into()))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        self.get(job_key(id))
            .await?
            .as_ref()
            .map(Job::try_from)
            .transpose()
    }

    async fn get_invitation(&self, id: &InvitationId) -> Result<Option<Invitation>, StoreError> {
        self.get(invitation_key(id))
            .await?
            .as_ref()
            .map(Invitation::try_from)
            .transpose()
    }

    async fn transition(&self, t: &Transition) -> Result<bool, StoreError> {
        let mut values = HashMap::from([
            (":from".to_owned(), s(t.from.as_str())),
            (":to".to_owned(), s(t.to.as_str())),
            (":attempt".to_owned(), n(t.attempt)),
            (":at".to_owned(), s(&t.at)),
        ]);
        let mut set = vec![
            "#status = :to".to_owned(),
            "updated_at = :at".to_owned(),
            format!("{} = :at", ts_attr(t.to)),
        ];
        let mut remove = Vec::new();
        if let Some(sid) = &t.message_sid {
            set.push("message_sid = :sid".into());
            values.insert(":sid".into(), s(sid));
        }
        if let Some(err) = &t.error {
            set.push("error_code = :ecode".into());
            set.push("error_message = :emsg".into());
            values.insert(":ecode".into(), s(&err.code));
            values.insert(":emsg".into(), s(&err.message));
        }
        if let Some(next) = t.new_attempt {
            set.push("attempt = :next".into());
            values.insert(":next".into(), n(next));
            remove.extend(["message_sid", "flag"].map(String::from));
            if t.error.is_none() {
                remove.extend(["error_code", "error_message"].map(String::from));
            }
            // The new attempt's timeline starts over.
            remove.extend(
                Status::ALL
                    .into_iter()
                    .filter(|st| *st != t.to)
                    .map(ts_attr),
            );
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let invitation_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(invitation_key(&t.invitation_id)))
            .update_expression(expression)
            .condition_expression("#status = :from AND attempt = :attempt")
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(backend)?;
        let counters = if t.from == t.to {
            None
        } else {
            Some(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(job_key(&t.job_id)))
                    .update_expression("ADD #from :minus, #to :plus")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_names("#from", count_attr(t.from))
                    .expression_attribute_names("#to", count_attr(t.to))
                    .expression_attribute_values(":minus", n(-1))
                    .expression_attribute_values(":plus", n(1))
                    .build()
                    .map_err(backend)?,
            )
        };
        let items = std::iter::once(invitation_update)
            .chain(counters)
            .map(|u| TransactWriteItem::builder().update(u).build())
            .collect();
        self.transact(items).await
    }

    async fn annotate(
        &self,
        id: &InvitationId,
        attempt: u32,
        note: &Annotation,
    ) -> Result<bool, StoreError> {
        let mut set = Vec::new();
        let mut values = HashMap::from([(":attempt".to_owned(), n(attempt))]);
        if let Some(sid) = &note.message_sid {
            set.push("message_sid = if_not_exists(message_sid, :sid)".to_owned());
            values.insert(":sid".into(), s(sid));
        }
        if let Some((status, at)) = &note.late_timestamp {
            let attr = ts_attr(*status);
            set.push(format!("{attr} = if_not_exists({attr}, :late)"));
            values.insert(":late".into(), s(at));
        }
        if let Some(flag) = &note.flag {
            set.push("flag = :flag".into());
            values.insert(":flag".into(), s(flag));
        }
        if set.is_empty() {
            return Ok(true);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(invitation_key(id)))
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression("attempt = :attempt")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => {
                let service = err.into_service_error();
                if service.is_conditional_check_failed_exception() {
                    Ok(false)
                } else {
                    Err(backend(service))
                }
            }
        }
    }

    async fn claim_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        request_hash: &str,
    ) -> Result<IdempotencyClaim, StoreError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut item = idempotency_key(owner, key);
        item.insert("request_hash".into(), s(request_hash));
        item.insert(TTL_ATTRIBUTE.into(), n(now + IDEMPOTENCY_TTL_SECONDS));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // An expired key that TTL has not swept yet counts as free.
            .condition_expression("attribute_not_exists(pk) OR #ttl < :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match put {
            Ok(_) => Ok(IdempotencyClaim::New),
            Err(err) => {
                let service = err.into_service_error();
                if !service.is_conditional_check_failed_exception() {
                    return Err(backend(service));
                }
                let existing = self
                    .get(idempotency_key(owner, key))
                    .await?
                    .unwrap_or_default();
                let r = Reader(&existing);
                let request_hash = r.opt_s("request_hash").unwrap_or_default();
                Ok(match r.opt_s("response") {
                    Some(response) => IdempotencyClaim::Done {
                        request_hash,
                        response,
                    },
                    None => IdempotencyClaim::InProgress { request_hash },
                })
            }
        }
    }

    async fn complete_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        response: &str,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_key(owner, key)))
            .update_expression("SET #response = :response")
            .expression_attribute_names("#response", "response")
            .expression_attribute_values(":response", s(response))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn release_idempotency_key(&self, owner: &str, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_key(owner, key)))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn put_template(
        &self,
        template: &MessageTemplate,
        replaces: Option<u32>,
    ) -> Result<bool, StoreError> {
        let version = Put::builder()
            .table_name(&self.table)
            .set_item(Some(template.into()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(backend)?;
        let current = Put::builder()
            .table_name(&self.table)
            .set_item(Some(current_template_item(template)));
        let current = match replaces {
            None => current.condition_expression("attribute_not_exists(pk)"),
            Some(previous) => current
                .condition_expression("version = :previous")
                .expression_attribute_values(":previous", n(previous)),
        }
        .build()
        .map_err(backend)?;
        let items = [version, current]
            .into_iter()
            .map(|put| TransactWriteItem::builder().put(put).build())
            .collect();
        self.transact(items).await
    }

    async fn get_template(
        &self,
        owner: &str,
        id: &TemplateId,
        version: Option<u32>,
    ) -> Result<Option<MessageTemplate>, StoreError> {
        let sort = version.map_or_else(|| TEMPLATE_CURRENT.to_owned(), template_version_sort);
        self.get(key_item(template_partition(owner, id), &sort))
            .await?
            .as_ref()
            .map(MessageTemplate::try_from)
            .transpose()
    }

    async fn list_templates(&self, owner: &str) -> Result<Vec<MessageTemplate>, StoreError> {
        let items = self.query_index(format!("TEMPLATES#{owner}")).await?;
        items.iter().map(MessageTemplate::try_from).collect()
    }

    async fn put_opt_out(
        &self,
        record: &OptOut,
        if_unchanged_since: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut values = HashMap::from([
            (":type".to_owned(), s("opt_out")),
            (":phone".to_owned(), s(record.phone.as_str())),
            (
                ":opted_out".to_owned(),
                AttributeValue::Bool(record.opted_out),
            ),
            (":source".to_owned(), s(record.source.as_str())),
            (":at".to_owned(), s(&record.updated_at)),
        ]);
        let mut set = vec![
            "#type = :type",
            "phone = :phone",
            "opted_out = :opted_out",
            "#source = :source",
            "updated_at = :at",
        ];
        let mut remove = Vec::new();
        match &record.keyword {
            Some(keyword) => {
                set.push("keyword = :keyword");
                values.insert(":keyword".into(), s(keyword));
            }
            None => remove.push("keyword"),
        }
        match &record.by {
            Some(by) => {
                set.push("#by = :by");
                values.insert(":by".into(), s(by));
            }
            None => remove.push("#by"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(opt_out_key(&record.phone)))
            .update_expression(expression)
            .expression_attribute_names("#type", "type")
            .expression_attribute_names("#source", "source")
            .expression_attribute_names("#by", "by");
        match if_unchanged_since {
            None => {}
            Some("") => request = request.condition_expression("attribute_not_exists(pk)"),
            Some(previous) => {
                request = request.condition_expression("updated_at = :previous");
                values.insert(":previous".into(), s(previous));
            }
        }
        match request
            .set_expression_attribute_values(Some(values))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) => {
                let service = err.into_service_error();
                if service.is_conditional_check_failed_exception() {
                    Ok(false)
                } else {
                    Err(backend(service))
                }
            }
        }
    }

    async fn get_opt_out(&self, phone: &PhoneNumber) -> Result<Option<OptOut>, StoreError> {
        self.get(opt_out_key(phone))
            .await?
            .as_ref()
            .map(OptOut::try_from)
            .transpose()
    }

    async fn opted_out_among(&self, phones: &[PhoneNumber]) -> Result<HashSet<String>, StoreError> {
        let chunks: Vec<Vec<Item>> = phones
            .chunks(BATCH_GET_SIZE)
            .map(|chunk| chunk.iter().map(opt_out_key).collect())
            .collect();
        let found: Vec<Vec<Item>> =
            futures::stream::iter(chunks.into_iter().map(|keys| self.get_batch(keys)))
                .buffer_unordered(WRITE_PARALLELISM)
                .try_collect()
                .await?;
        let mut opted_out = HashSet::new();
        for item in found.iter().flatten() {
            let record = OptOut::try_from(item)?;
            if record.opted_out {
                opted_out.insert(record.phone.as_str().to_owned());
            }
        }
        Ok(opted_out)
    }

    async fn list_invitations(&self, q: &ListQuery) -> Result<Page, StoreError> {
        let mut start = q.cursor.as_deref().map(decode_cursor).transpose()?;
        let mut items = Vec::new();
        // A status filter applies after DynamoDB's limit, so keep reading
        // until the page is full or the index is exhausted.
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_EVENT_INDEX)
                .key_condition_expression("gsi1pk = :pk")
                .expression_attribute_values(":pk", s(event_partition(&q.owner, &q.event_id)))
                .limit((q.limit as usize - items.len()) as i32)
                .set_exclusive_start_key(start.take());
            if let Some(status) = q.status {
                req = req
                    .filter_expression("#status = :status")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":status", s(status.as_str()));
            }
            let out = req.send().await.map_err(backend)?;
            for item in out.items() {
                items.push(Invitation::try_from(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() || items.len() >= q.limit as usize {
                break;
            }
        }
        Ok(Page {
            items,
            next_cursor: start.map(|k| encode_cursor(&k)),
        })
    }
}

fn idempotency_key(owner: &str, key: &str) -> Item {
    key_item(format!("IDEM#{owner}#{key}"), "IDEM")
}

/// How long an idempotency key is remembered (DynamoDB's TTL removes it).
const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 3600;

/// Cursors are the index's last key, opaque to clients.
fn encode_cursor(key: &Item) -> String {
    let plain: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str())))
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&plain).expect("strings serialize"))
}

fn decode_cursor(cursor: &str) -> Result<Item, StoreError> {
    let bad = || StoreError::BadCursor;
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let plain: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let expected = [TABLE.partition_key, TABLE.sort_key, "gsi1pk", "gsi1sk"];
    if plain.len() != expected.len() || !expected.iter().all(|k| plain.contains_key(*k)) {
        return Err(bad());
    }
    Ok(plain.into_iter().map(|(k, v)| (k, s(v))).collect())
}

/// Creates the table as [`TABLE`] defines it (the local stack's bootstrap).
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let key_schema = |pk: &str, sk: &str| -> Result<Vec<KeySchemaElement>, StoreError> {
        Ok(vec![
            KeySchemaElement::builder()
                .attribute_name(pk)
                .key_type(KeyType::Hash)
                .build()
                .map_err(backend)?,
            KeySchemaElement::builder()
                .attribute_name(sk)
                .key_type(KeyType::Range)
                .build()
                .map_err(backend)?,
        ])
    };
    let mut attributes = vec![TABLE.partition_key, TABLE.sort_key];
    let mut indexes = Vec::new();
    for index in TABLE.indexes {
        attributes.extend([index.partition_key, index.sort_key]);
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(index.partition_key, index.sort_key)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(backend)?,
        );
    }
    let definitions = attributes
        .into_iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(a)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(backend)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(TABLE.partition_key, TABLE.sort_key)?))
        .set_attribute_definitions(Some(definitions))
        .set_global_secondary_indexes(Some(indexes))
        .send()
        .await;
    if let Err(err) = created {
        let service = err.into_service_error();
        if !service.is_resource_in_use_exception() {
            return Err(backend(service));
        }
    }
    let ttl = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .map_err(backend)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(backend)?;
    Ok(())
}
