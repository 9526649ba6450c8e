//! The narrow interfaces the use cases and handlers depend on, each a
//! capability a handler asks for by name. Adapters: DynamoDB (every store),
//! SQS ([`SendQueue`]), Twilio ([`Messenger`]), and an in-memory one of
//! each store for fast tests ([`crate::adapters::memory`]).

use crate::domain::admission::{AdmissionChunk, Tally};
use crate::domain::budget::{BudgetRules, BudgetState};
use crate::domain::guest::ListedGuest;
use crate::domain::reason::{Action, Reason};
use crate::domain::rsvp::{Reply, Rsvp, RsvpHistory};
use crate::domain::{
    Event, EventId, FieldError, Guest, GuestId, Invitation, InvitationId, Job, JobId,
    MessageContent, MessageTemplate, OptOut, OptOuts, PhoneNumber, SeenOptOuts, Status, TemplateId,
};
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store request failed: {0}")]
    Backend(String),
    #[error("the cursor is not one this API returned")]
    BadCursor,
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

/// A conditional status change: applies only if the invitation is still at
/// `from` on `attempt`, and moves the job's counters in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub invitation_id: InvitationId,
    pub job_id: JobId,
    pub attempt: u32,
    pub from: Status,
    pub to: Status,
    pub at: String,
    /// Starts a new attempt (retry): clears the previous attempt's outcome.
    pub new_attempt: Option<u32>,
    pub message_sid: Option<String>,
    pub error: Option<ErrorInfo>,
    /// Clears the attempt's flag: the provider's own report answers
    /// whether it accepted the message.
    pub clear_flag: bool,
    /// A waiting invitation not to be sent before then (WhatsApp held its
    /// marketing message back): it sorts there among those waiting.
    pub due_at: Option<String>,
    /// A retry's new attempt rendered again from things as they are now.
    pub renew: Option<Renewal>,
}

/// What a retry's new attempt is rendered from: the guest as listed now
/// (name, number, RSVP link) and the template's current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    pub guest: Guest,
    pub template: Option<crate::domain::TemplateRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

impl From<Reason> for ErrorInfo {
    fn from(reason: Reason) -> Self {
        Self {
            code: reason.code.into(),
            message: reason.message.into(),
        }
    }
}

/// Facts recorded on the current attempt without changing its status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotation {
    pub message_sid: Option<String>,
    /// The time a status was reached that arrived after a later one (reordered callbacks).
    pub late_timestamp: Option<(Status, String)>,
    pub flag: Option<String>,
    /// Looked at now by reconciliation (its last change moves to this time,
    /// so it is not looked at again before its threshold).
    pub touched_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<Invitation>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub owner: String,
    pub event_id: EventId,
    pub status: Option<Status>,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// What a repeated `Idempotency-Key` finds.
/// One request's claim on an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    pub request_hash: String,
    /// Unique to this request: a claim whose answer was lost is still known
    /// as its own when the write is repeated.
    pub token: String,
    /// Epoch seconds now, and until when the claim holds. A claim whose
    /// request died (a timeout) is taken over after it, by the same request.
    pub now: i64,
    pub lease_until: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First use, or a takeover of a dead claim: the caller does the work and
    /// then completes the key.
    New,
    /// The first request is still being processed.
    InProgress { request_hash: String },
    /// The first request finished with this response body.
    Done {
        request_hash: String,
        response: String,
    },
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Writes the event and notes its reminder times for scheduled runs.
    async fn put_event(&self, event: &Event) -> Result<(), StoreError>;
    /// Events are namespaced by their owner: two organizers may use the same id.
    async fn get_event(&self, owner: &str, id: &EventId) -> Result<Option<Event>, StoreError>;
    async fn list_events(&self, owner: &str) -> Result<Vec<Event>, StoreError>;
}

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Writes a job and its invitations (queued or skipped), the job last:
    /// a job that exists has all its invitations.
    async fn create_job(&self, job: &Job, invitations: &[Invitation]) -> Result<(), StoreError>;
    /// Writes the job alone: its invitations are written already (a send
    /// admits them with their guests).
    async fn put_job(&self, job: &Job) -> Result<(), StoreError> {
        self.create_job(job, &[]).await
    }
    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError>;
}

