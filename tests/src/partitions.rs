//! Write units by partition key, for the table and every index, as
//! DynamoDB would spend them: what [`crate::faults`] records when a test or
//! the benchmark asks it to (`Report::measure_partitions`).
//!
//! A write to an item costs its table partition 1 unit, 2 in a transaction.
//! Each index the item is in, or enters or leaves, is written when the
//! item's index key or a projected attribute changes: 1 unit (2 in a
//! transaction) on the partition it leaves and 1 on the one it enters, so
//! a move within one partition costs 2. A put's item counts its size on
//! its table partition (1 unit per KB begun, its JSON's length as the
//! size: a large send's chunks are some 25 KB); other writes count 1 KB.
//! Units are also kept per second, for each partition's busiest second.
//!
//! It also counts the transactions each item takes part in (condition
//! checks included): an item in many transactions a second conflicts.

use serde_json::{Map, Value};
use shared::adapters::dynamo::keys::TABLE;
use std::collections::HashMap;

/// One item a write request touched.
#[derive(Debug, Clone)]
pub struct Touched {
    /// `pk|sk`.
    pub item: String,
    pub key: Map<String, Value>,
    pub transactional: bool,
    /// A condition check: in the transaction, not written.
    pub checked_only: bool,
    /// The whole item, when the request puts it (no need to read it back).
    pub put: Option<Image>,
    /// Deleted by the request.
    pub deleted: bool,
}

/// An item as DynamoDB JSON (`{"pk": {"S": "..."}, ...}`).
pub type Image = Map<String, Value>;

#[derive(Debug, Default)]
pub struct Ledger {
    images: HashMap<String, Image>,
    units: HashMap<String, f64>,
    /// By (partition, epoch second).
    per_second: HashMap<(String, u64), f64>,
    transactions: HashMap<String, u32>,
}

/// The hottest partitions and items, per message sent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hottest {
    /// (`table PK` or `index-name PK`, write units per message), hottest first.
    pub partitions: Vec<(String, f64)>,
    /// (`pk|sk`, transactions per message), busiest first.
    pub items_in_transactions: Vec<(String, f64)>,
    /// (partition, write units in its busiest second), busiest first: what
    /// DynamoDB holds to 1,000 a second.
    pub busiest_seconds: Vec<(String, f64)>,
}

fn string(image: &Image, attribute: &str) -> Option<String> {
    image.get(attribute)?.get("S")?.as_str().map(str::to_owned)
}

impl Ledger {
    fn add(&mut self, partition: String, cost: f64) {
        let second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        *self
            .per_second
            .entry((partition.clone(), second))
            .or_default() += cost;
        *self.units.entry(partition).or_default() += cost;
    }

    /// Records writes that landed; `after` holds each written item's image
    /// once written (absent: deleted).
    pub fn record(&mut self, touched: &[Touched], after: &HashMap<String, Image>) {
        for t in touched {
            if t.transactional {
                *self.transactions.entry(t.item.clone()).or_default() += 1;
            }
            if t.checked_only {
                continue;
            }
            let cost = if t.transactional { 2.0 } else { 1.0 };
            let pk = string(&t.key, TABLE.partition_key).unwrap_or_default();
            let kb = t.put.as_ref().map_or(1, |image| {
                Value::Object(image.clone())
                    .to_string()
                    .len()
                    .div_ceil(1024)
                    .max(1)
            });
            self.add(format!("table {pk}"), cost * kb as f64);
            let old = self.images.remove(&t.item);
            let new = after.get(&t.item).cloned();
            for index in TABLE.indexes {
                let place = |image: &Option<Image>| {
                    let image = image.as_ref()?;
                    Some((
                        string(image, index.partition_key)?,
                        string(image, index.sort_key)?,
                    ))
                };
                let (before, now) = (place(&old), place(&new));
                let projected_changed = || {
                    let (Some(old), Some(new)) = (&old, &new) else {
                        return true;
                    };
                    if index.projected.is_empty() {
                        return old != new;
                    }
                    index.projected.iter().any(|a| old.get(*a) != new.get(*a))
                };
                match (&before, &now) {
                    (Some(b), Some(n)) if b == n => {
                        if projected_changed() {
                            self.add(format!("{} {}", index.name, n.0), cost);
                        }
                    }
                    _ => {
                        for (partition, _) in before.iter().chain(now.iter()) {
                            self.add(format!("{} {partition}", index.name), cost);
                        }
                    }
                }
            }
            if let Some(new) = new {
                self.images.insert(t.item.clone(), new);
            }
        }
    }

