//! The guest list on DynamoDB: an event's guests in its partition, each
//! guest's and invitation's last change in the by-change index, and the
//! send's admission: an invitation and its guest's pointer to it written in
//! one transaction, on the condition that the pointer is still the one read.

use super::items::{self, Item, s};
use super::keys::{self, BY_CHANGE_INDEX, Changed};
use super::{BATCH_PARALLELISM, DynamoStore, UpdateExpression, backend};
use crate::domain::guest::{ListedGuest, holds_the_guest};
use crate::domain::{EventId, Guest, GuestId, Invitation, InvitationId};
use crate::ports::{Admission, GuestChanges, GuestPage, GuestStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};

/// DynamoDB's limit of items in one transaction.
const TRANSACTION_ITEMS: usize = 100;

/// How far behind now a changes cursor starts: a change written by another
/// process a moment ago may reach the index after a later one. Changes
/// within it may be answered twice; none is missed unless the index lags more.
const CHANGES_LAG_MS: i128 = 1000;

/// Rounds of reading and writing while other sends change the same guests.
const ADMIT_ROUNDS: usize = 10;

/// How long a removed guest is remembered for pages following the event.
const REMOVED_KEPT_SECONDS: i64 = 24 * 3600;

fn now_ms() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
}

/// A guest's own attributes set (name, number, token unless `keep_token`),
/// with the change's time and place.
fn guest_update(
    owner: &str,
    event: &EventId,
    guest: &Guest,
    at: &str,
    keep_token: bool,
) -> UpdateExpression {
    let mut update = UpdateExpression::default();
    for (i, (name, value)) in items::guest_attributes(guest).into_iter().enumerate() {
        let (placeholder, value_placeholder) = (format!("#g{i}"), format!(":g{i}"));
        if name == "rsvp_token" && keep_token {
            // A send's snapshot keeps the token the list already has.
            update.set(format!(
                "{placeholder} = if_not_exists({placeholder}, {value_placeholder})"
            ));
        } else {
            update.set(format!("{placeholder} = {value_placeholder}"));
        }
        update
            .name(&placeholder, name)
            .value(&value_placeholder, value);
    }
    for (i, (name, value)) in
        keys::change(owner, event, at, Changed::Guest, guest.guest_id.as_str())
            .into_iter()
            .enumerate()
    {
        let placeholder = format!(":change{i}");
        update
            .set(format!("{name} = {placeholder}"))
            .value(&placeholder, value);
    }
    update
        .set("created_at = if_not_exists(created_at, :at)")
        .set("updated_at = :at")
        .value(":at", s(at));
    update
}

impl DynamoStore {
    fn guest_update_item(
        &self,
        key: keys::Key,
        update: UpdateExpression,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let parts = update.into_parts();
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .update_expression(parts.expression)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(parts.names)
            .set_expression_attribute_values(parts.values)
            .build()
            .map_err(backend)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Runs transactions at once, a few in flight; each answer in order.
    async fn transact_all(
        &self,
        transactions: Vec<Vec<TransactWriteItem>>,
    ) -> Vec<Result<bool, StoreError>> {
        let mut answers: Vec<(usize, Result<bool, StoreError>)> = futures::stream::iter(
            transactions
                .into_iter()
                .enumerate()
                .map(|(i, items)| async move { (i, self.transact(items).await) }),
        )
        .buffer_unordered(BATCH_PARALLELISM)
        .collect()
        .await;
        answers.sort_by_key(|(i, _)| *i);
        answers.into_iter().map(|(_, answer)| answer).collect()
    }

    /// The guests' latest invitations other than `own`, by id.
    async fn latest_of(
        &self,
        guests: &HashMap<GuestId, ListedGuest>,
        own: &HashSet<&InvitationId>,
    ) -> Result<HashMap<InvitationId, Invitation>, StoreError> {
        let wanted: Vec<keys::Key> = guests
            .values()
            .filter_map(|g| g.invitation_id.as_ref())
            .filter(|id| !own.contains(id))
            .collect::<HashSet<_>>()
            .into_iter()
            .map(keys::invitation)
            .collect();
        self.get_all(wanted)
            .await?
            .iter()
            .map(|item| Invitation::try_from(item).map(|i| (i.invitation_id.clone(), i)))
            .collect()
    }
}

#[async_trait]
impl GuestStore for DynamoStore {
    async fn get_guests(
        &self,
        owner: &str,
        event: &EventId,
        ids: &[GuestId],
    ) -> Result<Vec<ListedGuest>, StoreError> {
        let wanted: HashSet<&GuestId> = ids.iter().collect();
        let keys = wanted
            .into_iter()
            .map(|id| keys::guest(owner, event, id))
            .collect();
        self.get_all(keys)
            .await?
            .iter()
            .map(ListedGuest::try_from)
            .collect()
    }

