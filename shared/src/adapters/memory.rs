//! Every store port and the send queue in memory, with the same conditional
//! semantics as the DynamoDB and SQS adapters: fast tests of the use cases,
//! no emulator. Not for production: nothing is persisted.

use crate::domain::admission::{AdmissionChunk, Tally};
use crate::domain::budget::{BudgetRules, BudgetState, Ledger};
use crate::domain::guest::{ListedGuest, holds};
use crate::domain::rsvp::{Reply, Rsvp, RsvpHistory};
use crate::domain::{
    Event, EventId, Guest, GuestId, Invitation, InvitationId, Job, JobId, MessageTemplate, OptOut,
    OptOuts, PhoneNumber, SeenOptOuts, Status, TemplateId,
};
use crate::ports::{
    Admission, AdmissionQueue, AdmissionStore, Annotation, AttemptStore, BudgetClaim, BudgetStore,
    BudgetTake, ChunkMessage, DeliveryReport, DeliveryStore, DueReminder, EventStore, GuestChanges,
    GuestPage, GuestStore, IdempotencyClaim, IdempotencyStore, InvitationStore, JobStore, KeyClaim,
    ListQuery, Messenger, OptOutStore, OutboundMessage, Page, ProviderError, ProviderMessage,
    QueueError, Recorded, ReminderStore, ReportQueue, RsvpStore, SendMessage, SendQueue,
    StoreError, TemplateStore, Transition,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// One idempotency key: the request's hash and, once done, the answer.
#[derive(Debug, Clone)]
struct KeyRecord {
    request_hash: String,
    token: String,
    lease_until: i64,
    response: Option<String>,
}

#[derive(Default)]
struct Tables {
    events: BTreeMap<(String, EventId), Event>,
    jobs: HashMap<JobId, Job>,
    /// With the place each was listed at when written (creation time, id).
    invitations: HashMap<InvitationId, (String, Invitation)>,
    idempotency: HashMap<(String, String), KeyRecord>,
    template_versions: HashMap<(String, TemplateId, u32), MessageTemplate>,
    templates: BTreeMap<(String, TemplateId), MessageTemplate>,
    /// By (WhatsApp user, organizer for an organizer's own record).
    opt_outs: HashMap<(String, Option<String>), OptOut>,
    /// Twilio deliveries answered.
    deliveries: HashSet<String>,
    /// Per sender: its budget, in one part; per (sender, WhatsApp user)
    /// the end of their place and who holds it.
    budgets: HashMap<String, Ledger>,
    budget_recipients: HashMap<(String, String), (i64, String)>,
    /// (WhatsApp user, organizer) pairs: the organizer invited the number.
    invited: HashSet<(String, String)>,
    guests: BTreeMap<(String, EventId, GuestId), ListedGuest>,
    /// Every change to a guest list, in order: (owner, event, guest,
    /// removed). A changes cursor is a position in it.
    changes: Vec<(String, EventId, GuestId, bool)>,
    /// Every answer, by (owner, event, guest), oldest first.
    answers: HashMap<(String, EventId, GuestId), Vec<Rsvp>>,
    /// Kept messages, by (owner, event, message id).
    replies: BTreeMap<(String, EventId, String), Reply>,
    /// Failed answer-token tries by (client, window).
    attempts: HashMap<(String, i64), u32>,
    /// Reminder times run: (owner, event, at).
    reminders_done: HashSet<(String, EventId, String)>,
    /// Large sends' chunks, by (job, number).
    chunks: BTreeMap<(JobId, u32), AdmissionChunk>,
}

impl Tables {
    fn insert_invitation(&mut self, inv: &Invitation) {
        let created = inv
            .timestamps
            .get(&Status::Queued)
            .unwrap_or(&inv.updated_at);
        let place = format!("{created}#{}", inv.invitation_id);
        self.invitations
            .insert(inv.invitation_id.clone(), (place, inv.clone()));
        self.note_change(&inv.owner, &inv.event_id, &inv.guest.guest_id, false);
    }

    fn note_change(&mut self, owner: &str, event: &EventId, guest: &GuestId, removed: bool) {
        self.changes
            .push((owner.to_owned(), event.clone(), guest.clone(), removed));
    }

    /// Writes a guest's own fields, keeping their invitation and creation time.
    fn put_guest(
        &mut self,
        owner: &str,
        event: &EventId,
        guest: &Guest,
        at: &str,
    ) -> &mut ListedGuest {
        let key = (owner.to_owned(), event.clone(), guest.guest_id.clone());
        self.note_change(owner, event, &guest.guest_id, false);
        let listed = self.guests.entry(key).or_insert_with(|| ListedGuest {
            guest: guest.clone(),
            created_at: at.to_owned(),
            updated_at: at.to_owned(),
            invitation_id: None,
            rsvp: None,
        });
        listed.guest.name = guest.name.clone();
        listed.guest.phone = guest.phone.clone();
        listed.updated_at = at.to_owned();
        listed
    }
}

/// The changes cursor: a position in the change log.
fn memory_cursor(position: usize) -> String {
    format!("m{position}")
}

fn memory_position(cursor: &str) -> Result<usize, StoreError> {
    cursor
        .strip_prefix('m')
        .and_then(|n| n.parse().ok())
        .ok_or(StoreError::BadCursor)
}

#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().expect("memory store lock")
    }

    /// Drops a job item and keeps its invitations: what a request that
    /// failed before it wrote its job leaves behind.
    pub fn forget_job(&self, id: &JobId) {
        self.tables().jobs.remove(id);
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn put_event(&self, event: &Event) -> Result<(), StoreError> {
        let key = (event.owner.clone(), event.event_id.clone());
        self.tables().events.insert(key, event.clone());
        Ok(())
    }

    async fn get_event(&self, owner: &str, id: &EventId) -> Result<Option<Event>, StoreError> {
        Ok(self
            .tables()
            .events
            .get(&(owner.to_owned(), id.clone()))
            .cloned())
    }

    async fn list_events(&self, owner: &str) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .tables()
            .events
            .iter()
            .filter(|((o, _), _)| o == owner)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn create_job(&self, job: &Job, invitations: &[Invitation]) -> Result<(), StoreError> {
        let mut tables = self.tables();
        for inv in invitations {
            tables.insert_invitation(inv);
        }
        tables.jobs.insert(job.job_id.clone(), job.clone());
        Ok(())
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        Ok(self.tables().jobs.get(id).cloned())
    }
}