#[async_trait]
pub trait InvitationStore: Send + Sync {
    async fn get_invitation(&self, id: &InvitationId) -> Result<Option<Invitation>, StoreError>;
    /// Several at once (strongly consistent); missing ones are left out.
    async fn get_invitations(&self, ids: &[InvitationId]) -> Result<Vec<Invitation>, StoreError>;
    /// Ok(false) when the invitation was no longer at `from`/`attempt`.
    async fn transition(&self, t: &Transition) -> Result<bool, StoreError>;
    /// Ok(false) when the invitation has moved on to another attempt.
    async fn annotate(
        &self,
        id: &InvitationId,
        attempt: u32,
        note: &Annotation,
    ) -> Result<bool, StoreError>;
    /// An event's invitations, oldest first, a page at a time.
    async fn list_invitations(&self, query: &ListQuery) -> Result<Page, StoreError>;
    /// Invitations at `status` (queued, sending or sent) whose last change
    /// came before `before` (RFC 3339), oldest first, at most `limit`.
    async fn in_flight_since(
        &self,
        status: Status,
        before: &str,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError>;
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims an idempotency key for 24 hours, or reports its earlier use.
    async fn claim_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        claim: &KeyClaim,
    ) -> Result<IdempotencyClaim, StoreError>;
    async fn complete_idempotency_key(
        &self,
        owner: &str,
        key: &str,
        response: &str,
    ) -> Result<(), StoreError>;
    /// Forgets a claim whose request failed, so a retry can do the work.
    async fn release_idempotency_key(&self, owner: &str, key: &str) -> Result<(), StoreError>;
}

/// The provider's Content templates, as approved: what a preview shows of
/// a template the provider renders.
#[async_trait]
pub trait ContentLibrary: Send + Sync {
    /// The definition of the Content template `sid`; None when the
    /// provider has no such template.
    async fn definition(
        &self,
        sid: &str,
    ) -> Result<Option<crate::domain::ContentDefinition>, String>;
}

#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// Writes a template version and makes it the template's current one.
    /// `replaces` is the current version it supersedes (None: the template
    /// is new). Ok(false) when that is no longer so: another version was
    /// written meanwhile, or (creating) the template exists.
    async fn put_template(
        &self,
        template: &MessageTemplate,
        replaces: Option<u32>,
    ) -> Result<bool, StoreError>;
    /// The given version, or the current one.
    async fn get_template(
        &self,
        owner: &str,
        id: &TemplateId,
        version: Option<u32>,
    ) -> Result<Option<MessageTemplate>, StoreError>;
    /// The current version of each of the organizer's templates.
    async fn list_templates(&self, owner: &str) -> Result<Vec<MessageTemplate>, StoreError>;
}

#[async_trait]
pub trait OptOutStore: Send + Sync {
    /// Records an opt-out (or opt-in): the guest's own for the whole stack,
    /// an organizer's (`record.by`) for that organizer. With
    /// `if_unchanged_since`, only if that record is still the one last
    /// changed at that time (or, given "", absent); Ok(false) otherwise.
    async fn put_opt_out(
        &self,
        record: &OptOut,
        if_unchanged_since: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// The guest's own record for the WhatsApp user `phone` reaches.
    async fn get_guests_opt_out(&self, phone: &PhoneNumber) -> Result<Option<OptOut>, StoreError>;
    /// What `organizer` may know of each of `phones`' opt-outs, in order,
    /// in one read whatever the numbers' state.
    async fn opt_out_views(
        &self,
        organizer: &str,
        phones: &[PhoneNumber],
    ) -> Result<Vec<SeenOptOuts>, StoreError>;
    /// [`Self::opt_out_views`] of one number.
    async fn opt_out_view(
        &self,
        organizer: &str,
        phone: &PhoneNumber,
    ) -> Result<SeenOptOuts, StoreError> {
        let mut views = self
            .opt_out_views(organizer, std::slice::from_ref(phone))
            .await?;
        Ok(views.remove(0))
    }
    /// Notes that `organizer` invited these numbers: from then on it sees
    /// their guests' own opt-outs.
    async fn note_invited(&self, organizer: &str, phones: &[PhoneNumber])
    -> Result<(), StoreError>;
    /// The records that may bind these (organizer, number) pairs, in
    /// whatever form each opt-out was recorded.
    async fn opt_outs_for(&self, wanted: &[(String, PhoneNumber)]) -> Result<OptOuts, StoreError>;
}

/// A page of an event's guest list, in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestPage {
    pub items: Vec<ListedGuest>,
    /// More guests may follow the last one.
    pub more: bool,
}

