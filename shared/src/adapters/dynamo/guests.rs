//! The guest list on DynamoDB: an event's guests in its partition, each
//! guest's and invitation's last change in the by-change index, and the
//! send's admission: an invitation and its guest's pointer to it written in
//! one transaction, on the condition that the pointer is still the one read.

use super::items::{self, Item, s};
use super::keys::{self, BY_CHANGE_INDEX, CHANGES_SETTLE_MS, Changed, GSI3PK, GSI3SK, now_ms};
use super::{BATCH_PARALLELISM, DynamoStore, backend};
use crate::domain::guest::{ListedGuest, holds};
use crate::domain::{EventId, Guest, GuestId, Invitation, InvitationId};
use crate::ports::{Admission, GuestChanges, GuestPage, GuestStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};

/// DynamoDB's limit of items in one transaction.
const TRANSACTION_ITEMS: usize = 100;

/// The place before which every change has landed and reached the index.
fn settled_before() -> String {
    format!("{:013}", (now_ms() - CHANGES_SETTLE_MS).max(0))
}

/// Rounds of reading and writing while other sends change the same guests.
const ADMIT_ROUNDS: usize = 10;

/// How long a removed guest is remembered for pages following the event.
const REMOVED_KEPT_SECONDS: i64 = 24 * 3600;

/// What a guest's write expects of the item it replaces: that no send moved
/// the guest's invitation pointer since it was read.
enum Expect<'a> {
    /// No item (a new guest).
    Absent,
    /// The item, pointing nowhere yet.
    NoInvitation,
    /// Pointing at one of these (a send also accepts its own, written
    /// by an earlier try).
    PointingAt(Vec<&'a InvitationId>),
}

impl Expect<'_> {
    fn of(found: Option<&ListedGuest>) -> Expect<'_> {
        match found {
            None => Expect::Absent,
            Some(g) => match &g.invitation_id {
                None => Expect::NoInvitation,
                Some(id) => Expect::PointingAt(vec![id]),
            },
        }
    }
}

