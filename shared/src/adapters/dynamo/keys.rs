//! The table's layout, in one place: attribute names, every key and index
//! key format, and the listing cursor. The local stack creates the table
//! from [`TABLE`] and tests hold `template.yaml` to it.
//!
//! | item               | pk                        | sk        | by-event index (gsi1pk / gsi1sk)      |
//! |--------------------|---------------------------|-----------|---------------------------------------|
//! | event              | `EVENT#{owner}#{id}`      | `EVENT`   | `OWNER#{owner}` / `EVENT#{id}`        |
//! | job                | `JOB#{id}`                | `JOB`     |                                       |
//! | job counter shard  | `JOB#{id}#COUNT#{shard:03}` | `COUNT` |                                      |
//! | a large send's chunk | `JOB#{id}#ADMIT#{n:04}` | `ADMIT`   | while undone, event-invitations index: `ADMITTING` / `{created}#{job}#{n:04}` |
//! | invitation         | `INV#{id}`                | `INV`     |                                       |
//! | (every invitation) |                           |           | event-invitations index (gsi5pk / gsi5sk): `EVENT#{owner}#{event}` / `{created}#{id}` |
//! | (while in flight)  |                           |           | in-flight index (gsi2pk / gsi2sk): `INFLIGHT#{status}#{shard}` / `{changed}#{id}` |
//! | (every change)    |                           |           | by-change index (gsi3pk / gsi3sk): `CHANGES#{owner}#{event}#{shard:02}` / `{changed ms:013}#I#{id}` |
//! | guest of an event  | `EVENT#{owner}#{id}`      | `GUEST#{guest}` | by-change index: `CHANGES#{owner}#{event}#{shard:02}` / `{changed ms:013}#G#{guest}` |
//! | guest removed      | `EVENT#{owner}#{id}`      | `REMOVED#{guest}` | by-change index, as a guest's (expires through [`TTL_ATTRIBUTE`]) |
//! | a guest's answer (history) | `EVENT#{owner}#{id}` | `ANSWER#{guest}#{at}#{unique}` |              |
//! | a guest's other message | `EVENT#{owner}#{id}` | `REPLY#{message sid}` |                          |
//! | (every invitation) |                           |           | by-recipient index (gsi4pk / gsi4sk): `TO#{whatsapp user}` / `{created}#{id}` |
//! | template (current) | `TEMPLATE#{owner}#{id}`   | `CURRENT` | `TEMPLATES#{owner}` / `{id}`          |
//! | template version   | `TEMPLATE#{owner}#{id}`   | `V#{version:06}` |                                |
//! | guest's opt-out    | `OPTOUT#{whatsapp user}`  | `OPTOUT`  |                                       |
//! | organizer's opt-out | `OPTOUT#{whatsapp user}` | `BY#{owner}` |                                    |
//! | organizer invited it | `OPTOUT#{whatsapp user}` | `INVITED#{owner}` |                             |
//! | idempotency key    | `IDEM#{owner}#{key}`      | `IDEM`    | (expires through [`TTL_ATTRIBUTE`])   |
//! | Twilio delivery    | `DELIVERY#{hash}`         | `DELIVERY` | (expires through [`TTL_ATTRIBUTE`])  |
//! | daily budget part  | `BUDGET#{sender}`         | `PART#{n:02}` | (its holds by end, what it learned) |
//! | counted recipient  | `BUDGET#{sender}#{whatsapp user}` | `BUDGET` | (expires through [`TTL_ATTRIBUTE`]) |
//! | its answer's parts | `IDEM#{owner}#{key}`      | `PART#{n:04}` | (when the answer passes 350 KB)   |
//! | a reminder time    | `REMINDERS#{UTC day}`     | `{at}#{owner}#{event}` | (deleted once run)          |
//! | failed token tries | `TRIES#{client}`          | `W#{window start}` | (expires through [`TTL_ATTRIBUTE`]) |