#[async_trait]
impl AdmissionStore for MemoryStore {
    async fn put_admission(&self, job: &Job, chunks: &[AdmissionChunk]) -> Result<(), StoreError> {
        let mut tables = self.tables();
        for chunk in chunks {
            tables
                .chunks
                .insert((chunk.job_id.clone(), chunk.number), chunk.clone());
        }
        tables.jobs.insert(job.job_id.clone(), job.clone());
        Ok(())
    }

    async fn get_chunk(
        &self,
        job: &JobId,
        number: u32,
    ) -> Result<Option<AdmissionChunk>, StoreError> {
        Ok(self.tables().chunks.get(&(job.clone(), number)).cloned())
    }

    async fn chunk_admitted(
        &self,
        chunk: &AdmissionChunk,
        tally: &Tally,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let key = (chunk.job_id.clone(), chunk.number);
        match tables.chunks.get_mut(&key) {
            Some(stored) if !stored.done => stored.done = true,
            _ => return Ok(false),
        }
        let job = tables
            .jobs
            .get_mut(&chunk.job_id)
            .ok_or_else(|| StoreError::Corrupt(format!("chunk of missing job {}", chunk.job_id)))?;
        for (status, n) in &tally.counts {
            *job.counts.entry(*status).or_insert(0) += n;
        }
        job.total += tally.total;
        if let Some(admission) = job.admission.as_mut() {
            admission.chunks_done += 1;
            admission.left_out += tally.left_out;
        }
        Ok(true)
    }

    async fn stalled_chunks(
        &self,
        before: &str,
        limit: usize,
    ) -> Result<Vec<ChunkMessage>, StoreError> {
        let tables = self.tables();
        let mut stalled: Vec<&AdmissionChunk> = tables
            .chunks
            .values()
            .filter(|c| !c.done && c.created_at.as_str() < before)
            .collect();
        stalled.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(stalled
            .into_iter()
            .take(limit)
            .map(|c| ChunkMessage {
                job_id: c.job_id.clone(),
                chunk: c.number,
            })
            .collect())
    }
}

#[async_trait]
impl InvitationStore for MemoryStore {
    async fn get_invitation(&self, id: &InvitationId) -> Result<Option<Invitation>, StoreError> {
        Ok(self
            .tables()
            .invitations
            .get(id)
            .map(|(_, inv)| inv.clone()))
    }

    async fn get_invitations(&self, ids: &[InvitationId]) -> Result<Vec<Invitation>, StoreError> {
        let tables = self.tables();
        Ok(ids
            .iter()
            .filter_map(|id| tables.invitations.get(id).map(|(_, inv)| inv.clone()))
            .collect())
    }

