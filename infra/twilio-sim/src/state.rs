//! What one simulator instance remembers: its credentials, knobs, the
//! messages it accepted and counters of everything else.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::SimConfig;
use crate::knobs::Knobs;

/// Longest a callback target may take to answer; a hung target must not stall the simulator forever.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// One accepted create request, as listed by `GET /_sim/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimMessage {
    pub sid: String,
    /// Every form parameter as sent (the last value wins if a name repeats).
    pub params: BTreeMap<String, String>,
    /// Status callbacks sent so far, in the order they were sent.
    pub callbacks: Vec<CallbackRecord>,
    pub received_at_ms: u64,
    /// The message's status as Twilio's message resource shows it (the
    /// furthest reached, whatever order the callbacks went in).
    pub status: String,
    pub error_code: Option<u32>,
}

/// One status callback the simulator sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
    pub status: String,
    /// What the target answered; 0 when it could not be reached.
    pub http_status: u16,
    /// How long the target took to answer (Twilio gives up after 15 s,
    /// and does not retry a status callback).
    pub answered_in_ms: u64,
}

/// Counters of create requests, as answered by `GET /_sim/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub accepted: u64,
    pub rate_limited: u64,
    pub server_errors: u64,
    pub timeouts: u64,
    /// Failed authentication or validation, or a configured fail number.
    pub rejected: u64,
    /// Most creates accepted within one wall-clock second.
    pub max_per_second: u64,
    /// Accepted creates failed with 63018 because their sender had reached
    /// `daily_limit` (also counted in `accepted`, as Twilio accepts them).
    pub daily_limited: u64,
    /// Most unique recipients one sender had counted toward its daily limit
    /// within one trailing window (at most `daily_limit`, unless it was
    /// lowered mid-window).
    pub max_daily_recipients: u64,
}

/// Why a create request was not accepted, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    RateLimited,
    ServerError,
    Timeout,
    Rejected,
}

/// How the rate limit and the daily limit answered a create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Accepted,
    /// Accepted, but past the sender's daily limit: it is to fail with 63018.
    OverDailyLimit,
    RateLimited,
}

/// The recipients one sender has counted toward its daily limit.
#[derive(Default)]
struct Reach {
    /// Each counted recipient's latest counted message (epoch ms).
    latest: HashMap<String, u64>,
    /// Counted messages, oldest first, so the window forgets recipients in
    /// amortized constant time.
    order: VecDeque<(u64, String)>,
}

impl Reach {
    /// Counts a message to `recipient` at `now_ms` unless that would take the
    /// trailing window past `limit`; answers whether it did. A recipient
    /// stays counted while any of its counted messages is in the window, so
    /// no window of that length ever holds more than `limit` recipients.
    fn count(&mut self, recipient: &str, now_ms: u64, window_ms: u64, limit: Option<u64>) -> bool {
        while let Some((at, forgotten)) = self.order.pop_front() {
            if now_ms.saturating_sub(at) < window_ms {
                self.order.push_front((at, forgotten));
                break;
            }
            // A later message to the same recipient keeps it counted.
            if self.latest.get(&forgotten) == Some(&at) {
                self.latest.remove(&forgotten);
            }
        }
        let new = !self.latest.contains_key(recipient);
        if new && limit.is_some_and(|limit| self.latest.len() as u64 >= limit) {
            return false;
        }
        self.latest.insert(recipient.to_string(), now_ms);
        self.order.push_back((now_ms, recipient.to_string()));
        true
    }
}

/// A message Twilio sent back because the webhook answered an incoming
/// message with TwiML `<Message>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimReply {
    pub sid: String,
    pub from: String,
    pub to: String,
    pub body: String,
    /// The incoming message the webhook answered.
    pub in_reply_to: String,
}

#[derive(Default)]
struct Log {
    messages: Vec<SimMessage>,
    replies: Vec<SimReply>,
    by_sid: HashMap<String, usize>,
    stats: Stats,
    /// The wall-clock second being counted and how many creates it accepted.
    second: u64,
    in_second: u64,
    /// Per sender, the recipients counted toward its daily limit (kept with
    /// no limit set too, so a limit set later counts earlier messages).
    reach: HashMap<String, Reach>,
}

/// Shared state behind the routes; reach it through [`crate::SimHandle::state`].
pub struct SimState {
    pub(crate) account_sid: String,
    pub(crate) auth_token: String,
    pub(crate) http: reqwest::Client,
    initial_knobs: Knobs,
    knobs: RwLock<Knobs>,
    log: Mutex<Log>,
}