/// What changed in an event's guest list after a changes cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestChanges {
    /// Guests added or edited, or whose invitations changed; once each.
    pub changed: Vec<GuestId>,
    pub removed: Vec<GuestId>,
    /// Where the next read of changes starts.
    pub cursor: String,
    /// More changes wait after `cursor`: read again at once.
    pub more: bool,
}

/// What a send found for one guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The invitation was written, and the guest now points at it.
    Admitted,
    /// Left out: the guest's latest invitation for the event still holds
    /// them ([`crate::domain::guest::holds_the_guest`]) and the send did not
    /// say it resends.
    AlreadyInvited(Box<Invitation>),
}

/// An event's guest list. A guest's latest invitation is written with the
/// guest's pointer to it, so two sends at once cannot both invite one guest.
#[async_trait]
pub trait GuestStore: Send + Sync {
    /// The event's guests with these ids; missing ones are left out.
    async fn get_guests(
        &self,
        owner: &str,
        event: &EventId,
        ids: &[GuestId],
    ) -> Result<Vec<ListedGuest>, StoreError>;
    /// At most `limit` guests, in id order, after the guest `after`.
    async fn guests_page(
        &self,
        owner: &str,
        event: &EventId,
        after: Option<&GuestId>,
        limit: usize,
    ) -> Result<GuestPage, StoreError>;
    /// Adds these guests or changes their names, numbers and tokens; their
    /// invitations stay as they are.
    async fn put_guests(
        &self,
        owner: &str,
        event: &EventId,
        guests: &[Guest],
        at: &str,
    ) -> Result<(), StoreError>;
    /// Ok(false) when there was no such guest.
    async fn remove_guest(
        &self,
        owner: &str,
        event: &EventId,
        id: &GuestId,
    ) -> Result<bool, StoreError>;
    /// What changed after `since` (None: from the start), at most about `limit`.
    async fn guest_changes(
        &self,
        owner: &str,
        event: &EventId,
        since: Option<&str>,
        limit: usize,
    ) -> Result<GuestChanges, StoreError>;
    /// A cursor from which [`Self::guest_changes`] answers what changes from now on.
    fn changes_from_now(&self) -> String;
    /// Writes each invitation (all of one event) and points its guest at it,
    /// adding the guest to the list, unless the guest's latest invitation
    /// holds them and `resend` is false. One answer per invitation, in order.
    async fn admit(
        &self,
        invitations: &[Invitation],
        resend: bool,
    ) -> Result<Vec<Admission>, StoreError>;
}

/// What recording an answer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// It is now the guest's latest answer, and in their history.
    Recorded,
    /// The guest's latest answer already says the same (a double tap, a
    /// retried request): nothing was written.
    Repeated,
    /// The event has no such guest (removed, or never on the list).
    NoSuchGuest,
}

/// Guests' RSVP answers, and what else they wrote back.
#[async_trait]
pub trait RsvpStore: Send + Sync {
    /// Records `rsvp` as the guest's latest answer and adds it to their
    /// history, unless their latest says the same already; under
    /// concurrency, one of two equal answers is recorded.
    async fn record_rsvp(
        &self,
        owner: &str,
        event: &EventId,
        guest: &GuestId,
        rsvp: &Rsvp,
    ) -> Result<Recorded, StoreError>;
    /// Every answer the guest gave, oldest first.
    async fn rsvp_history(
        &self,
        owner: &str,
        event: &EventId,
        guest: &GuestId,
    ) -> Result<RsvpHistory, StoreError>;
    /// Keeps a guest's message that was not an answer, for the organizer
    /// to read; the same message (by its id) is kept once.
    async fn keep_reply(
        &self,
        owner: &str,
        event: &EventId,
        reply: &Reply,
    ) -> Result<(), StoreError>;
    /// The event's kept messages, newest first, at most `limit`.
    async fn replies(
        &self,
        owner: &str,
        event: &EventId,
        limit: usize,
    ) -> Result<Vec<Reply>, StoreError>;
    /// The invitations sent to the WhatsApp user `phone` reaches (in any
    /// form), newest first, at most `limit`: whom a typed reply answers.
    async fn invitations_to(
        &self,
        phone: &PhoneNumber,
        limit: usize,
    ) -> Result<Vec<Invitation>, StoreError>;
}

