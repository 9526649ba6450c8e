//! The store ports on [`DynamoStore`].

use super::items::{self, Item, Reader, current_template_item, job_from_partition, n, s};
use super::keys::{self, TTL_ATTRIBUTE};
use super::{BY_EVENT_INDEX, DynamoStore, UpdateExpression, applied, backend};
use crate::domain::{
    Event, EventId, Invitation, InvitationId, Job, JobId, MessageTemplate, OptOut, OptOuts,
    PhoneNumber, SeenOptOuts, Status, TemplateId,
};
use crate::ports::{
    Annotation, BudgetStore, BudgetTake, DeliveryStore, EventStore, IdempotencyClaim,
    IdempotencyStore, InvitationStore, JobStore, KeyClaim, ListQuery, OptOutStore, Page,
    StoreError, TemplateStore, Transition,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

/// Items a status-filtered listing reads per request.
const LISTING_READ: usize = 200;

#[async_trait]
impl EventStore for DynamoStore {
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
        self.get_as(keys::event(owner, id)).await
    }

    async fn list_events(&self, owner: &str) -> Result<Vec<Event>, StoreError> {
        self.query_index(keys::events_of(owner)).await
    }
}

#[async_trait]
impl JobStore for DynamoStore {
    async fn create_job(&self, job: &Job, invitations: &[Invitation]) -> Result<(), StoreError> {
        // The job is written last: a job that exists has all its invitations.
        self.write_all(invitations.iter().map(Item::from).collect())
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
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!("{} = :pk", keys::PK))
            .expression_attribute_values(":pk", s(keys::job_partition(id)))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        job_from_partition(&items)
    }
}

#[async_trait]
impl InvitationStore for DynamoStore {
    async fn get_invitation(&self, id: &InvitationId) -> Result<Option<Invitation>, StoreError> {
        self.get_as(keys::invitation(id)).await
    }

    async fn get_invitations(&self, ids: &[InvitationId]) -> Result<Vec<Invitation>, StoreError> {
        self.get_all(ids.iter().map(keys::invitation).collect())
            .await?
            .iter()
            .map(Invitation::try_from)
            .collect()
    }