use super::items::{Item, s};
use crate::domain::{
    EventId, GuestId, InvitationId, JobId, OptOut, PhoneNumber, Status, TemplateId,
};
use crate::ports::StoreError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashMap;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI1SK: &str = "gsi1sk";
pub const GSI2PK: &str = "gsi2pk";
pub const GSI2SK: &str = "gsi2sk";
pub const GSI3PK: &str = "gsi3pk";
pub const GSI3SK: &str = "gsi3sk";
pub const GSI4PK: &str = "gsi4pk";
pub const GSI4SK: &str = "gsi4sk";
pub const GSI5PK: &str = "gsi5pk";
pub const GSI5SK: &str = "gsi5sk";

/// Lists an organizer's events and templates.
pub const BY_EVENT_INDEX: &str = "by-event";

/// Lists an event's invitations, in the order they were made. It holds
/// their keys only, so a status change does not write it (copying whole
/// invitations, every change wrote its one partition: about 10 write units
/// a message); a listing reads the page's invitations by key.
pub const EVENT_INVITATIONS_INDEX: &str = "event-invitations";

/// Invitations still queued, sending or sent, by status and last change:
/// reconciliation's worklist. Sparse: a settled invitation leaves it.
pub const IN_FLIGHT_INDEX: &str = "in-flight";

/// Partitions per status of the in-flight index, so no one index partition
/// takes every status change of a large send.
pub const IN_FLIGHT_SHARDS: u32 = 8;

/// An event's guests and invitations by the time they last changed: what
/// a page following the event reads, a few rows at a time.
pub const BY_CHANGE_INDEX: &str = "by-change";

/// The invitations sent to one WhatsApp user, newest last: the one a
/// typed reply answers.
pub const BY_RECIPIENT_INDEX: &str = "by-recipient";

/// Items with this attribute (epoch seconds) expire: idempotency keys.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// The single table's key attributes and secondary indexes (all strings).
pub struct TableSchema {
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    pub indexes: &'static [IndexSchema],
}

pub struct IndexSchema {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    /// The attributes it copies besides the keys; empty: all of them.
    pub projected: &'static [&'static str],
}

pub const TABLE: TableSchema = TableSchema {
    partition_key: PK,
    sort_key: SK,
    indexes: &[
        IndexSchema {
            name: BY_EVENT_INDEX,
            partition_key: GSI1PK,
            sort_key: GSI1SK,
            projected: &[],
        },
        IndexSchema {
            name: IN_FLIGHT_INDEX,
            partition_key: GSI2PK,
            sort_key: GSI2SK,
            projected: &[],
        },
        IndexSchema {
            name: BY_CHANGE_INDEX,
            partition_key: GSI3PK,
            sort_key: GSI3SK,
            // Enough to tell whose row changed; the rows are read by key.
            projected: &["type", "guest_id"],
        },
        IndexSchema {
            name: BY_RECIPIENT_INDEX,
            partition_key: GSI4PK,
            sort_key: GSI4SK,
            // The invitations are read by key.
            projected: &["invitation_id"],
        },
        IndexSchema {
            name: EVENT_INVITATIONS_INDEX,
            partition_key: GSI5PK,
            sort_key: GSI5SK,
            // Read by key too; nothing here changes after the invitation is made.
            projected: &["invitation_id"],
        },
    ],
};

/// A partition and sort value: an item's primary key, or its place in the index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub partition: String,
    pub sort: String,
}

fn key(partition: String, sort: impl Into<String>) -> Key {
    Key {
        partition,
        sort: sort.into(),
    }
}

impl Key {
    /// The primary key of a stored item.
    pub fn of(item: &Item) -> Result<Self, StoreError> {
        let attribute = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .ok_or_else(|| StoreError::Corrupt(format!("missing key attribute {name}")))
        };
        Ok(key(attribute(PK)?, attribute(SK)?))
    }

    /// The key as the primary key attributes.
    pub fn item(self) -> Item {
        HashMap::from([
            (PK.to_owned(), s(self.partition)),
            (SK.to_owned(), s(self.sort)),
        ])
    }

    /// The key as the by-event index's attributes.
    pub fn index_attributes(self) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 2] {
        [
            (GSI1PK.to_owned(), s(self.partition)),
            (GSI1SK.to_owned(), s(self.sort)),
        ]
    }
}

fn event_partition(owner: &str, id: &EventId) -> String {
    format!("EVENT#{owner}#{id}")
}