impl SimState {
    pub fn new(config: SimConfig) -> std::io::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(CALLBACK_TIMEOUT)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            account_sid: config.account_sid,
            auth_token: config.auth_token,
            http,
            initial_knobs: config.knobs.clone(),
            knobs: RwLock::new(config.knobs),
            log: Mutex::default(),
        })
    }

    pub fn knobs(&self) -> Knobs {
        self.knobs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set_knobs(&self, knobs: Knobs) {
        *self.knobs.write().unwrap_or_else(PoisonError::into_inner) = knobs;
    }

    /// Replaces the knobs present in `patch` (a JSON object) and answers the result.
    pub fn patch_knobs(&self, patch: serde_json::Value) -> Result<Knobs, String> {
        let mut knobs = self.knobs.write().unwrap_or_else(PoisonError::into_inner);
        *knobs = knobs.patched(patch)?;
        Ok(knobs.clone())
    }

    pub fn messages(&self) -> Vec<SimMessage> {
        self.log().messages.clone()
    }

    pub fn stats(&self) -> Stats {
        self.log().stats
    }

    /// Forgets messages and counters; with `knobs`, also restores the knobs it started with.
    ///
    /// Callbacks still pending for forgotten messages are sent but not recorded.
    pub fn reset(&self, knobs: bool) {
        *self.log() = Log::default();
        if knobs {
            self.set_knobs(self.initial_knobs.clone());
        }
    }

    /// Records an accepted message, unless this wall-clock second already
    /// accepted `rate_limit_per_second` (0 = no limit). `counted`, the
    /// `(sender, recipient)` of a message that uses up the sender's daily
    /// limit, is checked against `daily_limit` at the same instant.
    pub(crate) fn try_accept(
        &self,
        sid: &str,
        params: &[(String, String)],
        knobs: &Knobs,
        counted: Option<(&str, &str)>,
    ) -> Admission {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let mut log = self.log();
        if log.second != now.as_secs() {
            log.second = now.as_secs();
            log.in_second = 0;
        }
        let rate_limit = knobs.rate_limit_per_second;
        if rate_limit > 0 && log.in_second >= u64::from(rate_limit) {
            return Admission::RateLimited;
        }
        let mut admission = Admission::Accepted;
        if let Some((sender, recipient)) = counted {
            let window_ms = knobs.daily_window_seconds.saturating_mul(1000);
            let reach = log.reach.entry(sender.to_string()).or_default();
            if reach.count(recipient, now_ms, window_ms, knobs.daily_limit) {
                let reached = reach.latest.len() as u64;
                log.stats.max_daily_recipients = log.stats.max_daily_recipients.max(reached);
            } else {
                log.stats.daily_limited += 1;
                admission = Admission::OverDailyLimit;
            }
        }
        log.in_second += 1;
        log.stats.accepted += 1;
        log.stats.max_per_second = log.stats.max_per_second.max(log.in_second);
        let index = log.messages.len();
        log.by_sid.insert(sid.to_string(), index);
        log.messages.push(SimMessage {
            sid: sid.to_string(),
            params: params.iter().cloned().collect(),
            callbacks: Vec::new(),
            received_at_ms: now_ms,
            status: "queued".into(),
            error_code: None,
        });
        admission
    }

    pub(crate) fn count(&self, refusal: Refusal) {
        let mut log = self.log();
        let stats = &mut log.stats;
        match refusal {
            Refusal::RateLimited => stats.rate_limited += 1,
            Refusal::ServerError => stats.server_errors += 1,
            Refusal::Timeout => stats.timeouts += 1,
            Refusal::Rejected => stats.rejected += 1,
        }
    }

    pub(crate) fn record_callback(&self, sid: &str, record: CallbackRecord) {
        let mut log = self.log();
        if let Some(&index) = log.by_sid.get(sid) {
            log.messages[index].callbacks.push(record);
        }
    }

    /// Moves a message's status on, never back.
    pub(crate) fn advance(&self, sid: &str, status: &str, error_code: Option<u32>) {
        fn rank(status: &str) -> u8 {
            match status {
                "queued" => 0,
                "sent" => 1,
                "delivered" | "undelivered" | "failed" => 2,
                _ => 3,
            }
        }
        let mut log = self.log();
        if let Some(&index) = log.by_sid.get(sid) {
            let message = &mut log.messages[index];
            if rank(status) > rank(&message.status) {
                message.status = status.to_owned();
                message.error_code = error_code;
            }
        }
    }

    pub fn replies(&self) -> Vec<SimReply> {
        self.log().replies.clone()
    }

    pub(crate) fn record_reply(&self, reply: SimReply) {
        self.log().replies.push(reply);
    }

    pub fn message(&self, sid: &str) -> Option<SimMessage> {
        let log = self.log();
        log.by_sid.get(sid).map(|&i| log.messages[i].clone())
    }

    // Nothing panics while holding the lock, so a poisoned one still holds consistent data.
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipient_stays_counted_while_messaged_within_the_window() {
        let mut reach = Reach::default();
        let count = |reach: &mut Reach, to: &str, at: u64| reach.count(to, at, 2000, Some(1));
        assert!(count(&mut reach, "a", 0));
        assert!(count(&mut reach, "a", 1500), "already counted");
        assert!(!count(&mut reach, "b", 2500), "a's repeat is in the window");
        assert!(count(&mut reach, "b", 3500));
        assert_eq!(reach.latest.len(), 1);
        // Without a limit, recipients are still counted, and forgotten in turn.
        assert!(reach.count("c", 3600, 2000, None));
        assert!(reach.count("d", 6000, 2000, None));
        assert_eq!(reach.latest.keys().collect::<Vec<_>>(), ["d"]);
        assert_eq!(reach.order.len(), 1);
    }
}