    /// The `n` hottest partitions and items, per `messages` sent.
    pub fn hottest(&self, n: usize, messages: usize) -> Hottest {
        let per = |v: f64| v / messages.max(1) as f64;
        let mut partitions: Vec<(String, f64)> = self
            .units
            .iter()
            .map(|(k, v)| (k.clone(), per(*v)))
            .collect();
        partitions.sort_by(|a, b| b.1.total_cmp(&a.1));
        partitions.truncate(n);
        let mut items: Vec<(String, f64)> = self
            .transactions
            .iter()
            .map(|(k, v)| (k.clone(), per(*v as f64)))
            .collect();
        items.sort_by(|a, b| b.1.total_cmp(&a.1));
        items.truncate(n);
        let mut busiest: HashMap<&str, f64> = HashMap::new();
        for ((partition, _), units) in &self.per_second {
            let top = busiest.entry(partition).or_default();
            *top = top.max(*units);
        }
        let mut busiest: Vec<(String, f64)> = busiest
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        busiest.sort_by(|a, b| b.1.total_cmp(&a.1));
        busiest.truncate(n);
        Hottest {
            partitions,
            items_in_transactions: items,
            busiest_seconds: busiest,
        }
    }
}

/// The items a DynamoDB write request touches, with their keys.
pub fn touched(operation: &str, body: &Value) -> Vec<Touched> {
    let key_of = |item: &Value| -> Map<String, Value> {
        let mut key = Map::new();
        for a in [TABLE.partition_key, TABLE.sort_key] {
            if let Some(v) = item.get(a) {
                key.insert(a.to_owned(), v.clone());
            }
        }
        key
    };
    let one = |item: &Value, transactional: bool, checked_only: bool| {
        let key = key_of(item);
        Touched {
            put: None,
            deleted: false,
            item: format!(
                "{}|{}",
                string(&key, TABLE.partition_key).unwrap_or_default(),
                string(&key, TABLE.sort_key).unwrap_or_default()
            ),
            key,
            transactional,
            checked_only,
        }
    };
    let put = |item: &Value, transactional: bool| Touched {
        put: item.as_object().cloned(),
        ..one(item, transactional, false)
    };
    let delete = |key: &Value, transactional: bool| Touched {
        deleted: true,
        ..one(key, transactional, false)
    };
    match operation {
        "PutItem" => vec![put(&body["Item"], false)],
        "UpdateItem" => vec![one(&body["Key"], false, false)],
        "DeleteItem" => vec![delete(&body["Key"], false)],
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|part| {
                let (kind, op) = part.as_object()?.iter().next()?;
                Some(match kind.as_str() {
                    "Put" => put(&op["Item"], true),
                    "ConditionCheck" => one(&op["Key"], true, true),
                    "Delete" => delete(&op["Key"], true),
                    _ => one(&op["Key"], true, false),
                })
            })
            .collect(),
        "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|tables| tables.values())
            .flat_map(|requests| requests.as_array().into_iter().flatten())
            .map(|r| match r.get("PutRequest") {
                Some(item) => put(&item["Item"], false),
                None => delete(&r["DeleteRequest"]["Key"], false),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The table a write request names.
pub fn table_of(operation: &str, body: &Value) -> Option<String> {
    let name = match operation {
        "TransactWriteItems" => body["TransactItems"]
            .as_array()?
            .first()?
            .as_object()?
            .values()
            .next()?["TableName"]
            .as_str(),
        "BatchWriteItem" => return body["RequestItems"].as_object()?.keys().next().cloned(),
        _ => body["TableName"].as_str(),
    };
    name.map(str::to_owned)
}