pub fn event(owner: &str, id: &EventId) -> Key {
    key(event_partition(owner, id), "EVENT")
}

/// An organizer's events, in the index.
pub fn events_of(owner: &str) -> String {
    format!("OWNER#{owner}")
}

pub fn event_in_index(owner: &str, id: &EventId) -> Key {
    key(events_of(owner), format!("EVENT#{id}"))
}

pub fn job(id: &JobId) -> Key {
    key(format!("JOB#{id}"), "JOB")
}

/// How many items a job's counters are spread over, each in a partition of
/// its own. Every status change adds to one shard in the transaction that
/// makes it ([`job_counter_shard`]): about four a message. DynamoDB cancels
/// concurrent transactions on one item, so each shard must stay under ten
/// a second at 400 messages a second (1,600 changes): 256 shards take about
/// six each. A job's status reads them all (three BatchGetItem requests).
pub const COUNTER_SHARDS: u32 = 256;

/// The sort key of a job's counter shards.
pub const COUNTER_SORT: &str = "COUNT";

/// A stable shard of `n` for `text` (FNV-1a: the same in every process and
/// release, unlike std's hasher).
fn shard_of(text: &str, n: u32) -> u64 {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash % u64::from(n)
}

/// One of a job's counter shards. A status change adds to the next in turn
/// of its store's (from a start of its own), so changes spread evenly over
/// the shards (a hash of the invitation left some shards twice as busy as
/// the mean). Any shard will do: the job's counts are the sum of them all,
/// and the invitation's own condition keeps a change from counting twice.
pub fn job_counter_shard(job: &JobId, shard: u32) -> Key {
    key(format!("JOB#{job}#COUNT#{shard:03}"), COUNTER_SORT)
}

/// Every counter shard of a job.
pub fn job_counters(job: &JobId) -> Vec<Key> {
    (0..COUNTER_SHARDS)
        .map(|shard| job_counter_shard(job, shard))
        .collect()
}

pub fn invitation(id: &InvitationId) -> Key {
    key(format!("INV#{id}"), "INV")
}

/// One chunk of a large send's guests: a partition of its own, so writing
/// a send's chunks (about 25 write units each) loads no one partition.
pub fn admission_chunk(job: &JobId, number: u32) -> Key {
    key(format!("JOB#{job}#ADMIT#{number:04}"), "ADMIT")
}

/// The job and number of the chunk with this key.
pub fn chunk_of(key: &Key) -> Option<(JobId, u32)> {
    let (job, number) = key.partition.strip_prefix("JOB#")?.split_once("#ADMIT#")?;
    Some((JobId::parse(job).ok()?, number.parse().ok()?))
}

/// Undone chunks in the event-invitations index (which holds keys only):
/// reconciliation's worklist of admissions, one write unit each.
pub const UNDONE_CHUNKS: &str = "ADMITTING";

/// An undone chunk's place among [`UNDONE_CHUNKS`], as attributes.
pub fn undone_chunk(
    created: &str,
    job: &JobId,
    number: u32,
) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 2] {
    [
        (GSI5PK.to_owned(), s(UNDONE_CHUNKS)),
        (GSI5SK.to_owned(), s(format!("{created}#{job}#{number:04}"))),
    ]
}

/// One partition of the in-flight index.
pub fn in_flight_partition(status: Status, shard: u32) -> String {
    format!("INFLIGHT#{status}#{shard}")
}

/// An in-flight invitation's place in the in-flight index, as attributes.
pub fn in_flight(
    id: &InvitationId,
    status: Status,
    changed_at: &str,
) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 2] {
    let shard = shard_of(id.as_str(), IN_FLIGHT_SHARDS) as u32;
    [
        (GSI2PK.to_owned(), s(in_flight_partition(status, shard))),
        (GSI2SK.to_owned(), s(format!("{changed_at}#{id}"))),
    ]
}

/// An event's invitations, in the index.
pub fn invitations_of(owner: &str, event: &EventId) -> String {
    event_partition(owner, event)
}