    async fn transition(&self, t: &Transition) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let Some((_, inv)) = tables.invitations.get(&t.invitation_id) else {
            return Ok(false);
        };
        if inv.status != t.from || inv.attempt != t.attempt {
            return Ok(false);
        }
        let moves_counter = t.from != t.to;
        if moves_counter && !tables.jobs.contains_key(&t.job_id) {
            return Ok(false);
        }
        let (_, inv) = tables
            .invitations
            .get_mut(&t.invitation_id)
            .expect("checked above");
        inv.status = t.to;
        inv.updated_at = t.at.clone();
        inv.due_at = t.due_at.clone();
        if t.clear_flag {
            inv.flag = None;
        }
        if let Some(next) = t.new_attempt {
            inv.attempt = next;
            inv.message_sid = None;
            inv.flag = None;
            if t.error.is_none() {
                inv.error_code = None;
                inv.error_message = None;
            }
            inv.timestamps.clear();
        }
        if let Some(renew) = &t.renew {
            inv.guest = renew.guest.clone();
            if let Some(template) = &renew.template {
                inv.template = Some(template.clone());
            }
        }
        inv.timestamps.insert(t.to, t.at.clone());
        if let Some(sid) = &t.message_sid {
            inv.message_sid = Some(sid.clone());
        }
        if let Some(err) = &t.error {
            inv.error_code = Some(err.code.clone());
            inv.error_message = Some(err.message.clone());
        }
        let (owner, event, guest) = (
            inv.owner.clone(),
            inv.event_id.clone(),
            inv.guest.guest_id.clone(),
        );
        if moves_counter {
            let job = tables.jobs.get_mut(&t.job_id).expect("checked above");
            *job.counts.entry(t.from).or_insert(0) -= 1;
            *job.counts.entry(t.to).or_insert(0) += 1;
        }
        tables.note_change(&owner, &event, &guest, false);
        Ok(true)
    }

    async fn annotate(
        &self,
        id: &InvitationId,
        attempt: u32,
        note: &Annotation,
    ) -> Result<bool, StoreError> {
        if *note == Annotation::default() {
            return Ok(true);
        }
        let mut tables = self.tables();
        let Some((_, inv)) = tables.invitations.get_mut(id) else {
            return Ok(false);
        };
        if inv.attempt != attempt {
            return Ok(false);
        }
        // Looked at by a run that started before the invitation last moved.
        if note
            .touched_at
            .as_ref()
            .is_some_and(|at| inv.updated_at > *at)
        {
            return Ok(false);
        }
        if inv.message_sid.is_none() {
            inv.message_sid = note.message_sid.clone();
        }
        if let Some((status, at)) = &note.late_timestamp {
            inv.timestamps.entry(*status).or_insert_with(|| at.clone());
        }
        if let Some(flag) = &note.flag {
            inv.flag = Some(flag.clone());
        }
        if let Some(at) = &note.touched_at {
            inv.updated_at = at.clone();
        }
        if note.flag.is_some() || note.touched_at.is_some() {
            // What the guest's row shows changes (a Retry button, its time).
            let (owner, event, guest) = (
                inv.owner.clone(),
                inv.event_id.clone(),
                inv.guest.guest_id.clone(),
            );
            tables.note_change(&owner, &event, &guest, false);
        }
        Ok(true)
    }

    async fn list_invitations(&self, q: &ListQuery) -> Result<Page, StoreError> {
        let after = match &q.cursor {
            Some(cursor) => Some(
                cursor
                    .strip_prefix(CURSOR_PREFIX)
                    .ok_or(StoreError::BadCursor)?
                    .to_owned(),
            ),
            None => None,
        };
        let tables = self.tables();
        let mut matching: Vec<&(String, Invitation)> = tables
            .invitations
            .values()
            .filter(|(place, inv)| {
                inv.owner == q.owner
                    && inv.event_id == q.event_id
                    && q.status.is_none_or(|s| inv.status == s)
                    && after.as_ref().is_none_or(|a| place > a)
            })
            .collect();
        matching.sort_by(|a, b| a.0.cmp(&b.0));
        let limit = q.limit as usize;
        let next_cursor =
            (matching.len() > limit).then(|| format!("{CURSOR_PREFIX}{}", matching[limit - 1].0));
        Ok(Page {
            items: matching
                .into_iter()
                .take(limit)
                .map(|(_, inv)| inv.clone())
                .collect(),
            next_cursor,
        })
    }

    async fn in_flight_since(
        &self,
        status: Status,
        before: &str,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError> {
        let tables = self.tables();
        let mut found: Vec<Invitation> = tables
            .invitations
            .values()
            .map(|(_, inv)| inv)
            .filter(|inv| inv.status == status && inv.in_flight_since() < before)
            .cloned()
            .collect();
        found.sort_by(|a, b| a.in_flight_since().cmp(b.in_flight_since()));
        found.truncate(limit);
        Ok(found)
    }
}

const CURSOR_PREFIX: &str = "memory:";

impl MemoryStore {
    fn take_one(
        &self,
        sender: &str,
        claim: &BudgetClaim,
        rules: &BudgetRules,
        now: i64,
    ) -> BudgetTake {
        let mut tables = self.tables();
        let who = (sender.to_owned(), claim.recipient.whatsapp_identity());
        if tables
            .budget_recipients
            .get(&who)
            .is_some_and(|(until, holder)| *until > now && *holder == claim.holder)
        {
            return BudgetTake::AlreadyCounted;
        }
        let ledger = tables.budgets.entry(sender.to_owned()).or_default();
        ledger.prune(rules.limit, rules.window_seconds, now);
        if ledger.free(rules.limit, rules.window_seconds, now) == 0 {
            let until = ledger
                .next_free_at(rules.limit, rules.window_seconds, now)
                .unwrap_or(now);
            return BudgetTake::Exhausted { until };
        }
        ledger.hold(rules.until, 1);
        tables
            .budget_recipients
            .insert(who, (rules.until, claim.holder.clone()));
        BudgetTake::Counted
    }
}