impl DynamoStore {
    /// Puts a guest's whole item, on the condition `expect`, and that the
    /// guest's answer is still the one read (`listed.rsvp`, which the item
    /// keeps): an answer recorded meanwhile is never overwritten.
    fn guest_put(
        &self,
        owner: &str,
        event: &EventId,
        listed: &ListedGuest,
        expect: &Expect<'_>,
        unchanged_since: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(items::guest_item(owner, event, listed)));
        let mut answer = match &listed.rsvp {
            None => format!("attribute_not_exists({})", items::RSVP_AT),
            Some(rsvp) => {
                put = put.expression_attribute_values(":answered", s(&rsvp.at));
                format!("{} = :answered", items::RSVP_AT)
            }
        };
        if let Some(was) = unchanged_since {
            put = put.expression_attribute_values(":was", s(was));
            answer = format!("{answer} AND updated_at = :was");
        }
        put = match expect {
            Expect::Absent => {
                put.condition_expression(format!("attribute_not_exists({})", keys::PK))
            }
            Expect::NoInvitation => put.condition_expression(format!(
                "attribute_exists({}) AND attribute_not_exists(invitation_id) AND {answer}",
                keys::PK
            )),
            Expect::PointingAt(ids) => {
                let mut either = Vec::new();
                for (i, id) in ids.iter().enumerate() {
                    let placeholder = format!(":seen{i}");
                    either.push(format!("invitation_id = {placeholder}"));
                    put = put.expression_attribute_values(placeholder, s(id.as_str()));
                }
                put.condition_expression(format!("({}) AND {answer}", either.join(" OR ")))
            }
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(backend)?)
            .build())
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
                .prefix_query(keys::guests_of(owner, event), keys::GUEST_PREFIX)
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
        // Each guest is written whole, keeping what only a send sets (the
        // pointer to their invitation), on the condition that no send moved
        // it since it was read; a guest a send changed meanwhile is read again.
        let mut pending: Vec<&Guest> = guests.iter().collect();
        for _ in 0..ADMIT_ROUNDS {
            if pending.is_empty() {
                return Ok(());
            }
            let ids: Vec<GuestId> = pending.iter().map(|g| g.guest_id.clone()).collect();
            let found: HashMap<GuestId, ListedGuest> = self
                .get_guests(owner, event, &ids)
                .await?
                .into_iter()
                .map(|g| (g.guest.guest_id.clone(), g))
                .collect();
            let chunks: Vec<Vec<&Guest>> = pending
                .chunks(TRANSACTION_ITEMS)
                .map(<[_]>::to_vec)
                .collect();
            let mut transactions = Vec::with_capacity(chunks.len());
            for chunk in &chunks {
                let mut items = Vec::with_capacity(chunk.len());
                for guest in chunk {
                    let before = found.get(&guest.guest_id);
                    let listed = ListedGuest {
                        guest: (*guest).clone(),
                        created_at: before.map_or_else(|| at.to_owned(), |b| b.created_at.clone()),
                        updated_at: at.to_owned(),
                        invitation_id: before.and_then(|b| b.invitation_id.clone()),
                        rsvp: before.and_then(|b| b.rsvp.clone()),
                    };
                    items.push(self.guest_put(owner, event, &listed, &Expect::of(before), None)?);
                }
                transactions.push(items);
            }
            pending = Vec::new();
            for (chunk, answer) in chunks
                .into_iter()
                .zip(self.transact_all(transactions).await)
            {
                if !answer? {
                    pending.extend(chunk);
                }
            }
        }
        if pending.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Backend(format!(
                "{} guests kept changing under sends; try again",
                pending.len()
            )))
        }
    }

    async fn remove_guest(
        &self,
        owner: &str,
        event: &EventId,
        id: &GuestId,
    ) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(keys::guest(owner, event, id).item()))
            .condition_expression(format!("attribute_exists({})", keys::PK))
            .build()
            .map_err(backend)?;
        let mut tombstone: Item = keys::removed_guest(owner, event, id).item();
        tombstone.extend(keys::change(owner, event, Changed::Guest, id.as_str()));
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
        let limit = limit.max(1);
        // Read before the query: whatever is written from here on is
        // after the next cursor.
        let lagging = settled_before();
        // Each partition's first `limit` changes after the cursor, at once.
        let reads = keys::changes_of(owner, event).into_iter().map(|pk| {
            let after = after.clone();
            async move {
                let mut query = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(BY_CHANGE_INDEX)
                    .limit(limit as i32)
                    .expression_attribute_values(":pk", s(pk));
                query = match after {
                    Some(a) => query
                        .key_condition_expression(format!("{GSI3PK} = :pk AND {GSI3SK} > :after"))
                        .expression_attribute_values(":after", s(a)),
                    None => query.key_condition_expression(format!("{GSI3PK} = :pk")),
                };
                query.send().await.map_err(backend)
            }
        });
        let mut found: Vec<(String, GuestId, bool)> = Vec::new();
        // A partition cut off at its limit may hold more past its last
        // change read; nothing past the earliest such cut is certain.
        let mut cut: Option<String> = None;
        for out in futures::future::join_all(reads).await {
            let out = out?;
            for item in out.items() {
                let r = items::Reader(item);
                let removed = r.opt_s("type").as_deref() == Some("removed");
                found.push((r.s(GSI3SK)?, r.parsed("guest_id", GuestId::parse)?, removed));
            }
            if let Some(last) = out
                .last_evaluated_key
                .as_ref()
                .and_then(|k| k.get(GSI3SK)?.as_s().ok().cloned())
                && cut.as_ref().is_none_or(|c| last < *c)
            {
                cut = Some(last);
            }
        }
        found.retain(|(place, _, _)| cut.as_ref().is_none_or(|c| place <= c));
        found.sort_by(|a, b| a.0.cmp(&b.0));

        let (mut changed, mut removed) = (Vec::new(), Vec::new());
        let (mut seen_changed, mut seen_removed) = (HashSet::new(), HashSet::new());
        let mut give = |guest: &GuestId, is_removed: bool| {
            if is_removed {
                if seen_removed.insert(guest.clone()) {
                    removed.push(guest.clone());
                }
            } else if seen_changed.insert(guest.clone()) {
                changed.push(guest.clone());
            }
        };
        // First what settled (before `lagging`): the cursor moves through it
        // only, so a cut-off answer never passes a change still on its way
        // to the index. Then, while the answer has room, what came since,
        // for a prompt answer; it comes again with the next cursor.
        let settled = found.partition_point(|(place, _, _)| *place < lagging);
        let given = settled.min(limit);
        for (_, guest, is_removed) in &found[..given] {
            give(guest, *is_removed);
        }
        let more = given < settled || cut.as_ref().is_some_and(|c| *c < lagging);
        let cursor = match (more, given.checked_sub(1), after) {
            // Cut off: the next read starts after the last change given.
            (true, Some(last), _) => found[last].0.clone(),
            (true, None, Some(after)) => after,
            (_, _, Some(after)) if after > lagging => after,
            _ => lagging,
        };
        if !more {
            for (_, guest, is_removed) in found[settled..].iter().take(limit - given) {
                give(guest, *is_removed);
            }
        }
        Ok(GuestChanges {
            changed,
            removed,
            cursor: keys::changes_cursor(&cursor),
            more,
        })
    }

    fn changes_from_now(&self) -> String {
        keys::changes_cursor(&settled_before())
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
                if seen.as_ref() == Some(&inv.invitation_id) {
                    // An earlier try wrote it with its guest: taken as written.
                    answers[i] = Some(Admission::Admitted);
                    continue;
                }
                let listed_phone = guests.get(&inv.guest.guest_id).map(|g| &g.guest.phone);
                let holding = seen
                    .as_ref()
                    .filter(|id| **id != inv.invitation_id)
                    .and_then(|id| latest.get(id))
                    .filter(|held| listed_phone.is_some_and(|phone| holds(held, phone)));
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
                    let before = guests.get(&inv.guest.guest_id);
                    // The list wins: a listed guest keeps their name, number
                    // and token (the write expects them unchanged since read).
                    let guest = before.map_or_else(|| inv.guest.clone(), |b| b.guest.clone());
                    let listed = ListedGuest {
                        guest,
                        created_at: before
                            .map_or_else(|| inv.updated_at.clone(), |b| b.created_at.clone()),
                        updated_at: inv.updated_at.clone(),
                        invitation_id: Some(inv.invitation_id.clone()),
                        rsvp: before.and_then(|b| b.rsvp.clone()),
                    };
                    let expect = match (before, seen) {
                        (None, _) => Expect::Absent,
                        (Some(_), None) => Expect::NoInvitation,
                        (Some(_), Some(seen)) => Expect::PointingAt(vec![seen, &inv.invitation_id]),
                    };
                    // An edit since the read is never written over.
                    let read_at = before.map(|b| b.updated_at.as_str());
                    items.push(self.guest_put(owner, event, &listed, &expect, read_at)?);
                    // Never over an invitation written already (it may be on its way).
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(Item::from(inv)))
                        .condition_expression("attribute_not_exists(pk)")
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