/// An invitation's place among its event's, as attributes: by creation
/// time, then id.
pub fn invitation_in_event(
    owner: &str,
    event: &EventId,
    created: &str,
    id: &InvitationId,
) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 2] {
    [
        (GSI5PK.to_owned(), s(invitations_of(owner, event))),
        (GSI5SK.to_owned(), s(format!("{created}#{id}"))),
    ]
}

/// An invitation's place among those sent to its recipient, as attributes.
pub fn recipient(
    phone: &PhoneNumber,
    created: &str,
    id: &InvitationId,
) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 2] {
    [
        (GSI4PK.to_owned(), s(recipient_of(phone))),
        (GSI4SK.to_owned(), s(format!("{created}#{id}"))),
    ]
}

/// The invitations to the WhatsApp user `phone` reaches, in the by-recipient index.
pub fn recipient_of(phone: &PhoneNumber) -> String {
    format!("TO#{}", phone.whatsapp_identity())
}

/// One answer in a guest's history; `unique` tells apart two answers of
/// the same millisecond.
pub fn answer(owner: &str, event: &EventId, guest: &GuestId, at: &str, unique: &str) -> Key {
    key(
        event_partition(owner, event),
        format!("{}{at}#{unique}", answers_prefix(guest)),
    )
}

/// The sort key prefix of a guest's answers.
pub fn answers_prefix(guest: &GuestId) -> String {
    format!("ANSWER#{guest}#")
}

/// An event's reminder time, in the partition of its UTC day (`at` is
/// RFC 3339 UTC, so its first ten characters are the day).
pub fn scheduled_reminder(owner: &str, event: &EventId, at: &str) -> Key {
    key(reminders_on(at), format!("{at}#{owner}#{event}"))
}

/// The partition of the reminder times on the day of `at`.
pub fn reminders_on(at: &str) -> String {
    format!("REMINDERS#{}", at.get(..10).unwrap_or(at))
}

/// A client's failed answer-token tries in one window.
pub fn attempts(client: &str, window: i64) -> Key {
    key(format!("TRIES#{client}"), format!("W#{window}"))
}

/// A guest's message that was not an answer.
pub fn reply(owner: &str, event: &EventId, message_sid: &str) -> Key {
    key(
        event_partition(owner, event),
        format!("{REPLY_PREFIX}{message_sid}"),
    )
}

pub const REPLY_PREFIX: &str = "REPLY#";

/// An event's guest.
pub fn guest(owner: &str, event: &EventId, id: &GuestId) -> Key {
    key(event_partition(owner, event), format!("{GUEST_PREFIX}{id}"))
}

/// The sort key prefix of an event's guests (they share its partition).
pub const GUEST_PREFIX: &str = "GUEST#";

/// That a guest was removed, kept a day so pages following the event learn it.
pub fn removed_guest(owner: &str, event: &EventId, id: &GuestId) -> Key {
    key(event_partition(owner, event), format!("REMOVED#{id}"))
}

/// The guest list's partition, for a query of its guests.
pub fn guests_of(owner: &str, event: &EventId) -> String {
    event_partition(owner, event)
}

/// Partitions an event's changes are spread over in the by-change index.
/// Every status change of an invitation moves it in the index (2 write
/// units, 4 in a transaction): one partition would take about 20 a message
/// sent, past DynamoDB's 1,000 a second near 50 messages a second; sixteen
/// take about 1.2 each. A page following the event reads all of them.
pub const CHANGE_SHARDS: u32 = 16;

/// One partition of an event's changes, in the by-change index.
pub fn changes_shard(owner: &str, event: &EventId, shard: u32) -> String {
    format!("CHANGES#{owner}#{event}#{shard:02}")
}

/// Every partition of an event's changes.
pub fn changes_of(owner: &str, event: &EventId) -> Vec<String> {
    (0..CHANGE_SHARDS)
        .map(|shard| changes_shard(owner, event, shard))
        .collect()
}

/// What changed, in a change's place: an invitation, or a guest (kept or removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    Invitation,
    Guest,
}

impl Changed {
    fn tag(self) -> &'static str {
        match self {
            Changed::Invitation => "I",
            Changed::Guest => "G",
        }
    }
}