    async fn guests_page(
        &self,
        owner: &str,
        event: &EventId,
        after: Option<&GuestId>,
        limit: usize,
    ) -> Result<GuestPage, StoreError> {
        let mut start = after.map(|id| keys::guest(owner, event, id).item());
        let mut items = Vec::with_capacity(limit);
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(format!(
                    "{} = :pk AND begins_with({}, :prefix)",
                    keys::PK,
                    keys::SK
                ))
                .expression_attribute_values(":pk", s(keys::guests_of(owner, event)))
                .expression_attribute_values(":prefix", s(keys::GUEST_PREFIX))
                .consistent_read(true)
                .limit((limit - items.len()) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            for item in out.items() {
                items.push(ListedGuest::try_from(item)?);
            }
            start = out.last_evaluated_key;
            if items.len() >= limit || start.is_none() {
                break;
            }
        }
        Ok(GuestPage {
            items,
            more: start.is_some(),
        })
    }

    async fn put_guests(
        &self,
        owner: &str,
        event: &EventId,
        guests: &[Guest],
        at: &str,
    ) -> Result<(), StoreError> {
        // Updates, not puts: a send may be pointing these guests at new
        // invitations meanwhile, and a put would lose that.
        let mut transactions = Vec::new();
        for chunk in guests.chunks(TRANSACTION_ITEMS) {
            let items = chunk
                .iter()
                .map(|g| {
                    let update = guest_update(owner, event, g, at, false);
                    self.guest_update_item(keys::guest(owner, event, &g.guest_id), update, None)
                })
                .collect::<Result<Vec<_>, _>>()?;
            transactions.push(items);
        }
        for answer in self.transact_all(transactions).await {
            if !answer? {
                return Err(StoreError::Backend(
                    "a guest write without a condition was refused".into(),
                ));
            }
        }
        Ok(())
    }

