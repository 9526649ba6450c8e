//! The store ports on [`DynamoStore`].

use super::items::{
    self, Item, Reader, StoredLedger, current_template_item, job_with_counters, ledger_item, n, s,
};
use super::keys::{self, Key, TTL_ATTRIBUTE};
use super::{DynamoStore, UpdateExpression, applied, backend};
use crate::domain::admission::{AdmissionChunk, Tally};
use crate::domain::budget::{self, BudgetRules, BudgetState};
use crate::domain::{
    Event, EventId, Invitation, InvitationId, Job, JobId, MessageTemplate, OptOut, OptOuts,
    PhoneNumber, SeenOptOuts, Status, TemplateId,
};
use crate::ports::{
    AdmissionStore, Annotation, BudgetClaim, BudgetStore, BudgetTake, ChunkMessage, DeliveryStore,
    EventStore, IdempotencyClaim, IdempotencyStore, InvitationStore, JobStore, KeyClaim, ListQuery,
    OptOutStore, Page, StoreError, TemplateStore, Transition,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// Items a status-filtered listing reads per request.
const LISTING_READ: usize = 200;

#[async_trait]
impl EventStore for DynamoStore {
    async fn put_event(&self, event: &Event) -> Result<(), StoreError> {
        // The event, and its reminder times still to come where scheduled
        // runs look for them (one that has passed is not sent late).
        let now = time::OffsetDateTime::now_utc();
        let mut items = vec![Item::from(event)];
        items.extend(
            event
                .reminder_instants()
                .into_iter()
                .filter(|at| *at > now)
                .map(|at| items::scheduled_reminder(&event.owner, &event.event_id, at)),
        );
        let puts = items
            .into_iter()
            .map(|item| {
                let put = aws_sdk_dynamodb::types::Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build()
                    .map_err(backend)?;
                Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .put(put)
                    .build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.transact(puts).await?;
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
        let (job, counters) = tokio::join!(
            self.get(keys::job(id)),
            self.get_all(keys::job_counters(id))
        );
        let Some(job) = job? else {
            return Ok(None);
        };
        job_with_counters(&job, &counters?).map(Some)
    }
}

#[async_trait]
impl AdmissionStore for DynamoStore {
    async fn put_admission(&self, job: &Job, chunks: &[AdmissionChunk]) -> Result<(), StoreError> {
        // The job goes last: a job that exists has all its chunks.
        self.write_all(chunks.iter().map(Item::from).collect())
            .await?;
        self.put_job(job).await
    }

    async fn get_chunk(
        &self,
        job: &JobId,
        number: u32,
    ) -> Result<Option<AdmissionChunk>, StoreError> {
        self.get_as(keys::admission_chunk(job, number)).await
    }

    async fn chunk_admitted(
        &self,
        chunk: &AdmissionChunk,
        tally: &Tally,
    ) -> Result<bool, StoreError> {
        // Done once: the chunk leaves the undone list as its tally joins the job.
        let done = Update::builder()
            .table_name(&self.table)
            .set_key(Some(
                keys::admission_chunk(&chunk.job_id, chunk.number).item(),
            ))
            .update_expression(format!(
                "SET done = :true REMOVE {}, {}",
                keys::GSI5PK,
                keys::GSI5SK
            ))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(done)")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .build()
            .map_err(backend)?;
        let mut add = vec![
            "#total :total".to_owned(),
            format!("{} :one", items::ADMIT_CHUNKS_DONE),
            format!("{} :left_out", items::ADMIT_LEFT_OUT),
        ];
        let mut values = HashMap::from([
            (":total".to_owned(), n(tally.total)),
            (":one".to_owned(), n(1)),
            (":left_out".to_owned(), n(tally.left_out)),
        ]);
        for (status, count) in &tally.counts {
            add.push(format!("{} :{status}", keys::count_attribute(*status)));
            values.insert(format!(":{status}"), n(count));
        }
        let job = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::job(&chunk.job_id).item()))
            .update_expression(format!("ADD {}", add.join(", ")))
            .condition_expression("attribute_exists(pk)")
            // `total` is one of DynamoDB's reserved words.
            .expression_attribute_names("#total", "total")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(backend)?;
        self.transact(vec![
            TransactWriteItem::builder().update(done).build(),
            TransactWriteItem::builder().update(job).build(),
        ])
        .await
    }

    async fn stalled_chunks(
        &self,
        before: &str,
        limit: usize,
    ) -> Result<Vec<ChunkMessage>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::EVENT_INVITATIONS_INDEX)
            .key_condition_expression(format!(
                "{} = :pk AND {} < :before",
                keys::GSI5PK,
                keys::GSI5SK
            ))
            .expression_attribute_values(":pk", s(keys::UNDONE_CHUNKS))
            .expression_attribute_values(":before", s(before))
            .limit(limit as i32)
            .send()
            .await
            .map_err(backend)?;
        // The index holds keys: the chunk's job and number are in its key.
        out.items()
            .iter()
            .map(|item| {
                let key = Key::of(item)?;
                let (job_id, chunk) = keys::chunk_of(&key).ok_or_else(|| {
                    StoreError::Corrupt(format!("not a chunk's key: {}", key.partition))
                })?;
                Ok(ChunkMessage { job_id, chunk })
            })
            .collect()
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
        // Its place among the event's changes (an invitation written before
        // the index has no partition there, and stays out of it).
        update
            .set(format!("{} = {}", keys::GSI3SK, keys::CHANGE_PLACE))
            .value(
                keys::CHANGE_PLACE,
                s(keys::change_place(
                    keys::Changed::Invitation,
                    t.invitation_id.as_str(),
                )),
            );
        match &t.due_at {
            Some(due) => update.set("due_at = :due").value(":due", s(due)),
            None => update.remove("due_at"),
        };
        if t.to.is_in_flight() {
            let since = t.due_at.as_deref().unwrap_or(&t.at);
            for (i, (name, value)) in keys::in_flight(&t.invitation_id, t.to, since)
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
        if let Some(renew) = &t.renew {
            let g = &renew.guest;
            update
                .set("#gname = :gname")
                .set("#gphone = :gphone")
                .set("#gtoken = :gtoken")
                .name("#gname", "name")
                .name("#gphone", "phone")
                .name("#gtoken", "rsvp_token")
                .value(":gname", s(&g.name))
                .value(":gphone", s(g.phone.as_str()))
                .value(":gtoken", s(g.rsvp_token.as_str()));
            // Found by the number it goes to now, as sent now.
            for (i, (name, value)) in keys::recipient(&g.phone, &t.at, &t.invitation_id)
                .into_iter()
                .enumerate()
            {
                let placeholder = format!(":recipient{i}");
                update
                    .set(format!("{name} = {placeholder}"))
                    .value(&placeholder, value);
            }
            if let Some(template) = &renew.template {
                update
                    .set("template_id = :tid")
                    .set("template_version = :tversion")
                    .value(":tid", s(template.template_id.as_str()))
                    .value(":tversion", n(template.version));
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
                    .set_key(Some(self.next_counter(&t.job_id).item()))
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
        if note.flag.is_some() || note.touched_at.is_some() {
            // What the guest's row shows changes: a change of the event.
            update
                .set(format!("{} = {}", keys::GSI3SK, keys::CHANGE_PLACE))
                .value(
                    keys::CHANGE_PLACE,
                    s(keys::change_place(keys::Changed::Invitation, id.as_str())),
                );
        }
        if update.is_empty() {
            return Ok(true);
        }
        update.value(":attempt", n(attempt));
        // Looked at by a run that started before the invitation last moved:
        // what it saw is out of date, and its time would put the row back.
        let condition = if note.touched_at.is_some() {
            "attempt = :attempt AND updated_at <= :touched"
        } else {
            "attempt = :attempt"
        };
        let update = update.into_parts();
        let place = update
            .values
            .as_ref()
            .and_then(|v| v.get(keys::CHANGE_PLACE)?.as_s().ok().cloned());
        let done = applied(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(keys::invitation(id).item()))
                .update_expression(update.expression)
                .condition_expression(condition)
                .set_expression_attribute_values(update.values)
                .send()
                .await,
        )?;
        if let (true, Some(place)) = (done, place) {
            self.announce_late(vec![(keys::invitation(id).item(), place)])
                .await;
        }
        Ok(done)
    }

    async fn list_invitations(&self, q: &ListQuery) -> Result<Page, StoreError> {
        let partition = keys::invitations_of(&q.owner, &q.event_id);
        let mut start = q
            .cursor
            .as_deref()
            .map(|c| keys::decode_cursor(c, &partition))
            .transpose()?;
        let limit = q.limit as usize;
        // A status filter applies to the invitations read: read whole
        // pages and stop at the page's last wanted one, its key the cursor.
        let read = if q.status.is_some() {
            limit.max(LISTING_READ)
        } else {
            limit
        };
        let mut items = Vec::new();
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(keys::EVENT_INVITATIONS_INDEX)
                .key_condition_expression(format!("{} = :pk", keys::GSI5PK))
                .expression_attribute_values(":pk", s(&partition))
                .limit(read as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            // The index holds keys: the page's invitations, read by key, in its order.
            let placed = out.items();
            let wanted = placed.iter().map(Key::of).collect::<Result<Vec<_>, _>>()?;
            let mut by_key = self
                .get_all(wanted.clone())
                .await?
                .into_iter()
                .map(|item| Ok((Key::of(&item)?, item)))
                .collect::<Result<HashMap<Key, Item>, StoreError>>()?;
            for (i, (place, key)) in placed.iter().zip(&wanted).enumerate() {
                let Some(item) = by_key.remove(key) else {
                    continue; // gone since the index was read
                };
                let invitation = Invitation::try_from(&item)?;
                if q.status.is_some_and(|st| st != invitation.status) {
                    continue;
                }
                items.push(invitation);
                if items.len() == limit {
                    let more = i + 1 < placed.len() || out.last_evaluated_key.is_some();
                    return Ok(Page {
                        items,
                        next_cursor: more.then(|| keys::cursor_after(place)),
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
        found.sort_by(|a, b| a.in_flight_since().cmp(b.in_flight_since()));
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

    async fn opt_out_views(
        &self,
        organizer: &str,
        phones: &[PhoneNumber],
    ) -> Result<Vec<SeenOptOuts>, StoreError> {
        // Three keys a number; one key once (BatchGetItem refuses repeats,
        // and two forms of one WhatsApp user share their keys).
        let wanted = |phone: &PhoneNumber| {
            [
                keys::opt_out(phone),
                keys::organizers_opt_out(phone, organizer),
                keys::invited(phone, organizer),
            ]
        };
        let mut all: Vec<Key> = phones.iter().flat_map(wanted).collect();
        all.sort_by(|a, b| (&a.partition, &a.sort).cmp(&(&b.partition, &b.sort)));
        all.dedup();
        let mut found: HashMap<Key, Item> = HashMap::new();
        for item in self.get_all(all).await? {
            found.insert(Key::of(&item)?, item);
        }
        phones
            .iter()
            .map(|phone| {
                let [guests, own, invited] = wanted(phone);
                let record = |key: &Key| found.get(key).map(OptOut::try_from).transpose();
                Ok(SeenOptOuts::of(
                    organizer,
                    record(&guests)?,
                    record(&own)?,
                    found.contains_key(&invited),
                ))
            })
            .collect()
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
    /// The job counter shard the next status change adds to: this store's
    /// next in turn.
    fn next_counter(&self, job: &JobId) -> Key {
        let shard = self
            .next_counter_shard
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        keys::job_counter_shard(job, shard % keys::COUNTER_SHARDS)
    }

    /// A strongly consistent query of the items of a partition whose sort
    /// key starts with `prefix`.
    pub(super) fn prefix_query(
        &self,
        partition: String,
        prefix: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!(
                "{} = :pk AND begins_with({}, :prefix)",
                keys::PK,
                keys::SK
            ))
            .expression_attribute_values(":pk", s(partition))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
    }
}

/// A batch take's bookkeeping: each claim's answer, in order. A WhatsApp
/// user twice in one batch is counted once.
struct Takes<'a> {
    claims: &'a [BudgetClaim],
    answers: Vec<Option<BudgetTake>>,
    /// For each claim, the earlier one that is the same WhatsApp user.
    same_as: Vec<Option<usize>>,
}

/// Claims one transaction counts at most (DynamoDB's limit is 100 items,
/// the budget's parts among them).
const CLAIMS_PER_TAKE: usize = 50;

impl<'a> Takes<'a> {
    fn new(claims: &'a [BudgetClaim]) -> Self {
        let identities: Vec<String> = claims
            .iter()
            .map(|c| c.recipient.whatsapp_identity())
            .collect();
        let same_as = identities
            .iter()
            .enumerate()
            .map(|(i, id)| identities[..i].iter().position(|earlier| earlier == id))
            .collect();
        Self {
            claims,
            answers: vec![None; claims.len()],
            same_as,
        }
    }

    /// Who is still to be counted, in order, at most a transaction's worth.
    fn pending(&self) -> Vec<usize> {
        (0..self.claims.len())
            .filter(|&i| self.answers[i].is_none() && self.same_as[i].is_none())
            .take(CLAIMS_PER_TAKE)
            .collect()
    }

    fn answer(&mut self, i: usize, take: BudgetTake) {
        self.answers[i] = Some(take);
    }

    /// Everyone not counted yet waits until `until`.
    fn exhaust_rest(mut self, until: i64) -> Vec<BudgetTake> {
        for (answer, same) in self.answers.iter_mut().zip(&self.same_as) {
            if same.is_none() {
                answer.get_or_insert(BudgetTake::Exhausted { until });
            }
        }
        self.answers()
    }

    fn answers(&self) -> Vec<BudgetTake> {
        (0..self.claims.len())
            .map(|i| match (self.answers[i], self.same_as[i]) {
                (Some(take), _) => take,
                // The same user as an earlier one: counted once, with it.
                (None, Some(first)) => match self.answers[first] {
                    Some(BudgetTake::Exhausted { until }) => BudgetTake::Exhausted { until },
                    _ => BudgetTake::AlreadyCounted,
                },
                (None, None) => BudgetTake::Exhausted { until: 0 },
            })
            .collect()
    }
}

/// Tries of a budget write another sender's write beat.
const BUDGET_ATTEMPTS: u32 = 20;

impl DynamoStore {
    /// Every part of a sender's budget, strongly consistent (one BatchGetItem).
    async fn read_budget(&self, sender: &str) -> Result<Vec<StoredLedger>, StoreError> {
        let wanted = (0..keys::BUDGET_PARTS)
            .map(|part| keys::budget_part(sender, part))
            .collect();
        let mut parts = vec![StoredLedger::default(); keys::BUDGET_PARTS];
        for item in &self.get_all(wanted).await? {
            let sort_key: String = Reader(item).s(keys::SK)?;
            if let Some(part) = keys::budget_part_number(&sort_key).filter(|p| *p < parts.len()) {
                parts[part] = StoredLedger::try_from(item)?;
            }
        }
        Ok(parts)
    }

    /// Writes a budget part if no one wrote it since it was read;
    /// `stored` takes the version written. (Updates, not puts: the
    /// functions that write the budget are granted UpdateItem.)
    fn write_part(
        &self,
        sender: &str,
        part: usize,
        stored: &mut StoredLedger,
    ) -> Result<TransactWriteItem, StoreError> {
        let version = stored.version.map_or(1, |v| v + 1);
        let item = ledger_item(keys::budget_part(sender, part), &stored.ledger, version);
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::budget_part(sender, part).item()));
        let mut sets = Vec::new();
        for (i, (name, value)) in item
            .into_iter()
            .filter(|(name, _)| name != keys::PK && name != keys::SK)
            .enumerate()
        {
            sets.push(format!("#a{i} = :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if stored.ledger.learned.is_none() {
            expression.push_str(" REMOVE learned_limit, learned_at");
        }
        update = update.update_expression(expression);
        update = match stored.version {
            Some(read) => update
                .condition_expression("#version = :read")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":read", n(read)),
            None => update.condition_expression(format!("attribute_not_exists({})", keys::PK)),
        };
        stored.version = Some(version);
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(backend)?)
            .build())
    }

    /// Gives the claim's recipient a place in `part` until `until`, unless
    /// the same holder holds one now (a redelivery).
    fn hold_recipient(
        &self,
        sender: &str,
        claim: &BudgetClaim,
        part: usize,
        until: i64,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(
                keys::budget_recipient(sender, &claim.recipient).item(),
            ))
            .update_expression("SET #until = :until, holder = :holder, part = :part, #ttl = :until")
            .condition_expression(format!(
                "attribute_not_exists({pk}) OR #until <= :now OR holder <> :holder",
                pk = keys::PK
            ))
            .expression_attribute_names("#until", "until")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":holder", s(&claim.holder))
            .expression_attribute_values(":part", n(part))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(backend)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Of `claims`, those whose holder holds its recipient's place at `now`.
    async fn holding(
        &self,
        sender: &str,
        claims: &[&BudgetClaim],
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        let wanted: Vec<Key> = claims
            .iter()
            .map(|c| keys::budget_recipient(sender, &c.recipient))
            .collect();
        let found = self.get_all(wanted.clone()).await?;
        wanted
            .iter()
            .zip(claims)
            .map(|(key, claim)| {
                let Some(item) = found
                    .iter()
                    .find(|item| Key::of(item).is_ok_and(|k| &k == key))
                else {
                    return Ok(false);
                };
                let r = Reader(item);
                Ok(r.n::<i64>("until")? > now && r.opt_s("holder").as_ref() == Some(&claim.holder))
            })
            .collect()
    }
}

#[async_trait]
impl BudgetStore for DynamoStore {
    async fn take_budgets(
        &self,
        sender: &str,
        claims: &[BudgetClaim],
        rules: &BudgetRules,
        now: i64,
    ) -> Result<Vec<BudgetTake>, StoreError> {
        let mut takes = Takes::new(claims);
        let parts_count = keys::BUDGET_PARTS;
        for retry in 0..BUDGET_ATTEMPTS {
            if retry > 1 {
                tokio::time::sleep(super::backoff(retry.min(6))).await;
            }
            let pending = takes.pending();
            if pending.is_empty() {
                return Ok(takes.answers());
            }
            let mut parts = self.read_budget(sender).await?;
            // Places from one part, the next batch's from the next: each
            // part's item is written by one batch in eight.
            let first = self.next_budget_part.fetch_add(1, Ordering::Relaxed) % parts_count;
            let mut assigned: Vec<(usize, usize)> = Vec::new();
            let mut touched = Vec::new();
            for step in 0..parts_count {
                let part = (first + step) % parts_count;
                let share = budget::share(rules.limit, part, parts_count);
                let ledger = &mut parts[part].ledger;
                ledger.prune(share, rules.window_seconds, now);
                let free = ledger.free(share, rules.window_seconds, now) as usize;
                let count = free.min(pending.len() - assigned.len());
                if count == 0 {
                    continue;
                }
                ledger.hold(rules.until, count as u32);
                touched.push(part);
                let start = assigned.len();
                assigned.extend(pending[start..start + count].iter().map(|&i| (i, part)));
                if assigned.len() == pending.len() {
                    break;
                }
            }
            if assigned.is_empty() {
                // Spent: but a redelivery whose holder holds a place goes on.
                let tried: Vec<&BudgetClaim> = pending.iter().map(|&i| &claims[i]).collect();
                let holding = self.holding(sender, &tried, now).await?;
                if holding.iter().any(|h| *h) {
                    for (&i, _) in pending.iter().zip(holding).filter(|(_, h)| *h) {
                        takes.answer(i, BudgetTake::AlreadyCounted);
                    }
                    continue;
                }
                let state = BudgetState {
                    parts: parts.into_iter().map(|p| p.ledger).collect(),
                };
                let until = state
                    .next_free_at(rules.limit, rules.window_seconds, now)
                    .unwrap_or(now + 1);
                return Ok(takes.exhaust_rest(until));
            }
            let mut writes = Vec::new();
            for &part in &touched {
                writes.push(self.write_part(sender, part, &mut parts[part])?);
            }
            for &(i, part) in &assigned {
                writes.push(self.hold_recipient(sender, &claims[i], part, rules.until, now)?);
            }
            if self.transact(writes).await? {
                for &(i, _) in &assigned {
                    takes.answer(i, BudgetTake::Counted);
                }
                continue;
            }
            // Another batch wrote a part meanwhile, or a claim's holder
            // holds its place already (a redelivery): those are counted.
            let tried: Vec<&BudgetClaim> = assigned.iter().map(|&(i, _)| &claims[i]).collect();
            let holding = self.holding(sender, &tried, now).await?;
            for (&(i, _), holds) in assigned.iter().zip(holding) {
                if holds {
                    takes.answer(i, BudgetTake::AlreadyCounted);
                }
            }
        }
        Err(StoreError::Backend(
            "the daily budget kept changing; try again".into(),
        ))
    }

    async fn release_budget(
        &self,
        sender: &str,
        claim: &BudgetClaim,
        now: i64,
    ) -> Result<bool, StoreError> {
        let recipient = keys::budget_recipient(sender, &claim.recipient);
        for retry in 0..BUDGET_ATTEMPTS {
            if retry > 0 {
                tokio::time::sleep(super::backoff(retry.min(6))).await;
            }
            let Some(item) = self.get(recipient.clone()).await? else {
                return Ok(false);
            };
            let r = Reader(&item);
            let until: i64 = r.n("until")?;
            let part: usize = r.opt_n("part")?.unwrap_or(0);
            if until <= now || r.opt_s("holder").as_ref() != Some(&claim.holder) {
                return Ok(false);
            }
            let mut stored = self
                .get_as::<StoredLedger>(keys::budget_part(sender, part))
                .await?
                .unwrap_or_default();
            let released = stored.ledger.release(until);
            // Ended, not deleted: the recipient's item expires through its TTL.
            let end = Update::builder()
                .table_name(&self.table)
                .set_key(Some(recipient.clone().item()))
                .update_expression("SET #until = :ended REMOVE holder")
                .condition_expression("holder = :holder AND #until = :until")
                .expression_attribute_names("#until", "until")
                .expression_attribute_values(":holder", s(&claim.holder))
                .expression_attribute_values(":until", n(until))
                .expression_attribute_values(":ended", n(0))
                .build()
                .map_err(backend)?;
            let mut writes = vec![TransactWriteItem::builder().update(end).build()];
            if released {
                writes.push(self.write_part(sender, part, &mut stored)?);
            }
            if self.transact(writes).await? {
                return Ok(released);
            }
        }
        Err(StoreError::Backend(
            "the daily budget kept changing; try again".into(),
        ))
    }

    async fn learn_budget(
        &self,
        sender: &str,
        limit: u32,
        window_seconds: i64,
        now: i64,
    ) -> Result<u32, StoreError> {
        for retry in 0..BUDGET_ATTEMPTS {
            if retry > 0 {
                tokio::time::sleep(super::backoff(retry.min(6))).await;
            }
            // Every part at once: what each holds now is its part of the
            // provider's limit.
            let mut parts = self.read_budget(sender).await?;
            let count = parts.len();
            let mut writes = Vec::new();
            for (part, stored) in parts.iter_mut().enumerate() {
                let share = budget::share(limit, part, count);
                stored.ledger.prune(share, window_seconds, now);
                stored.ledger.learn(share, window_seconds, now);
                writes.push(self.write_part(sender, part, stored)?);
            }
            if self.transact(writes).await? {
                return Ok(parts
                    .iter()
                    .enumerate()
                    .map(|(part, p)| {
                        p.ledger
                            .limit(budget::share(limit, part, count), window_seconds, now)
                    })
                    .sum());
            }
        }
        Err(StoreError::Backend(
            "the daily budget kept changing; try again".into(),
        ))
    }

    async fn budget_state(&self, sender: &str) -> Result<BudgetState, StoreError> {
        // A query of the partition: the functions that only show the budget
        // are granted Query, not BatchGetItem as its writers are.
        let items: Vec<Item> = self
            .prefix_query(keys::budget_partition(sender), "PART#")
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        let parts = items
            .iter()
            .map(|item| StoredLedger::try_from(item).map(|p| p.ledger))
            .collect::<Result<_, _>>()?;
        Ok(BudgetState { parts })
    }
}