/// A write that moves rows among their event's changes lands within this
/// long of its stamp, or the store stamps them again once it has landed
/// (slow, retried, or resubmitted after throttling).
pub const CHANGE_LANDS_WITHIN_MS: i128 = 1000;

/// How far a global secondary index may lag its table: DynamoDB's usually
/// a fraction of a second; the fault layer's up to 2 s.
pub const INDEX_LAG_MS: i128 = 2000;

/// How far behind now a page following the changes keeps its cursor: a
/// change stamped earlier has landed and reached the index by then, so the
/// cursor never passes one still on its way. Changes since are answered
/// too, for a prompt page, and again with the next cursor.
pub const CHANGES_SETTLE_MS: i128 = CHANGE_LANDS_WITHIN_MS + INDEX_LAG_MS + 500;

/// The expression value an update that moves a row among its event's
/// changes names its new place with (so the store finds it again, to
/// stamp a late write anew).
pub const CHANGE_PLACE: &str = ":change_place";

/// A change's place in the by-change index: the time it is written, in
/// epoch milliseconds (fixed width, so the order of text is the order of
/// time), then what changed. The time is the store's clock as it builds the
/// write, never a time the caller took earlier (a run's start, an import's
/// first round): a page following the changes reads up to a little before
/// now, and a change stamped long before it lands would fall behind it.
pub fn change_place(what: Changed, id: &str) -> String {
    format!("{:013}#{}#{id}", now_ms(), what.tag())
}

/// The same change, stamped now (a write that landed late is announced again).
pub fn restamped(place: &str) -> String {
    match place.split_once('#') {
        Some((_, rest)) => format!("{:013}#{rest}", now_ms()),
        None => place.to_owned(),
    }
}

/// How long ago a place was stamped, in milliseconds.
pub fn place_age_ms(place: &str) -> i128 {
    let stamped: i128 = place
        .split('#')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    now_ms() - stamped
}

pub fn now_ms() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
}

/// A change's attributes in the by-change index, stamped now.
pub fn change(
    owner: &str,
    event: &EventId,
    what: Changed,
    id: &str,
) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 2] {
    // By the row's id: its changes stay in one partition, where the next
    // one finds and moves it.
    let shard = shard_of(id, CHANGE_SHARDS) as u32;
    [
        (GSI3PK.to_owned(), s(changes_shard(owner, event, shard))),
        (GSI3SK.to_owned(), s(change_place(what, id))),
    ]
}

/// The changes cursor is the place after which to read, opaque to clients.
pub fn changes_cursor(place: &str) -> String {
    URL_SAFE_NO_PAD.encode(place)
}

pub fn place_from_changes_cursor(cursor: &str) -> Result<String, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let place = String::from_utf8(bytes).map_err(|_| StoreError::BadCursor)?;
    let time = place.split('#').next().unwrap_or_default();
    if time.len() != 13 || !time.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::BadCursor);
    }
    Ok(place)
}

fn template_partition(owner: &str, id: &TemplateId) -> String {
    format!("TEMPLATE#{owner}#{id}")
}

/// One version of a template (`None`: the current one).
pub fn template(owner: &str, id: &TemplateId, version: Option<u32>) -> Key {
    let sort = version.map_or_else(|| "CURRENT".to_owned(), |v| format!("V#{v:06}"));
    key(template_partition(owner, id), sort)
}

/// An organizer's templates (their current versions), in the index.
pub fn templates_of(owner: &str) -> String {
    format!("TEMPLATES#{owner}")
}

pub fn template_in_index(owner: &str, id: &TemplateId) -> Key {
    key(templates_of(owner), id.as_str())
}

/// Everything about one WhatsApp user's opt-outs shares a partition keyed by
/// the user the number reaches: a STOP holds in every form the number comes in.
fn opt_out_partition(phone: &PhoneNumber) -> String {
    format!("OPTOUT#{}", phone.whatsapp_identity())
}

/// The guest's own opt-out (a keyword, Twilio's 21610), for the whole stack.
pub fn opt_out(phone: &PhoneNumber) -> Key {
    key(opt_out_partition(phone), "OPTOUT")
}

/// An organizer's own opt-out of a number.
pub fn organizers_opt_out(phone: &PhoneNumber, owner: &str) -> Key {
    key(opt_out_partition(phone), format!("BY#{owner}"))
}