    async fn remove_guest(
        &self,
        owner: &str,
        event: &EventId,
        id: &GuestId,
        at: &str,
    ) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(keys::guest(owner, event, id).item()))
            .condition_expression(format!("attribute_exists({})", keys::PK))
            .build()
            .map_err(backend)?;
        let mut tombstone: Item = keys::removed_guest(owner, event, id).item();
        tombstone.extend(keys::change(owner, event, at, Changed::Guest, id.as_str()));
        let expires = time::OffsetDateTime::now_utc().unix_timestamp() + REMOVED_KEPT_SECONDS;
        tombstone.extend([
            ("type".to_owned(), s("removed")),
            ("guest_id".to_owned(), s(id.as_str())),
            (keys::TTL_ATTRIBUTE.to_owned(), items::n(expires)),
        ]);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(tombstone))
            .build()
            .map_err(backend)?;
        self.transact(vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().put(put).build(),
        ])
        .await
    }

    async fn guest_changes(
        &self,
        owner: &str,
        event: &EventId,
        since: Option<&str>,
        limit: usize,
    ) -> Result<GuestChanges, StoreError> {
        let after = since.map(keys::place_from_changes_cursor).transpose()?;
        // Read before the query: whatever is written from here on is
        // after the next cursor.
        let lagging = format!("{:013}", (now_ms() - CHANGES_LAG_MS).max(0));
        let mut start = None;
        let mut last_place = None;
        let (mut changed, mut removed) = (Vec::new(), Vec::new());
        let (mut seen_changed, mut seen_removed) = (HashSet::new(), HashSet::new());
        let mut read = 0;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_CHANGE_INDEX)
                .expression_attribute_values(":pk", s(keys::changes_of(owner, event)))
                .limit((limit - read).max(1) as i32)
                .set_exclusive_start_key(start.take());
            query = match &after {
                Some(place) => query
                    .key_condition_expression(format!(
                        "{} = :pk AND {} > :after",
                        keys::GSI3PK,
                        keys::GSI3SK
                    ))
                    .expression_attribute_values(":after", s(place)),
                None => query.key_condition_expression(format!("{} = :pk", keys::GSI3PK)),
            };
            let out = query.send().await.map_err(backend)?;
            for item in out.items() {
                read += 1;
                let r = items::Reader(item);
                last_place = Some(r.s(keys::GSI3SK)?);
                let guest = r.parsed("guest_id", GuestId::parse)?;
                if r.opt_s("type").as_deref() == Some("removed") {
                    if seen_removed.insert(guest.clone()) {
                        removed.push(guest);
                    }
                } else if seen_changed.insert(guest.clone()) {
                    changed.push(guest);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() || read >= limit {
                break;
            }
        }
        let more = start.is_some();
        let cursor = match (more, last_place, after) {
            // Truncated: the next read starts right after the last change given.
            (true, Some(place), _) => place,
            (_, _, Some(after)) if after > lagging => after,
            _ => lagging,
        };
        Ok(GuestChanges {
            changed,
            removed,
            cursor: keys::changes_cursor(&cursor),
            more,
        })
    }

    fn changes_from_now(&self) -> String {
        keys::changes_cursor(&format!("{:013}", (now_ms() - CHANGES_LAG_MS).max(0)))
    }

    async fn admit(
        &self,
        invitations: &[Invitation],
        resend: bool,
    ) -> Result<Vec<Admission>, StoreError> {
        let Some(first) = invitations.first() else {
            return Ok(Vec::new());
        };
        let (owner, event) = (first.owner.as_str(), &first.event_id);
        let own: HashSet<&InvitationId> = invitations.iter().map(|i| &i.invitation_id).collect();
        let mut answers: Vec<Option<Admission>> = vec![None; invitations.len()];
        let mut pending: Vec<usize> = (0..invitations.len()).collect();
        for _ in 0..ADMIT_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let ids: Vec<GuestId> = pending
                .iter()
                .map(|i| invitations[*i].guest.guest_id.clone())
                .collect();
            let guests: HashMap<GuestId, ListedGuest> = self
                .get_guests(owner, event, &ids)
                .await?
                .into_iter()
                .map(|g| (g.guest.guest_id.clone(), g))
                .collect();
            let latest = self.latest_of(&guests, &own).await?;
            // Each guest to write, with the pointer its write expects.
            let mut writes: Vec<(usize, Option<InvitationId>)> = Vec::new();
            for &i in &pending {
                let inv = &invitations[i];
                let seen = guests
                    .get(&inv.guest.guest_id)
                    .and_then(|g| g.invitation_id.clone());
                let holding = seen
                    .as_ref()
                    .filter(|id| **id != inv.invitation_id)
                    .and_then(|id| latest.get(id))
                    .filter(|held| holds_the_guest(held.status));
                match holding {
                    Some(held) if !resend => {
                        answers[i] = Some(Admission::AlreadyInvited(Box::new(held.clone())));
                    }
                    _ => writes.push((i, seen)),
                }
            }
            let chunks: Vec<Vec<(usize, Option<InvitationId>)>> = writes
                .chunks(TRANSACTION_ITEMS / 2)
                .map(<[_]>::to_vec)
                .collect();
            let mut transactions = Vec::with_capacity(chunks.len());
            for chunk in &chunks {
                let mut items = Vec::with_capacity(chunk.len() * 2);
                for (i, seen) in chunk {
                    let inv = &invitations[*i];
                    let mut update = guest_update(owner, event, &inv.guest, &inv.updated_at, true);
                    update
                        .set("invitation_id = :own")
                        .value(":own", s(inv.invitation_id.as_str()));
                    let mut condition =
                        "attribute_not_exists(invitation_id) OR invitation_id = :own".to_owned();
                    if let Some(seen) = seen {
                        condition.push_str(" OR invitation_id = :seen");
                        update.value(":seen", s(seen.as_str()));
                    }
                    let key = keys::guest(owner, event, &inv.guest.guest_id);
                    items.push(self.guest_update_item(key, update, Some(&condition))?);
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(Item::from(inv)))
                        .build()
                        .map_err(backend)?;
                    items.push(TransactWriteItem::builder().put(put).build());
                }
                transactions.push(items);
            }
            pending = Vec::new();
            for (chunk, answer) in chunks.iter().zip(self.transact_all(transactions).await) {
                if answer? {
                    for (i, _) in chunk {
                        answers[*i] = Some(Admission::Admitted);
                    }
                } else {
                    // Another send changed one of these guests meanwhile:
                    // read them again and decide again.
                    pending.extend(chunk.iter().map(|(i, _)| *i));
                }
            }
        }
        if !pending.is_empty() {
            return Err(StoreError::Backend(format!(
                "{} guests kept changing under other sends; try again",
                pending.len()
            )));
        }
        Ok(answers
            .into_iter()
            .map(|a| a.expect("every guest answered"))
            .collect())
    }
}