#[async_trait]
impl GuestStore for MemoryStore {
    async fn get_guests(
        &self,
        owner: &str,
        event: &EventId,
        ids: &[GuestId],
    ) -> Result<Vec<ListedGuest>, StoreError> {
        let tables = self.tables();
        let wanted: HashSet<&GuestId> = ids.iter().collect();
        Ok(wanted
            .into_iter()
            .filter_map(|id| {
                tables
                    .guests
                    .get(&(owner.to_owned(), event.clone(), id.clone()))
                    .cloned()
            })
            .collect())
    }

    async fn guests_page(
        &self,
        owner: &str,
        event: &EventId,
        after: Option<&GuestId>,
        limit: usize,
    ) -> Result<GuestPage, StoreError> {
        let tables = self.tables();
        let mut all = tables
            .guests
            .iter()
            .filter(|((o, e, id), _)| o == owner && e == event && after.is_none_or(|a| id > a))
            .map(|(_, g)| g.clone());
        let items: Vec<ListedGuest> = all.by_ref().take(limit).collect();
        Ok(GuestPage {
            more: all.next().is_some(),
            items,
        })
    }

    async fn put_guests(
        &self,
        owner: &str,
        event: &EventId,
        guests: &[Guest],
        at: &str,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        for guest in guests {
            tables.put_guest(owner, event, guest, at).guest.rsvp_token = guest.rsvp_token.clone();
        }
        Ok(())
    }

    async fn remove_guest(
        &self,
        owner: &str,
        event: &EventId,
        id: &GuestId,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let removed = tables
            .guests
            .remove(&(owner.to_owned(), event.clone(), id.clone()))
            .is_some();
        if removed {
            tables.note_change(owner, event, id, true);
        }
        Ok(removed)
    }

    async fn guest_changes(
        &self,
        owner: &str,
        event: &EventId,
        since: Option<&str>,
        limit: usize,
    ) -> Result<GuestChanges, StoreError> {
        let from = since.map(memory_position).transpose()?.unwrap_or(0);
        let tables = self.tables();
        let (mut changed, mut removed) = (Vec::new(), Vec::new());
        let mut position = from;
        for (o, e, guest, gone) in tables.changes.iter().skip(from) {
            if changed.len() + removed.len() >= limit {
                break;
            }
            position += 1;
            if o != owner || e != event {
                continue;
            }
            let list = if *gone { &mut removed } else { &mut changed };
            if !list.contains(guest) {
                list.push(guest.clone());
            }
        }
        Ok(GuestChanges {
            changed,
            removed,
            cursor: memory_cursor(position),
            more: position < tables.changes.len(),
        })
    }

    fn changes_from_now(&self) -> String {
        memory_cursor(self.tables().changes.len())
    }

    async fn admit(
        &self,
        invitations: &[Invitation],
        resend: bool,
    ) -> Result<Vec<Admission>, StoreError> {
        let mut tables = self.tables();
        let mut answers = Vec::with_capacity(invitations.len());
        for inv in invitations {
            let key = (
                inv.owner.clone(),
                inv.event_id.clone(),
                inv.guest.guest_id.clone(),
            );
            let pointer = tables
                .guests
                .get(&key)
                .and_then(|g| g.invitation_id.as_ref());
            if pointer == Some(&inv.invitation_id) {
                // An earlier try wrote it with its guest: taken as written.
                answers.push(Admission::Admitted);
                continue;
            }
            let listed = tables.guests.get(&key);
            let held = listed
                .and_then(|g| Some((g, g.invitation_id.as_ref()?)))
                .filter(|(_, id)| **id != inv.invitation_id)
                .and_then(|(g, id)| Some((g, tables.invitations.get(id)?)))
                .filter(|(g, (_, held))| holds(held, &g.guest.phone))
                .map(|(_, (_, held))| held.clone());
            if let Some(held) = held.filter(|_| !resend) {
                answers.push(Admission::AlreadyInvited(Box::new(held)));
                continue;
            }
            // The list wins: a listed guest keeps their name and number.
            let guest = listed.map_or_else(|| inv.guest.clone(), |g| g.guest.clone());
            tables.insert_invitation(inv);
            let listed = tables.put_guest(&inv.owner, &inv.event_id, &guest, &inv.updated_at);
            listed.invitation_id = Some(inv.invitation_id.clone());
            answers.push(Admission::Admitted);
        }
        Ok(answers)
    }
}