/// One event's reminder time that has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    pub owner: String,
    pub event_id: EventId,
    /// The reminder time's key ([`crate::domain::reminder::scheduled_key`]).
    pub at: String,
}

/// Where scheduled runs find reminder times: writing an event notes its
/// reminder times ([`EventStore::put_event`]); a time stays due until done.
#[async_trait]
pub trait ReminderStore: Send + Sync {
    /// Reminder times at or before `now` and after `since` (both RFC 3339,
    /// UTC), oldest first.
    async fn due_reminders(&self, since: &str, now: &str) -> Result<Vec<DueReminder>, StoreError>;
    /// Forgets a reminder time once its run is done (or it no longer is one).
    async fn reminder_done(&self, due: &DueReminder) -> Result<(), StoreError>;
}

/// Tries of answer tokens that opened nothing, per client (an IP address)
/// and time window: so that guessing tokens through the RSVP page is slow.
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// The client's failed tries in the window (its start, epoch seconds).
    async fn failed_attempts(&self, client: &str, window: i64) -> Result<u32, StoreError>;
    /// Counts one more, remembered until `expires_at` (epoch seconds).
    async fn add_failed_attempt(
        &self,
        client: &str,
        window: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;
}

/// What counting a recipient against a sender's daily limit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetTake {
    /// Counted now: a place is theirs until the take's `until`.
    Counted,
    /// Holds a place already: the same attempt's earlier delivery took it,
    /// or the same WhatsApp user is earlier in the batch.
    AlreadyCounted,
    /// Every place is held: the first frees at `until` (epoch seconds).
    Exhausted { until: i64 },
}

/// A recipient to count, and who would hold the place
/// ([`crate::domain::budget::holder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetClaim {
    pub recipient: PhoneNumber,
    pub holder: String,
}

/// WhatsApp's limit on unique recipients a sender reaches in a moving
/// window (24 hours), kept exactly under concurrency: no two senders can
/// both take the last place. A place is held only for a recipient
/// messaged: one not sent after all is given back. `sender` names the
/// budget ([`crate::domain::budget::STACK_SENDER`]).
#[async_trait]
pub trait BudgetStore: Send + Sync {
    /// Counts each claim's recipient (as the WhatsApp user it reaches), in
    /// order, against the rules' limit, holding a place until the rules'
    /// `until`; one answer per claim. A claim whose holder holds a place
    /// already takes no second.
    async fn take_budgets(
        &self,
        sender: &str,
        claims: &[BudgetClaim],
        rules: &BudgetRules,
        now: i64,
    ) -> Result<Vec<BudgetTake>, StoreError>;
    /// [`Self::take_budgets`] for one claim.
    async fn take_budget(
        &self,
        sender: &str,
        claim: &BudgetClaim,
        rules: &BudgetRules,
        now: i64,
    ) -> Result<BudgetTake, StoreError> {
        let takes = self
            .take_budgets(sender, std::slice::from_ref(claim), rules, now)
            .await?;
        Ok(takes[0])
    }
    /// Gives back the place `claim`'s holder holds for its recipient (the
    /// message was not sent after all); false when it holds none.
    async fn release_budget(
        &self,
        sender: &str,
        claim: &BudgetClaim,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// The provider refused a send for its limit: from now, the places
    /// held are all it allows ([`crate::domain::budget::Ledger::learn`]).
    /// Returns the limit the budget keeps to now.
    async fn learn_budget(
        &self,
        sender: &str,
        limit: u32,
        window_seconds: i64,
        now: i64,
    ) -> Result<u32, StoreError>;
    /// The budget as stored: its parts' holds and what they learned.
    async fn budget_state(&self, sender: &str) -> Result<BudgetState, StoreError>;
}

/// Twilio's requests already answered, by delivery (its
/// `I-Twilio-Idempotency-Token` with the request's signature): a retry of
/// one is answered again without doing its work twice.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    async fn delivery_seen(&self, delivery: &str) -> Result<bool, StoreError>;
    /// Remembers a delivery for a day: Twilio retries within minutes.
    async fn record_delivery(&self, delivery: &str) -> Result<(), StoreError>;
}

