//! Every store port on one DynamoDB table: the key layout ([`keys`]), the
//! item conversions ([`items`]), the port implementations ([`store`]), and
//! here the client and the small helpers they share.

mod guests;
pub mod items;
pub mod keys;
mod rsvp;
mod store;

pub use keys::{BY_EVENT_INDEX, IndexSchema, TABLE, TTL_ATTRIBUTE, TableSchema};

use crate::ports::StoreError;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, PutRequest, TransactWriteItem, WriteRequest,
};
use futures::StreamExt;
use items::Item;
use keys::Key;
use std::collections::HashMap;
use std::time::Duration;

/// DynamoDB's BatchWriteItem limit.
const BATCH_WRITE_SIZE: usize = 25;
/// DynamoDB's BatchGetItem limit.
const BATCH_GET_SIZE: usize = 100;
/// Batch requests in flight at once per call.
const BATCH_PARALLELISM: usize = 8;
const MAX_UNPROCESSED_RETRIES: u32 = 8;
/// Times a late change is stamped again while each stamp lands late too.
const RESTAMP_TRIES: usize = 3;

/// An item's key and change place, when it has one.
fn stamped_item(item: &Item) -> Option<(Item, String)> {
    let place = item.get(keys::GSI3SK)?.as_s().ok()?.clone();
    Some((Key::of(item).ok()?.item(), place))
}

/// The rows a transaction moves among their event's changes: puts with a
/// place, updates naming [`keys::CHANGE_PLACE`].
fn stamped_in_transaction(items: &[TransactWriteItem]) -> Vec<(Item, String)> {
    items
        .iter()
        .filter_map(|part| {
            if let Some(put) = part.put() {
                return stamped_item(put.item());
            }
            let update = part.update()?;
            let place = update
                .expression_attribute_values()?
                .get(keys::CHANGE_PLACE)?
                .as_s()
                .ok()?
                .clone();
            Some((update.key().clone(), place))
        })
        .collect()
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// The part the next batch takes its places from: each in turn.
    next_budget_part: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The job counter shard the next status change adds to: each in turn
    /// ([`keys::job_counter_shard`]).
    next_counter_shard: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            next_budget_part: std::sync::Arc::new(rand::random_range(0..keys::BUDGET_PARTS).into()),
            next_counter_shard: std::sync::Arc::new(
                rand::random_range(0..keys::COUNTER_SHARDS).into(),
            ),
        }
    }
}

fn backend<E: std::error::Error + 'static>(err: E) -> StoreError {
    StoreError::Backend(DisplayErrorContext(err).to_string())
}

/// Errors that can say "a condition of the write did not hold".
trait ConditionFailed {
    fn condition_failed(&self) -> bool;
}

impl ConditionFailed for UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailed for PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailed for TransactWriteItemsError {
    fn condition_failed(&self) -> bool {
        matches!(self, TransactWriteItemsError::TransactionCanceledException(cancelled)
            if cancelled
                .cancellation_reasons()
                .iter()
                .any(|r| r.code() == Some("ConditionalCheckFailed")))
    }
}

/// A conditional write's result: Ok(false) when its condition did not hold.
fn applied<O, E>(result: Result<O, SdkError<E>>) -> Result<bool, StoreError>
where
    E: ConditionFailed + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(E::condition_failed) => Ok(false),
        Err(err) => Err(backend(err)),
    }
}

/// An update expression built clause by clause: `SET a = :a, ... REMOVE b, ...`,
/// with its placeholders' values and names.
#[derive(Debug, Default)]
struct UpdateExpression {
    set: Vec<String>,
    remove: Vec<String>,
    values: HashMap<String, AttributeValue>,
    names: HashMap<String, String>,
}

impl UpdateExpression {
    fn set(&mut self, clause: impl Into<String>) -> &mut Self {
        self.set.push(clause.into());
        self
    }

    fn remove(&mut self, attribute: impl Into<String>) -> &mut Self {
        self.remove.push(attribute.into());
        self
    }