#[async_trait]
impl BudgetStore for MemoryStore {
    async fn take_budgets(
        &self,
        sender: &str,
        claims: &[BudgetClaim],
        rules: &BudgetRules,
        now: i64,
    ) -> Result<Vec<BudgetTake>, StoreError> {
        let mut takes = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for claim in claims {
            // The same WhatsApp user twice in one batch is counted once.
            if !seen.insert(claim.recipient.whatsapp_identity()) {
                takes.push(BudgetTake::AlreadyCounted);
                continue;
            }
            takes.push(self.take_one(sender, claim, rules, now));
        }
        Ok(takes)
    }

    async fn release_budget(
        &self,
        sender: &str,
        claim: &BudgetClaim,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let who = (sender.to_owned(), claim.recipient.whatsapp_identity());
        let until = match tables.budget_recipients.get(&who) {
            Some((until, holder)) if *until > now && *holder == claim.holder => *until,
            _ => return Ok(false),
        };
        tables.budget_recipients.remove(&who);
        Ok(tables
            .budgets
            .get_mut(sender)
            .is_some_and(|ledger| ledger.release(until)))
    }

    async fn learn_budget(
        &self,
        sender: &str,
        limit: u32,
        window_seconds: i64,
        now: i64,
    ) -> Result<u32, StoreError> {
        let mut tables = self.tables();
        let ledger = tables.budgets.entry(sender.to_owned()).or_default();
        ledger.learn(limit, window_seconds, now);
        Ok(ledger.limit(limit, window_seconds, now))
    }

    async fn budget_state(&self, sender: &str) -> Result<BudgetState, StoreError> {
        let tables = self.tables();
        Ok(BudgetState {
            parts: vec![tables.budgets.get(sender).cloned().unwrap_or_default()],
        })
    }
}

#[async_trait]
impl RsvpStore for MemoryStore {
    async fn record_rsvp(
        &self,
        owner: &str,
        event: &EventId,
        guest: &GuestId,
        rsvp: &Rsvp,
    ) -> Result<Recorded, StoreError> {
        let mut tables = self.tables();
        let key = (owner.to_owned(), event.clone(), guest.clone());
        let Some(listed) = tables.guests.get_mut(&key) else {
            return Ok(Recorded::NoSuchGuest);
        };
        let same = |r: &Rsvp| r.answer == rsvp.answer && r.companions == rsvp.companions;
        if listed.rsvp.as_ref().is_some_and(same) {
            return Ok(Recorded::Repeated);
        }
        listed.rsvp = Some(rsvp.clone());
        tables.note_change(owner, event, guest, false);
        tables.answers.entry(key).or_default().push(rsvp.clone());
        Ok(Recorded::Recorded)
    }

    async fn rsvp_history(
        &self,
        owner: &str,
        event: &EventId,
        guest: &GuestId,
    ) -> Result<RsvpHistory, StoreError> {
        let key = (owner.to_owned(), event.clone(), guest.clone());
        let answers = self.tables().answers.get(&key).cloned().unwrap_or_default();
        Ok(RsvpHistory::new(answers))
    }

    async fn keep_reply(
        &self,
        owner: &str,
        event: &EventId,
        reply: &Reply,
    ) -> Result<(), StoreError> {
        let key = (owner.to_owned(), event.clone(), reply.message_sid.clone());
        self.tables().replies.insert(key, reply.clone());
        Ok(())
    }

    async fn replies(
        &self,
        owner: &str,
        event: &EventId,
        limit: usize,
    ) -> Result<Vec<Reply>, StoreError> {
        let mut found: Vec<Reply> = self
            .tables()
            .replies
            .iter()
            .filter(|((o, e, _), _)| o == owner && e == event)
            .map(|(_, r)| r.clone())
            .collect();
        found.sort_by(|a, b| b.at.cmp(&a.at));
        found.truncate(limit);
        Ok(found)
    }

    async fn invitations_to(
        &self,
        phone: &PhoneNumber,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError> {
        let user = phone.whatsapp_identity();
        let mut found: Vec<(String, Invitation)> = self
            .tables()
            .invitations
            .values()
            .filter(|(_, i)| i.guest.phone.whatsapp_identity() == user)
            .cloned()
            .collect();
        found.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(found.into_iter().take(limit).map(|(_, i)| i).collect())
    }
}

#[async_trait]
impl ReminderStore for MemoryStore {
    async fn due_reminders(&self, since: &str, now: &str) -> Result<Vec<DueReminder>, StoreError> {
        let tables = self.tables();
        let mut due: Vec<DueReminder> = tables
            .events
            .values()
            .flat_map(|e| {
                e.reminder_instants().into_iter().map(|at| DueReminder {
                    owner: e.owner.clone(),
                    event_id: e.event_id.clone(),
                    at: crate::domain::reminder::scheduled_key(at),
                })
            })
            .filter(|d| d.at.as_str() > since && d.at.as_str() <= now)
            .filter(|d| {
                !tables.reminders_done.contains(&(
                    d.owner.clone(),
                    d.event_id.clone(),
                    d.at.clone(),
                ))
            })
            .collect();
        due.sort_by(|a, b| a.at.cmp(&b.at));
        Ok(due)
    }

