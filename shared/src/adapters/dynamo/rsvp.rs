//! Guests' answers on DynamoDB: the latest on the guest's item (so the
//! guest list and its changes carry it), each one also in the guest's
//! history, both in one transaction whose condition turns a repeat of the
//! latest answer away; the messages that were not answers; and the
//! invitations sent to one WhatsApp user, by the by-recipient index.

use super::items::{self, Item, s};
use super::keys::{self, BY_RECIPIENT_INDEX};
use super::{DynamoStore, backend};
use crate::domain::rsvp::{Reply, Rsvp, RsvpHistory};
use crate::domain::{EventId, GuestId, Invitation, InvitationId, PhoneNumber};
use crate::ports::{
    AttemptStore, DueReminder, InvitationStore, Recorded, ReminderStore, RsvpStore, StoreError,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

#[async_trait]
impl RsvpStore for DynamoStore {
    async fn record_rsvp(
        &self,
        owner: &str,
        event: &EventId,
        guest: &GuestId,
        rsvp: &Rsvp,
    ) -> Result<Recorded, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::guest(owner, event, guest).item()))
            .update_expression(format!(
                "SET {answer} = :a, rsvp_companions = :c, rsvp_via = :v, {at} = :t, {place} = {value}",
                answer = items::RSVP_ANSWER,
                at = items::RSVP_AT,
                place = keys::GSI3SK,
                value = keys::CHANGE_PLACE,
            ))
            // A guest on the list whose latest answer says something else.
            .condition_expression(format!(
                "attribute_exists({pk}) AND (attribute_not_exists({answer}) OR {answer} <> :a OR rsvp_companions <> :c)",
                pk = keys::PK,
                answer = items::RSVP_ANSWER,
            ))
            .expression_attribute_values(
                keys::CHANGE_PLACE,
                s(keys::change_place(keys::Changed::Guest, guest.as_str())),
            );
        for (name, value) in items::rsvp_attributes(rsvp) {
            let placeholder = match name.as_str() {
                items::RSVP_ANSWER => ":a",
                items::RSVP_AT => ":t",
                "rsvp_via" => ":v",
                _ => ":c",
            };
            update = update.expression_attribute_values(placeholder, value);
        }
        let history = Put::builder()
            .table_name(&self.table)
            .set_item(Some(items::answer_item(owner, event, guest, rsvp)))
            .condition_expression(format!("attribute_not_exists({})", keys::PK))
            .build()
            .map_err(backend)?;
        let written = self
            .transact(vec![
                TransactWriteItem::builder()
                    .update(update.build().map_err(backend)?)
                    .build(),
                TransactWriteItem::builder().put(history).build(),
            ])
            .await?;
        if written {
            return Ok(Recorded::Recorded);
        }
        // Which condition failed: the guest is gone, or already says so.
        match self.get(keys::guest(owner, event, guest)).await? {
            None => Ok(Recorded::NoSuchGuest),
            Some(_) => Ok(Recorded::Repeated),
        }
    }

    async fn rsvp_history(
        &self,
        owner: &str,
        event: &EventId,
        guest: &GuestId,
    ) -> Result<RsvpHistory, StoreError> {
        let found = self
            .query_prefix(keys::guests_of(owner, event), keys::answers_prefix(guest))
            .await?;
        let answers = found
            .iter()
            .map(Rsvp::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RsvpHistory::new(answers))
    }

    async fn keep_reply(
        &self,
        owner: &str,
        event: &EventId,
        reply: &Reply,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::reply_item(owner, event, reply)))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn replies(
        &self,
        owner: &str,
        event: &EventId,
        limit: usize,
    ) -> Result<Vec<Reply>, StoreError> {
        let found = self
            .query_prefix(keys::guests_of(owner, event), keys::REPLY_PREFIX.to_owned())
            .await?;
        let mut replies = found
            .iter()
            .map(Reply::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        replies.sort_by(|a, b| b.at.cmp(&a.at));
        replies.truncate(limit);
        Ok(replies)
    }

    async fn invitations_to(
        &self,
        phone: &PhoneNumber,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_RECIPIENT_INDEX)
            .key_condition_expression(format!("{} = :pk", keys::GSI4PK))
            .expression_attribute_values(":pk", s(keys::recipient_of(phone)))
            .scan_index_forward(false)
            .limit(limit as i32)
            .send()
            .await
            .map_err(backend)?;
        let ids = out
            .items()
            .iter()
            .map(|item| items::Reader(item).parsed("invitation_id", InvitationId::parse))
            .collect::<Result<Vec<_>, _>>()?;
        let mut found = self.get_invitations(&ids).await?;
        // Newest first, as the index answered.
        found.sort_by_key(|i| ids.iter().position(|id| *id == i.invitation_id));
        Ok(found)
    }
}

#[async_trait]
impl ReminderStore for DynamoStore {
    async fn due_reminders(&self, since: &str, now: &str) -> Result<Vec<DueReminder>, StoreError> {
        let (Some(from), Some(to)) = (
            crate::domain::parse_timestamp(since),
            crate::domain::parse_timestamp(now),
        ) else {
            return Err(StoreError::Corrupt(format!("not times: {since}, {now}")));
        };
        let mut due = Vec::new();
        let mut day = from.date();
        while day <= to.date() {
            let partition = keys::reminders_on(&day.to_string());
            // Sort keys start with the time: '~' sorts after its '#'.
            for item in self
                .query_between(partition, format!("{since}~"), format!("{now}~"))
                .await?
            {
                due.push(DueReminder::try_from(&item)?);
            }
            day = day.next_day().unwrap_or(day);
            if day == time::Date::MAX {
                break;
            }
        }
        Ok(due)
    }

    async fn reminder_done(&self, due: &DueReminder) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(
                keys::scheduled_reminder(&due.owner, &due.event_id, &due.at).item(),
            ))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl AttemptStore for DynamoStore {
    async fn failed_attempts(&self, client: &str, window: i64) -> Result<u32, StoreError> {
        match self.get(keys::attempts(client, window)).await? {
            None => Ok(0),
            Some(item) => items::Reader(&item).n("tries"),
        }
    }

    async fn add_failed_attempt(
        &self,
        client: &str,
        window: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::attempts(client, window).item()))
            .update_expression(format!(
                "ADD tries :one SET {} = :expires",
                keys::TTL_ATTRIBUTE
            ))
            .expression_attribute_values(":one", items::n(1))
            .expression_attribute_values(":expires", items::n(expires_at))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

impl DynamoStore {
    /// Every item of a partition whose sort key is between `from` and `to`.
    async fn query_between(
        &self,
        partition: String,
        from: String,
        to: String,
    ) -> Result<Vec<Item>, StoreError> {
        let items: Vec<_> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!(
                "{} = :pk AND {} BETWEEN :from AND :to",
                keys::PK,
                keys::SK
            ))
            .expression_attribute_values(":pk", s(partition))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        items.into_iter().map(|i| i.map_err(backend)).collect()
    }

    /// Every item of a partition whose sort key starts with `prefix`.
    async fn query_prefix(
        &self,
        partition: String,
        prefix: String,
    ) -> Result<Vec<Item>, StoreError> {
        let items: Vec<_> = self
            .prefix_query(partition, &prefix)
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        items.into_iter().map(|i| i.map_err(backend)).collect()
    }
}