    async fn transition(&self, t: &Transition) -> Result<bool, StoreError> {
        let mut update = UpdateExpression::default();
        update
            .set("#status = :to")
            .set("updated_at = :at")
            .set(format!("{} = :at", keys::timestamp_attribute(t.to)))
            .name("#status", "status")
            .value(":from", s(t.from.as_str()))
            .value(":to", s(t.to.as_str()))
            .value(":attempt", n(t.attempt))
            .value(":at", s(&t.at));
        if let Some(sid) = &t.message_sid {
            update.set("message_sid = :sid").value(":sid", s(sid));
        }
        if let Some(err) = &t.error {
            update
                .set("error_code = :ecode")
                .set("error_message = :emsg")
                .value(":ecode", s(&err.code))
                .value(":emsg", s(&err.message));
        }
        if t.new_attempt.is_some() || t.clear_flag {
            update.remove("flag");
        }
        if t.to.is_in_flight() {
            for (i, (name, value)) in keys::in_flight(&t.invitation_id, t.to, &t.at)
                .into_iter()
                .enumerate()
            {
                let placeholder = format!(":inflight{i}");
                update
                    .set(format!("{name} = {placeholder}"))
                    .value(&placeholder, value);
            }
        } else {
            update.remove(keys::GSI2PK).remove(keys::GSI2SK);
        }
        if let Some(next) = t.new_attempt {
            update
                .set("attempt = :next")
                .value(":next", n(next))
                .remove("message_sid");
            if t.error.is_none() {
                update.remove("error_code").remove("error_message");
            }
            // The new attempt's timeline starts over.
            for status in Status::ALL.into_iter().filter(|st| *st != t.to) {
                update.remove(keys::timestamp_attribute(status));
            }
        }
        let update = update.into_parts();
        let invitation_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::invitation(&t.invitation_id).item()))
            .update_expression(update.expression)
            .condition_expression("#status = :from AND attempt = :attempt")
            .set_expression_attribute_names(update.names)
            .set_expression_attribute_values(update.values)
            .build()
            .map_err(backend)?;
        let counters = if t.from == t.to {
            None
        } else {
            Some(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(
                        keys::job_counter(&t.job_id, &t.invitation_id, t.to).item(),
                    ))
                    .update_expression("ADD #from :minus, #to :plus")
                    .expression_attribute_names("#from", keys::count_attribute(t.from))
                    .expression_attribute_names("#to", keys::count_attribute(t.to))
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
        let mut update = UpdateExpression::default();
        if let Some(sid) = &note.message_sid {
            update
                .set("message_sid = if_not_exists(message_sid, :sid)")
                .value(":sid", s(sid));
        }
        if let Some((status, at)) = &note.late_timestamp {
            let attr = keys::timestamp_attribute(*status);
            update
                .set(format!("{attr} = if_not_exists({attr}, :late)"))
                .value(":late", s(at));
        }
        if let Some(flag) = &note.flag {
            update.set("flag = :flag").value(":flag", s(flag));
        }
        if let Some(at) = &note.touched_at {
            update
                .set("updated_at = :touched")
                .set(format!("{} = :touched_place", keys::GSI2SK))
                .value(":touched", s(at))
                .value(":touched_place", s(format!("{at}#{id}")));
        }
        if update.is_empty() {
            return Ok(true);
        }
        update.value(":attempt", n(attempt));
        let update = update.into_parts();
        applied(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(keys::invitation(id).item()))
                .update_expression(update.expression)
                .condition_expression("attempt = :attempt")
                .set_expression_attribute_values(update.values)
                .send()
                .await,
        )
    }

    async fn list_invitations(&self, q: &ListQuery) -> Result<Page, StoreError> {
        let partition = keys::invitations_of(&q.owner, &q.event_id);
        let mut start = q
            .cursor
            .as_deref()
            .map(|c| keys::decode_cursor(c, &partition))
            .transpose()?;
        let limit = q.limit as usize;
        // A status filter applies after DynamoDB's limit: read whole pages
        // and stop at the page's last wanted item, its key the cursor.
        let read = if q.status.is_some() {
            limit.max(LISTING_READ)
        } else {
            limit
        };
        let mut items = Vec::new();
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_EVENT_INDEX)
                .key_condition_expression(format!("{} = :pk", keys::GSI1PK))
                .expression_attribute_values(":pk", s(&partition))
                .limit(read as i32)
                .set_exclusive_start_key(start.take());
            if let Some(status) = q.status {
                req = req
                    .filter_expression("#status = :status")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":status", s(status.as_str()));
            }
            let out = req.send().await.map_err(backend)?;
            let found = out.items();
            for (i, item) in found.iter().enumerate() {
                items.push(Invitation::try_from(item)?);
                if items.len() == limit {
                    let more = i + 1 < found.len() || out.last_evaluated_key.is_some();
                    return Ok(Page {
                        items,
                        next_cursor: more.then(|| keys::cursor_after(item)),
                    });
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
        }
    }

    async fn in_flight_since(
        &self,
        status: Status,
        before: &str,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError> {
        let mut found = Vec::new();
        for shard in 0..keys::IN_FLIGHT_SHARDS {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(keys::IN_FLIGHT_INDEX)
                .key_condition_expression(format!(
                    "{} = :pk AND {} < :before",
                    keys::GSI2PK,
                    keys::GSI2SK
                ))
                .expression_attribute_values(":pk", s(keys::in_flight_partition(status, shard)))
                .expression_attribute_values(":before", s(before))
                .limit(limit as i32)
                .send()
                .await
                .map_err(backend)?;
            for item in out.items() {
                found.push(Invitation::try_from(item)?);
            }
        }
        found.sort_by(|a, b| a.updated_at.cmp(&b.updated_at));
        found.truncate(limit);
        Ok(found)
    }
}

impl DynamoStore {
    /// A large answer's parts, joined in order.
    async fn answer_parts(&self, owner: &str, key: &str, parts: u32) -> Result<String, StoreError> {
        let keys: Vec<_> = (0..parts)
            .map(|i| keys::idempotency_answer_part(owner, key, i))
            .collect();
        let mut found: Vec<(String, String)> = self
            .get_all(keys)
            .await?
            .iter()
            .map(|item| {
                let r = Reader(item);
                Ok((r.s(keys::SK)?, r.s("body")?))
            })
            .collect::<Result<_, StoreError>>()?;
        if found.len() != parts as usize {
            return Err(StoreError::Corrupt(format!(
                "an idempotency answer has {} of its {parts} parts",
                found.len()
            )));
        }
        found.sort();
        Ok(found.into_iter().map(|(_, body)| body).collect())
    }
}