    async fn reminder_done(&self, due: &DueReminder) -> Result<(), StoreError> {
        self.tables().reminders_done.insert((
            due.owner.clone(),
            due.event_id.clone(),
            due.at.clone(),
        ));
        Ok(())
    }
}

#[async_trait]
impl AttemptStore for MemoryStore {
    async fn failed_attempts(&self, client: &str, window: i64) -> Result<u32, StoreError> {
        let key = (client.to_owned(), window);
        Ok(self.tables().attempts.get(&key).copied().unwrap_or(0))
    }

    async fn add_failed_attempt(
        &self,
        client: &str,
        window: i64,
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        *self
            .tables()
            .attempts
            .entry((client.to_owned(), window))
            .or_insert(0) += 1;
        Ok(())
    }
}

#[async_trait]
impl DeliveryStore for MemoryStore {
    async fn delivery_seen(&self, delivery: &str) -> Result<bool, StoreError> {
        Ok(self.tables().deliveries.contains(delivery))
    }

    async fn record_delivery(&self, delivery: &str) -> Result<(), StoreError> {
        self.tables().deliveries.insert(delivery.to_owned());
        Ok(())
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        claim: &KeyClaim,
    ) -> Result<IdempotencyClaim, StoreError> {
        let mut tables = self.tables();
        let key = (owner.to_owned(), key.to_owned());
        let free = match tables.idempotency.get(&key) {
            None => true,
            Some(record) => {
                record.token == claim.token
                    || (record.response.is_none()
                        && record.request_hash == claim.request_hash
                        && record.lease_until < claim.now)
            }
        };
        if free {
            tables.idempotency.insert(
                key,
                KeyRecord {
                    request_hash: claim.request_hash.clone(),
                    token: claim.token.clone(),
                    lease_until: claim.lease_until,
                    response: None,
                },
            );
            return Ok(IdempotencyClaim::New);
        }
        let record = &tables.idempotency[&key];
        Ok(match &record.response {
            Some(response) => IdempotencyClaim::Done {
                request_hash: record.request_hash.clone(),
                response: response.clone(),
            },
            None => IdempotencyClaim::InProgress {
                request_hash: record.request_hash.clone(),
            },
        })
    }

    async fn complete_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        response: &str,
    ) -> Result<(), StoreError> {
        // Like DynamoDB's update: completes the claim the caller made.
        if let Some(record) = self
            .tables()
            .idempotency
            .get_mut(&(owner.to_owned(), key.to_owned()))
        {
            record.response = Some(response.to_owned());
        }
        Ok(())
    }

    async fn release_idempotency_key(&self, owner: &str, key: &str) -> Result<(), StoreError> {
        self.tables()
            .idempotency
            .remove(&(owner.to_owned(), key.to_owned()));
        Ok(())
    }
}

#[async_trait]
impl TemplateStore for MemoryStore {
    async fn put_template(
        &self,
        template: &MessageTemplate,
        replaces: Option<u32>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let owner = template.owner.clone();
        let id = template.template_id.clone();
        let version_key = (owner.clone(), id.clone(), template.version);
        let current = tables.templates.get(&(owner.clone(), id.clone()));
        let current_ok = match replaces {
            None => current.is_none(),
            Some(previous) => current.is_some_and(|c| c.version == previous),
        };
        if !current_ok || tables.template_versions.contains_key(&version_key) {
            return Ok(false);
        }
        tables
            .template_versions
            .insert(version_key, template.clone());
        tables.templates.insert((owner, id), template.clone());
        Ok(true)
    }

    async fn get_template(
        &self,
        owner: &str,
        id: &TemplateId,
        version: Option<u32>,
    ) -> Result<Option<MessageTemplate>, StoreError> {
        let tables = self.tables();
        Ok(match version {
            Some(v) => tables
                .template_versions
                .get(&(owner.to_owned(), id.clone(), v))
                .cloned(),
            None => tables
                .templates
                .get(&(owner.to_owned(), id.clone()))
                .cloned(),
        })
    }

    async fn list_templates(&self, owner: &str) -> Result<Vec<MessageTemplate>, StoreError> {
        Ok(self
            .tables()
            .templates
            .iter()
            .filter(|((o, _), _)| o == owner)
            .map(|(_, t)| t.clone())
            .collect())
    }
}

/// Where the memory store keeps a record: the guest's under the WhatsApp
/// user alone, an organizer's with the organizer (as the table does).
fn opt_out_slot(record: &OptOut) -> (String, Option<String>) {
    let organizer = record.by.clone().filter(|_| !record.source.is_guests_own());
    (record.phone.whatsapp_identity(), organizer)
}

#[async_trait]
impl OptOutStore for MemoryStore {
    async fn put_opt_out(
        &self,
        record: &OptOut,
        if_unchanged_since: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let slot = opt_out_slot(record);
        let existing = tables.opt_outs.get(&slot);
        let unchanged = match if_unchanged_since {
            None => true,
            Some("") => existing.is_none(),
            Some(previous) => existing.is_some_and(|e| e.updated_at == previous),
        };
        if !unchanged {
            return Ok(false);
        }
        tables.opt_outs.insert(slot, record.clone());
        Ok(true)
    }