/// The body of one queue message: which invitation, which attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SendMessage {
    pub invitation_id: InvitationId,
    pub attempt: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue request failed: {0}")]
    Backend(String),
    #[error("{failed} of {total} messages could not be enqueued: {reason}")]
    Partial {
        failed: usize,
        total: usize,
        reason: String,
    },
}

impl QueueError {
    /// How many of `sent` messages the queue did not take.
    pub fn not_enqueued(&self, sent: usize) -> usize {
        match self {
            Self::Backend(_) => sent,
            Self::Partial { failed, .. } => *failed,
        }
    }
}

#[async_trait]
pub trait SendQueue: Send + Sync {
    async fn enqueue(&self, messages: &[SendMessage]) -> Result<(), QueueError>;
    /// Hides a received message for `seconds` more (backoff before the next try).
    async fn delay(&self, receipt_handle: &str, seconds: u32) -> Result<(), QueueError>;
    /// Moves a message that can never be processed to the dead-letter queue.
    async fn dead_letter(&self, body: &str, reason: &str) -> Result<(), QueueError>;
}

/// One chunk of a large send to admit: the admissions queue's message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkMessage {
    pub job_id: JobId,
    pub chunk: u32,
}

/// Where a large send's chunks wait to be admitted behind its answer.
#[async_trait]
pub trait AdmissionQueue: Send + Sync {
    async fn admit_later(&self, chunks: &[ChunkMessage]) -> Result<(), QueueError>;
}

/// A large send's chunks, kept until each is admitted.
#[async_trait]
pub trait AdmissionStore: Send + Sync {
    /// Writes the chunks, then the job (admitting): a job that exists has
    /// all its chunks.
    async fn put_admission(&self, job: &Job, chunks: &[AdmissionChunk]) -> Result<(), StoreError>;
    async fn get_chunk(
        &self,
        job: &JobId,
        number: u32,
    ) -> Result<Option<AdmissionChunk>, StoreError>;
    /// Marks the chunk done and adds its tally to its job, in one write.
    /// Ok(false) when it was done already.
    async fn chunk_admitted(
        &self,
        chunk: &AdmissionChunk,
        tally: &Tally,
    ) -> Result<bool, StoreError>;
    /// Chunks not done that were written before `before`, oldest first, at
    /// most `limit`: reconciliation's worklist.
    async fn stalled_chunks(
        &self,
        before: &str,
        limit: usize,
    ) -> Result<Vec<ChunkMessage>, StoreError>;
}

/// Where a delivery report goes when the store cannot apply it while the
/// provider waits for its answer: applied behind it, durably, by the
/// reports queue's consumer.
#[async_trait]
pub trait ReportQueue: Send + Sync {
    async fn defer(&self, report: &DeliveryReport) -> Result<(), QueueError>;
}

/// How long a provider's request may take before its outcome counts as
/// unknown (the sender keeps this much of its deadline for each send).
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Which attempt of which invitation a message carries: the provider's
/// reports about the message name it, so a report finds its invitation
/// without an index on the provider's message id, and one for an earlier
/// attempt is recognised and ignored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageRef {
    pub invitation_id: InvitationId,
    /// Absent from references given out before it was added.
    pub job_id: Option<JobId>,
    pub attempt: u32,
}

/// What goes out to one guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub to: PhoneNumber,
    pub content: MessageContent,
    pub reference: MessageRef,
}