/// `text` in pieces of at most `max` bytes, cut at character boundaries.
fn split_utf8(text: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (part, tail) = rest.split_at(end);
        parts.push(part);
        rest = tail;
    }
    parts
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn claim_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        claim: &KeyClaim,
    ) -> Result<IdempotencyClaim, StoreError> {
        let mut item = keys::idempotency(owner, key).item();
        item.insert("request_hash".into(), s(&claim.request_hash));
        item.insert("claim_token".into(), s(&claim.token));
        item.insert("lease_until".into(), n(claim.lease_until));
        item.insert(
            TTL_ATTRIBUTE.into(),
            n(claim.now + keys::IDEMPOTENCY_TTL_SECONDS),
        );
        let claimed = applied(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                // Free: never used, expired (TTL has not swept it yet), ours
                // already (the answer to our write was lost), or a claim of
                // this same request that died before it answered.
                .condition_expression(format!(
                    "attribute_not_exists({pk}) OR #ttl < :now OR claim_token = :token \
                     OR (request_hash = :hash AND attribute_not_exists(#response) \
                         AND attribute_not_exists(response_parts) AND lease_until < :now)",
                    pk = keys::PK
                ))
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_names("#response", "response")
                .expression_attribute_values(":now", n(claim.now))
                .expression_attribute_values(":token", s(&claim.token))
                .expression_attribute_values(":hash", s(&claim.request_hash))
                .send()
                .await,
        )?;
        if claimed {
            return Ok(IdempotencyClaim::New);
        }
        let existing = self
            .get(keys::idempotency(owner, key))
            .await?
            .unwrap_or_default();
        let r = Reader(&existing);
        let request_hash = r.opt_s("request_hash").unwrap_or_default();
        let response = match (r.opt_s("response"), r.opt_n::<u32>("response_parts")?) {
            (Some(response), _) => Some(response),
            (None, Some(parts)) => Some(self.answer_parts(owner, key, parts).await?),
            (None, None) => None,
        };
        Ok(match response {
            Some(response) => IdempotencyClaim::Done {
                request_hash,
                response,
            },
            None => IdempotencyClaim::InProgress { request_hash },
        })
    }

    async fn complete_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        response: &str,
    ) -> Result<(), StoreError> {
        let mut update = UpdateExpression::default();
        if response.len() <= keys::INLINE_ANSWER_BYTES {
            update
                .set("#response = :response")
                .name("#response", "response")
                .value(":response", s(response));
        } else {
            // Past DynamoDB's 400 KB item limit: the answer goes in parts.
            let parts = split_utf8(response, keys::INLINE_ANSWER_BYTES);
            let expires = Reader(
                &self
                    .get(keys::idempotency(owner, key))
                    .await?
                    .unwrap_or_default(),
            )
            .opt_n::<i64>(TTL_ATTRIBUTE)?
            .unwrap_or_else(|| {
                time::OffsetDateTime::now_utc().unix_timestamp() + keys::IDEMPOTENCY_TTL_SECONDS
            });
            let items = parts
                .iter()
                .enumerate()
                .map(|(i, part)| {
                    let mut item = keys::idempotency_answer_part(owner, key, i as u32).item();
                    item.insert("body".into(), s(*part));
                    item.insert(TTL_ATTRIBUTE.into(), n(expires));
                    item
                })
                .collect();
            self.write_all(items).await?;
            update
                .set("response_parts = :parts")
                .value(":parts", n(parts.len()));
        }
        let update = update.into_parts();
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::idempotency(owner, key).item()))
            .update_expression(update.expression)
            .set_expression_attribute_names(update.names)
            .set_expression_attribute_values(update.values)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn release_idempotency_key(&self, owner: &str, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(keys::idempotency(owner, key).item()))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl TemplateStore for DynamoStore {
    async fn put_template(
        &self,
        template: &MessageTemplate,
        replaces: Option<u32>,
    ) -> Result<bool, StoreError> {
        let absent = format!("attribute_not_exists({})", keys::PK);
        let version = Put::builder()
            .table_name(&self.table)
            .set_item(Some(template.into()))
            .condition_expression(&absent)
            .build()
            .map_err(backend)?;
        let current = Put::builder()
            .table_name(&self.table)
            .set_item(Some(current_template_item(template)));
        let current = match replaces {
            None => current.condition_expression(absent),
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
        self.get_as(keys::template(owner, id, version)).await
    }

    async fn list_templates(&self, owner: &str) -> Result<Vec<MessageTemplate>, StoreError> {
        self.query_index(keys::templates_of(owner)).await
    }
}

#[async_trait]
impl OptOutStore for DynamoStore {
    async fn put_opt_out(
        &self,
        record: &OptOut,
        if_unchanged_since: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut update = UpdateExpression::default();
        update
            .set("#type = :type")
            .set("phone = :phone")
            .set("opted_out = :opted_out")
            .set("#source = :source")
            .set("updated_at = :at")
            .name("#type", "type")
            .name("#source", "source")
            .name("#by", "by")
            .value(":type", s("opt_out"))
            .value(":phone", s(record.phone.as_str()))
            .value(":opted_out", AttributeValue::Bool(record.opted_out))
            .value(":source", s(record.source.as_str()))
            .value(":at", s(&record.updated_at));
        match &record.keyword {
            Some(keyword) => update
                .set("keyword = :keyword")
                .value(":keyword", s(keyword)),
            None => update.remove("keyword"),
        };
        match &record.by {
            Some(by) => update.set("#by = :by").value(":by", s(by)),
            None => update.remove("#by"),
        };
        let condition = match if_unchanged_since {
            None => None,
            Some("") => Some(format!("attribute_not_exists({})", keys::PK)),
            Some(previous) => {
                update.value(":previous", s(previous));
                Some("updated_at = :previous".to_owned())
            }
        };
        let update = update.into_parts();
        applied(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(keys::opt_out_of(record).item()))
                .update_expression(update.expression)
                .set_condition_expression(condition)
                .set_expression_attribute_names(update.names)
                .set_expression_attribute_values(update.values)
                .send()
                .await,
        )
    }

    async fn get_guests_opt_out(&self, phone: &PhoneNumber) -> Result<Option<OptOut>, StoreError> {
        self.get_as(keys::opt_out(phone)).await
    }

    async fn opt_out_view(
        &self,
        organizer: &str,
        phone: &PhoneNumber,
    ) -> Result<SeenOptOuts, StoreError> {
        let (guests, own, invited) = (
            keys::opt_out(phone),
            keys::organizers_opt_out(phone, organizer),
            keys::invited(phone, organizer),
        );
        let mut view = (None, None, false);
        for item in self
            .get_all(vec![guests.clone(), own.clone(), invited.clone()])
            .await?
        {
            let key = keys::Key::of(&item)?;
            if key == invited {
                view.2 = true;
            } else if key == guests {
                view.0 = Some(OptOut::try_from(&item)?);
            } else if key == own {
                view.1 = Some(OptOut::try_from(&item)?);
            }
        }
        Ok(SeenOptOuts::of(organizer, view.0, view.1, view.2))
    }

    async fn note_invited(
        &self,
        organizer: &str,
        phones: &[PhoneNumber],
    ) -> Result<(), StoreError> {
        // One item per WhatsApp user: BatchWriteItem refuses repeated keys.
        let mut wanted: Vec<_> = phones.iter().map(|p| keys::invited(p, organizer)).collect();
        wanted.sort_by(|a, b| a.partition.cmp(&b.partition));
        wanted.dedup();
        self.write_all(wanted.into_iter().map(items::invited).collect())
            .await
    }

    async fn opt_outs_for(&self, wanted: &[(String, PhoneNumber)]) -> Result<OptOuts, StoreError> {
        // One key each: BatchGetItem refuses repeated keys.
        let mut keys_wanted: Vec<_> = wanted
            .iter()
            .flat_map(|(owner, phone)| {
                [keys::opt_out(phone), keys::organizers_opt_out(phone, owner)]
            })
            .collect();
        keys_wanted.sort_by(|a, b| (&a.partition, &a.sort).cmp(&(&b.partition, &b.sort)));
        keys_wanted.dedup();
        let mut read = OptOuts::default();
        for item in &self.get_all(keys_wanted).await? {
            read.add(OptOut::try_from(item)?);
        }
        Ok(read)
    }
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn delivery_seen(&self, delivery: &str) -> Result<bool, StoreError> {
        Ok(self.get(keys::delivery(delivery)).await?.is_some())
    }

    async fn record_delivery(&self, delivery: &str) -> Result<(), StoreError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut item = keys::delivery(delivery).item();
        item.insert("type".into(), s("delivery"));
        item.insert(TTL_ATTRIBUTE.into(), n(now + keys::IDEMPOTENCY_TTL_SECONDS));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

impl DynamoStore {
    /// How many places of `sender`'s ring were ever taken.
    async fn budget_taken(&self, sender: &PhoneNumber) -> Result<u64, StoreError> {
        match self.get(keys::budget_cursor(sender)).await? {
            Some(item) => Reader(&item).n("taken"),
            None => Ok(0),
        }
    }
}

/// Tries of a budget take whose cursor another sender moved meanwhile.
const BUDGET_ATTEMPTS: u32 = 20;

#[async_trait]
impl BudgetStore for DynamoStore {
    async fn take_budget(
        &self,
        sender: &PhoneNumber,
        recipient: &PhoneNumber,
        limit: u32,
        window_seconds: i64,
        now: i64,
    ) -> Result<BudgetTake, StoreError> {
        let recipient_key = keys::budget_recipient(sender, recipient);
        let counted_until = |item: Option<Item>| -> Result<i64, StoreError> {
            Ok(item
                .as_ref()
                .map(|i| Reader(i).opt_n::<i64>("until"))
                .transpose()?
                .flatten()
                .unwrap_or(0))
        };
        for retry in 0..BUDGET_ATTEMPTS {
            if retry > 0 {
                tokio::time::sleep(super::backoff(retry.min(6))).await;
            }
            if counted_until(self.get(recipient_key.clone()).await?)? > now {
                return Ok(BudgetTake::AlreadyCounted);
            }
            let taken = self.budget_taken(sender).await?;
            let place = keys::budget_place(sender, (taken % u64::from(limit.max(1))) as u32);
            let until = now + window_seconds;
            let cursor = Update::builder()
                .table_name(&self.table)
                .set_key(Some(keys::budget_cursor(sender).item()))
                .update_expression("SET taken = :next")
                .condition_expression(format!(
                    "attribute_not_exists({pk}) OR taken = :taken",
                    pk = keys::PK
                ))
                .expression_attribute_values(":next", n(taken + 1))
                .expression_attribute_values(":taken", n(taken))
                .build()
                .map_err(backend)?;
            // The place taken longest ago: if it is still held, all are.
            let take_place = Update::builder()
                .table_name(&self.table)
                .set_key(Some(place.clone().item()))
                .update_expression("SET #until = :until")
                .condition_expression(format!(
                    "attribute_not_exists({pk}) OR #until <= :now",
                    pk = keys::PK
                ))
                .expression_attribute_names("#until", "until")
                .expression_attribute_values(":until", n(until))
                .expression_attribute_values(":now", n(now))
                .build()
                .map_err(backend)?;
            let count_recipient = Update::builder()
                .table_name(&self.table)
                .set_key(Some(recipient_key.clone().item()))
                .update_expression("SET #until = :until, #ttl = :expires")
                .condition_expression(format!(
                    "attribute_not_exists({pk}) OR #until <= :now",
                    pk = keys::PK
                ))
                .expression_attribute_names("#until", "until")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":until", n(until))
                .expression_attribute_values(":expires", n(until))
                .expression_attribute_values(":now", n(now))
                .build()
                .map_err(backend)?;
            let writes = [cursor, take_place, count_recipient]
                .into_iter()
                .map(|u| TransactWriteItem::builder().update(u).build())
                .collect();
            if self.transact(writes).await? {
                return Ok(BudgetTake::Counted);
            }
            // Which condition failed decides: counted meanwhile, the place
            // still held (the budget is spent), or the cursor moved (again).
            if counted_until(self.get(recipient_key.clone()).await?)? > now {
                return Ok(BudgetTake::AlreadyCounted);
            }
            if self.budget_taken(sender).await? != taken {
                continue;
            }
            let held_until = counted_until(self.get(place).await?)?;
            if held_until > now {
                return Ok(BudgetTake::Exhausted { until: held_until });
            }
        }
        Err(StoreError::Backend(
            "the daily budget's cursor kept moving; try again".into(),
        ))
    }
}