    async fn get_guests_opt_out(&self, phone: &PhoneNumber) -> Result<Option<OptOut>, StoreError> {
        Ok(self
            .tables()
            .opt_outs
            .get(&(phone.whatsapp_identity(), None))
            .cloned())
    }

    async fn opt_out_views(
        &self,
        organizer: &str,
        phones: &[PhoneNumber],
    ) -> Result<Vec<SeenOptOuts>, StoreError> {
        let tables = self.tables();
        Ok(phones
            .iter()
            .map(|phone| {
                let identity = phone.whatsapp_identity();
                let read =
                    |who: Option<String>| tables.opt_outs.get(&(identity.clone(), who)).cloned();
                SeenOptOuts::of(
                    organizer,
                    read(None),
                    read(Some(organizer.to_owned())),
                    tables
                        .invited
                        .contains(&(identity.clone(), organizer.to_owned())),
                )
            })
            .collect())
    }

    async fn note_invited(
        &self,
        organizer: &str,
        phones: &[PhoneNumber],
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        for phone in phones {
            tables
                .invited
                .insert((phone.whatsapp_identity(), organizer.to_owned()));
        }
        Ok(())
    }

    async fn opt_outs_for(&self, wanted: &[(String, PhoneNumber)]) -> Result<OptOuts, StoreError> {
        let tables = self.tables();
        let mut read = OptOuts::default();
        for (owner, phone) in wanted {
            let identity = phone.whatsapp_identity();
            for who in [None, Some(owner.clone())] {
                if let Some(record) = tables.opt_outs.get(&(identity.clone(), who)) {
                    read.add(record.clone());
                }
            }
        }
        Ok(read)
    }
}

/// The send queue in memory: what was enqueued, and a switch to make
/// enqueueing fail.
#[derive(Default)]
pub struct MemoryQueue {
    messages: Mutex<Vec<SendMessage>>,
    dead_letters: Mutex<Vec<(String, String)>>,
    reports: Mutex<Vec<DeliveryReport>>,
    chunks: Mutex<Vec<ChunkMessage>>,
    failing: AtomicBool,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message enqueued so far, in order.
    pub fn messages(&self) -> Vec<SendMessage> {
        self.messages.lock().expect("queue lock").clone()
    }

    /// Bodies and reasons moved to the dead-letter queue.
    pub fn dead_letters(&self) -> Vec<(String, String)> {
        self.dead_letters.lock().expect("queue lock").clone()
    }

    /// Delivery reports deferred so far, in order (as the reports queue).
    pub fn reports(&self) -> Vec<DeliveryReport> {
        self.reports.lock().expect("queue lock").clone()
    }

    /// Chunks of large sends enqueued so far, in order (as the admissions
    /// queue); `take_chunks` empties it, as a consumer would.
    pub fn chunks(&self) -> Vec<ChunkMessage> {
        self.chunks.lock().expect("queue lock").clone()
    }

    pub fn take_chunks(&self) -> Vec<ChunkMessage> {
        std::mem::take(&mut *self.chunks.lock().expect("queue lock"))
    }

    /// From now on, enqueueing fails (`true`) or works again.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

#[async_trait]
impl SendQueue for MemoryQueue {
    async fn enqueue(&self, messages: &[SendMessage]) -> Result<(), QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(QueueError::Backend("the queue is failing (test)".into()));
        }
        self.messages
            .lock()
            .expect("queue lock")
            .extend_from_slice(messages);
        Ok(())
    }

    async fn delay(&self, _receipt_handle: &str, _seconds: u32) -> Result<(), QueueError> {
        Ok(())
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<(), QueueError> {
        self.dead_letters
            .lock()
            .expect("queue lock")
            .push((body.to_owned(), reason.to_owned()));
        Ok(())
    }
}

#[async_trait]
impl AdmissionQueue for MemoryQueue {
    async fn admit_later(&self, chunks: &[ChunkMessage]) -> Result<(), QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(QueueError::Backend("the queue is failing (test)".into()));
        }
        self.chunks
            .lock()
            .expect("queue lock")
            .extend_from_slice(chunks);
        Ok(())
    }
}

#[async_trait]
impl ReportQueue for MemoryQueue {
    async fn defer(&self, report: &DeliveryReport) -> Result<(), QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(QueueError::Backend("the queue is failing (test)".into()));
        }
        self.reports
            .lock()
            .expect("queue lock")
            .push(report.clone());
        Ok(())
    }
}

/// A messenger in memory: keeps what it accepted, and answers each send
/// as told (accepted, unless a refusal waits in its script).
#[derive(Default)]
pub struct MemoryMessenger {
    sent: Mutex<Vec<OutboundMessage>>,
    refusals: Mutex<std::collections::VecDeque<ProviderError>>,
}