/// What a provider's refusal or failure means, whatever the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Over the channel's daily limit of new recipients: the message
    /// waits for the window, it has not failed.
    DailyLimit,
    /// The guest unsubscribed or blocked the sender: recorded as their
    /// opt-out, and never messaged again.
    OptedOut,
    /// The number is not a user of this channel (not on WhatsApp).
    NotOnChannel,
    /// The channel does not deliver marketing messages to this guest.
    MarketingNotDelivered,
    /// Refused before anything was accepted (a rate limit, a refused
    /// connection): safe to try again later.
    RetryLater,
    /// The provider may have accepted the message (a timeout after the
    /// request went out, a reset connection, a 5xx, an unreadable answer):
    /// never sent again automatically; its report or reconciliation
    /// settles it.
    Unknown,
    /// Refused for good for another reason: a later try would be refused too.
    Failed,
}

/// A send that did not come back with a message id: what it means, and the
/// code and words recorded on the invitation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {} ({detail})", error.code, error.message)]
pub struct ProviderError {
    pub refusal: Refusal,
    /// The provider's code (or the product's own) and its words for an
    /// organizer, as an invitation records them.
    pub error: ErrorInfo,
    /// What the provider said, numbers masked: for the logs.
    pub detail: String,
}

/// A message as the provider has it now (what reconciliation reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMessage {
    pub sid: String,
    /// None while the provider has not started sending it.
    pub status: Option<Status>,
    pub error: Option<ErrorInfo>,
    /// The text the guest got, as the provider has it (a free-form
    /// message's body; for a template, the provider's rendering of it).
    pub body: Option<String>,
    /// Refused for the daily limit: the invitation waits, it is not failed.
    pub over_daily_limit: bool,
    /// When the provider created it, RFC 3339.
    pub created_at: String,
}

#[async_trait]
pub trait Messenger: Send + Sync {
    /// Sends one message; returns the provider's message id.
    async fn send(&self, message: &OutboundMessage) -> Result<String, ProviderError>;
    /// The messages sent to `to` from this sender since `since` (RFC 3339),
    /// newest first.
    async fn sent_to(
        &self,
        to: &PhoneNumber,
        since: &str,
    ) -> Result<Vec<ProviderMessage>, ProviderError>;
    /// One message by id; None when the provider has no such message.
    async fn fetch(&self, sid: &str) -> Result<Option<ProviderMessage>, ProviderError>;
}

/// What a provider reports about a message it was given. As JSON, it is
/// what the reports queue carries ([`ReportQueue`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryReport {
    pub reference: MessageRef,
    /// None: a status that carries no news (before our own `sending`).
    pub status: Option<Status>,
    pub message_id: Option<String>,
    pub error: Option<ErrorInfo>,
    /// What the error means, when there is one.
    pub refusal: Option<Refusal>,
    /// The recipient, when the report names it.
    pub to: Option<PhoneNumber>,
}

/// A guest's message to the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub from: PhoneNumber,
    /// What the guest wrote, or the text of the button they tapped.
    pub text: String,
    /// The tapped button's id, when they tapped one.
    pub button_payload: Option<String>,
    /// The provider's id of the message the guest replied to (quoted).
    pub replied_to: Option<String>,
    pub message_id: String,
}

/// What a provider's webhook call carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookCall {
    Report(DeliveryReport),
    Message {
        message: InboundMessage,
        /// Names this delivery of the call: a retry carries the same, and is
        /// answered without doing its work twice.
        delivery: Option<String>,
    },
}

/// Why a webhook call is not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRejection {
    /// Not signed by the provider (403).
    #[error("invalid signature")]
    Forbidden { signature_present: bool },
    /// Signed, but not a call the product understands (400).
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

/// A provider's webhook: its signature checked before anything else is
/// read, then its call read into a report or a guest's message.
pub trait ProviderWebhook: Send + Sync {
    /// `url` is the URL as the request arrived; `body` the raw body.
    fn read(
        &self,
        url: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<WebhookCall, WebhookRejection>;
    /// The answer to a guest's message: `reply` sent back in the same
    /// conversation, or nothing. (content type, body)
    fn answer_message(&self, reply: Option<&str>) -> (&'static str, String);
}

/// What a provider's error codes mean for an organizer, read where an
/// invitation's recorded code is shown.
pub trait ErrorCodes: Send + Sync {
    /// What an invitation's `error_code` (the provider's, or one of the
    /// product's own reasons) means for the organizer, in `status`.
    fn action(&self, error_code: &str, status: Status) -> Action;
}