    fn value(&mut self, placeholder: &str, value: AttributeValue) -> &mut Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    fn name(&mut self, placeholder: &str, attribute: impl Into<String>) -> &mut Self {
        self.names.insert(placeholder.to_owned(), attribute.into());
        self
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    fn expression(&self) -> String {
        let mut expression = String::new();
        if !self.set.is_empty() {
            expression = format!("SET {}", self.set.join(", "));
        }
        if !self.remove.is_empty() {
            if !expression.is_empty() {
                expression.push(' ');
            }
            expression.push_str(&format!("REMOVE {}", self.remove.join(", ")));
        }
        expression
    }

    /// The expression and its placeholders, as the request builders take them.
    fn into_parts(self) -> UpdateParts {
        UpdateParts {
            expression: self.expression(),
            names: Some(self.names).filter(|n| !n.is_empty()),
            values: Some(self.values).filter(|v| !v.is_empty()),
        }
    }
}

struct UpdateParts {
    expression: String,
    names: Option<HashMap<String, String>>,
    values: Option<HashMap<String, AttributeValue>>,
}

/// How long to wait before retry `retry` (1, 2, ...): "full jitter", a random
/// time up to 25 ms doubling to a cap of 1.6 s, so writers that collided do
/// not collide again in step.
fn backoff(retry: u32) -> Duration {
    let ceiling = 25u64 << retry.min(6);
    Duration::from_millis(rand::random_range(1..=ceiling))
}

/// Tries of a transaction cancelled for a transient reason (with [`backoff`],
/// about 6 s in all at worst).
const TRANSACTION_ATTEMPTS: u32 = 10;

/// A cancellation that a later try can avoid: another transaction held one of
/// the items (`TransactionConflict`, which the SDK does not retry) or an item
/// was throttled. A failed condition is final.
fn transient_cancellation(err: &TransactWriteItemsError) -> bool {
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = err else {
        return false;
    };
    let codes: Vec<&str> = cancelled
        .cancellation_reasons()
        .iter()
        .filter_map(|r| r.code())
        .collect();
    !codes.contains(&"ConditionalCheckFailed")
        && codes.iter().any(|c| {
            matches!(
                *c,
                "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
            )
        })
}

impl DynamoStore {
    /// Runs a transaction, trying again with jittered backoff while it is
    /// cancelled for a conflict or throttling; Ok(false) when one of its
    /// conditions failed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        let mut retry = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match &result {
                Err(err)
                    if retry + 1 < TRANSACTION_ATTEMPTS
                        && err.as_service_error().is_some_and(transient_cancellation) =>
                {
                    retry += 1;
                    tokio::time::sleep(backoff(retry)).await;
                }
                _ => {
                    let applied = applied(result)?;
                    if applied {
                        self.announce_late(stamped_in_transaction(&items)).await;
                    }
                    return Ok(applied);
                }
            }
        }
    }

    /// Stamps again the rows a write moved among their event's changes
    /// whose stamp is older than [`keys::CHANGE_LANDS_WITHIN_MS`] now that
    /// the write has landed: a page following the changes may have read
    /// past that stamp already. Each move is on the condition that the row
    /// is still where this write put it (a later change has its own place).
    async fn announce_late(&self, stamped: Vec<(Item, String)>) {
        let late: Vec<_> = stamped
            .into_iter()
            .filter(|(_, place)| keys::place_age_ms(place) > keys::CHANGE_LANDS_WITHIN_MS)
            .collect();
        if late.is_empty() {
            return;
        }
        tracing::info!(
            rows = late.len(),
            "a write landed late; its changes are stamped again"
        );
        let moves: Vec<_> = late
            .into_iter()
            .map(|(key, place)| self.restamp(key, place))
            .collect();
        futures::stream::iter(moves)
            .buffer_unordered(BATCH_PARALLELISM)
            .collect::<Vec<()>>()
            .await;
    }

    async fn restamp(&self, key: Item, mut place: String) {
        for _ in 0..RESTAMP_TRIES {
            let new = keys::restamped(&place);
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression(format!("SET {} = :new", keys::GSI3SK))
                .condition_expression(format!("{} = :old", keys::GSI3SK))
                .expression_attribute_values(":new", items::s(&new))
                .expression_attribute_values(":old", items::s(&place))
                .send()
                .await;
            match applied(result) {
                Ok(true) if keys::place_age_ms(&new) <= keys::CHANGE_LANDS_WITHIN_MS => return,
                Ok(true) => place = new,
                Ok(false) => return,
                Err(err) => {
                    // The write itself stands; a page following the event
                    // may show this row's old state until it reloads.
                    tracing::warn!(error = %err, place = %place, "a late change could not be stamped again");
                    return;
                }
            }
        }
    }

    /// One item by key, strongly consistent.
    async fn get(&self, key: Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.item)
    }

    /// One item by key, converted to its domain type.
    async fn get_as<T>(&self, key: Key) -> Result<Option<T>, StoreError>
    where
        T: for<'a> TryFrom<&'a Item, Error = StoreError>,
    {
        self.get(key).await?.as_ref().map(T::try_from).transpose()
    }

    /// Every item under one partition of the by-event index, converted.
    async fn query_index<T>(&self, partition: String) -> Result<Vec<T>, StoreError>
    where
        T: for<'a> TryFrom<&'a Item, Error = StoreError>,
    {
        let items: Vec<_> = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_EVENT_INDEX)
            .key_condition_expression(format!("{} = :pk", keys::GSI1PK))
            .expression_attribute_values(":pk", items::s(partition))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        items
            .into_iter()
            .map(|item| T::try_from(&item.map_err(backend)?))
            .collect()
    }

    /// Puts items with BatchWriteItem, 25 at a time and [`BATCH_PARALLELISM`]
    /// batches at once.
    async fn write_all(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let batches: Vec<Vec<Item>> = items
            .chunks(BATCH_WRITE_SIZE)
            .map(<[Item]>::to_vec)
            .collect();
        let writes: Vec<_> = batches
            .into_iter()
            .map(|batch| self.write_batch(batch))
            .collect();
        let results: Vec<Result<(), StoreError>> = futures::stream::iter(writes)
            .buffer_unordered(BATCH_PARALLELISM)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// One BatchWriteItem of at most 25, resubmitting unprocessed items with
    /// exponential backoff (DynamoDB returns them under throttling).
    async fn write_batch(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let stamped: Vec<_> = items.iter().filter_map(stamped_item).collect();
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
                tokio::time::sleep(backoff(retry)).await;
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
                self.announce_late(stamped).await;
                return Ok(());
            }
        }
        Err(StoreError::Backend(format!(
            "{} items still unprocessed after retries",
            pending.len()
        )))
    }

    /// Reads items by key with BatchGetItem, 100 at a time and
    /// [`BATCH_PARALLELISM`] batches at once; missing ones are left out.
    async fn get_all(&self, keys: Vec<Key>) -> Result<Vec<Item>, StoreError> {
        let chunks: Vec<Vec<Item>> = keys
            .chunks(BATCH_GET_SIZE)
            .map(|chunk| chunk.iter().cloned().map(Key::item).collect())
            .collect();
        let reads: Vec<_> = chunks.into_iter().map(|c| self.get_batch(c)).collect();
        let found: Vec<Result<Vec<Item>, StoreError>> = futures::stream::iter(reads)
            .buffer_unordered(BATCH_PARALLELISM)
            .collect()
            .await;
        Ok(found
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect())
    }

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
                tokio::time::sleep(backoff(retry)).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_expressions() {
        let mut update = UpdateExpression::default();
        assert!(update.is_empty());
        update
            .set("#status = :to")
            .set("a = :a")
            .remove("b")
            .remove("c")
            .value(":to", items::s("sent"))
            .name("#status", "status");
        assert_eq!(update.expression(), "SET #status = :to, a = :a REMOVE b, c");
        let mut only_remove = UpdateExpression::default();
        only_remove.remove("x");
        assert_eq!(only_remove.expression(), "REMOVE x");
        assert!(only_remove.into_parts().values.is_none());
    }
}