impl MemoryMessenger {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next send is answered with `refusal` (then accepted again).
    pub fn refuse_next(&self, refusal: ProviderError) {
        self.refusals
            .lock()
            .expect("messenger lock")
            .push_back(refusal);
    }

    /// Every message accepted so far, in order.
    pub fn sent(&self) -> Vec<OutboundMessage> {
        self.sent.lock().expect("messenger lock").clone()
    }
}

#[async_trait]
impl Messenger for MemoryMessenger {
    async fn send(&self, message: &OutboundMessage) -> Result<String, ProviderError> {
        if let Some(refusal) = self.refusals.lock().expect("messenger lock").pop_front() {
            return Err(refusal);
        }
        let mut sent = self.sent.lock().expect("messenger lock");
        sent.push(message.clone());
        Ok(format!("SM{:032}", sent.len()))
    }

    async fn sent_to(
        &self,
        to: &PhoneNumber,
        since: &str,
    ) -> Result<Vec<ProviderMessage>, ProviderError> {
        let _ = since;
        let sent = self.sent.lock().expect("messenger lock");
        Ok(sent
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, m)| m.to.whatsapp_identity() == to.whatsapp_identity())
            .map(|(i, m)| ProviderMessage {
                sid: format!("SM{:032}", i + 1),
                status: Some(Status::Sent),
                error: None,
                body: body_of(m),
                over_daily_limit: false,
                created_at: String::new(),
            })
            .collect())
    }

    async fn fetch(&self, sid: &str) -> Result<Option<ProviderMessage>, ProviderError> {
        let sent = self.sent.lock().expect("messenger lock");
        let found = (1..=sent.len()).find(|n| format!("SM{n:032}") == sid);
        Ok(found.map(|n| ProviderMessage {
            sid: sid.to_owned(),
            status: Some(Status::Sent),
            error: None,
            body: body_of(&sent[n - 1]),
            over_daily_limit: false,
            created_at: String::new(),
        }))
    }
}

/// A free-form message's text, as a provider keeps it.
fn body_of(message: &OutboundMessage) -> Option<String> {
    match &message.content {
        crate::domain::MessageContent::Body(body) => Some(body.clone()),
        crate::domain::MessageContent::Template { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::budget::STACK_SENDER;

    fn phone(raw: &str) -> PhoneNumber {
        PhoneNumber::parse(raw).unwrap()
    }

    #[tokio::test]
    async fn the_budget_holds_a_place_per_message_gives_back_what_was_not_sent_and_frees_as_holds_end()
     {
        let store = MemoryStore::default();
        let sender = STACK_SENDER;
        let take = |to: &'static str, holder: &'static str, now: i64| {
            let store = &store;
            async move {
                let claim = BudgetClaim {
                    recipient: phone(to),
                    holder: holder.into(),
                };
                let rules = BudgetRules {
                    limit: 2,
                    window_seconds: 30,
                    until: now + 30,
                };
                store
                    .take_budget(sender, &claim, &rules, now)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(take("+5511999990001", "a#1", 0).await, BudgetTake::Counted);
        assert_eq!(take("+5511999990002", "b#1", 5).await, BudgetTake::Counted);
        assert_eq!(
            take("+5521987001234", "c#1", 6).await,
            BudgetTake::Exhausted { until: 30 }
        );
        // The same attempt's redelivery holds its place already.
        assert_eq!(
            take("+5511999990001", "a#1", 7).await,
            BudgetTake::AlreadyCounted
        );
        // Another message to the same guest later in the window counts on
        // beyond the first place: it needs a place of its own.
        assert_eq!(
            take("+5511999990001", "d#1", 7).await,
            BudgetTake::Exhausted { until: 30 }
        );
        // Given back (not sent after all), the place is free at once; only
        // its holder can give it back, once.
        let a = BudgetClaim {
            recipient: phone("+5511999990001"),
            holder: "a#1".into(),
        };
        let not_a = BudgetClaim {
            holder: "a#2".into(),
            ..a.clone()
        };
        assert!(!store.release_budget(sender, &not_a, 8).await.unwrap());
        assert!(store.release_budget(sender, &a, 8).await.unwrap());
        assert!(!store.release_budget(sender, &a, 8).await.unwrap());
        assert_eq!(take("+5521987001234", "c#1", 9).await, BudgetTake::Counted);
        // Places free as their holds end: b's at 35.
        assert_eq!(
            take("+5511999990009", "e#1", 10).await,
            BudgetTake::Exhausted { until: 35 }
        );
        assert_eq!(take("+5511999990009", "e#1", 35).await, BudgetTake::Counted);
        // A refusal teaches the places held now: two.
        store.learn_budget(sender, 2, 30, 36).await.unwrap();
        let state = store.budget_state(sender).await.unwrap();
        assert_eq!(state.held(36), 2);
        assert_eq!(state.parts[0].learned.map(|l| l.limit), Some(2));
    }
}