/// Where a record lives: an organizer's under that organizer.
pub fn opt_out_of(record: &OptOut) -> Key {
    match (&record.by, record.source.is_guests_own()) {
        (Some(owner), false) => organizers_opt_out(&record.phone, owner),
        _ => opt_out(&record.phone),
    }
}

/// That an organizer has invited a number: it may then see the guest's own opt-out.
pub fn invited(phone: &PhoneNumber, owner: &str) -> Key {
    key(opt_out_partition(phone), format!("INVITED#{owner}"))
}

fn idempotency_partition(owner: &str, idempotency_key: &str) -> String {
    format!("IDEM#{owner}#{idempotency_key}")
}

pub fn idempotency(owner: &str, idempotency_key: &str) -> Key {
    key(idempotency_partition(owner, idempotency_key), "IDEM")
}

/// One part of an answer too large for the key's item.
pub fn idempotency_answer_part(owner: &str, idempotency_key: &str, part: u32) -> Key {
    key(
        idempotency_partition(owner, idempotency_key),
        format!("PART#{part:04}"),
    )
}

/// Answers up to this size live in the key's item; larger ones in parts of
/// this size (DynamoDB's item limit is 400 KB, names and keys included).
pub const INLINE_ANSWER_BYTES: usize = 350_000;

/// Every part of a sender's budget.
pub fn budget_partition(sender: &str) -> String {
    format!("BUDGET#{sender}")
}

/// The parts a sender's budget is split into: each batch takes places from
/// one (in turn), so no one item is in a transaction for every batch.
pub const BUDGET_PARTS: usize = 8;

/// Part `part` of a sender's budget ([`crate::domain::budget::Ledger`]).
pub fn budget_part(sender: &str, part: usize) -> Key {
    key(budget_partition(sender), format!("PART#{part:02}"))
}

/// The part number a budget item's sort key names (None: not a part).
pub fn budget_part_number(sort_key: &str) -> Option<usize> {
    sort_key.strip_prefix("PART#")?.parse().ok()
}

/// A recipient counted in the sender's current window: until when, who
/// holds the place, and in which part.
pub fn budget_recipient(sender: &str, recipient: &PhoneNumber) -> Key {
    key(
        format!(
            "{}#{}",
            budget_partition(sender),
            recipient.whatsapp_identity()
        ),
        "BUDGET",
    )
}

/// A Twilio request answered once (the webhook's dedupe).
pub fn delivery(delivery: &str) -> Key {
    key(format!("DELIVERY#{delivery}"), "DELIVERY")
}

/// How long an idempotency key, or a Twilio delivery, is remembered
/// (DynamoDB's TTL removes it).
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 3600;

/// The attribute holding the time an invitation reached `status`.
pub fn timestamp_attribute(status: Status) -> String {
    format!("ts_{status}")
}

/// The job attribute counting its invitations at `status`.
pub fn count_attribute(status: Status) -> String {
    format!("n_{status}")
}

/// Cursors are the index's key of the last item given, opaque to clients.
pub fn encode_cursor(key: &Item) -> String {
    let plain: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str())))
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&plain).expect("strings serialize"))
}

/// The cursor after `item`, an invitation in its event's listing.
pub fn cursor_after(item: &Item) -> String {
    let key: Item = [PK, SK, GSI5PK, GSI5SK]
        .into_iter()
        .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
        .collect();
    encode_cursor(&key)
}

/// A cursor given back, for a listing of the index's `partition`: one from
/// another listing (another event, another organizer) is refused, as
/// DynamoDB would refuse it with an error that is not the client's.
pub fn decode_cursor(cursor: &str, partition: &str) -> Result<Item, StoreError> {
    let bad = || StoreError::BadCursor;
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let plain: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let expected = [PK, SK, GSI5PK, GSI5SK];
    if plain.len() != expected.len() || !expected.iter().all(|k| plain.contains_key(*k)) {
        return Err(bad());
    }
    if plain[GSI5PK] != partition {
        return Err(bad());
    }
    Ok(plain.into_iter().map(|(k, v)| (k, s(v))).collect())
}
