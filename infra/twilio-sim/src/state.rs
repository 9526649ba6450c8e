//! What one simulator instance remembers: its credentials, knobs, the
//! messages it accepted and counters of everything else.

use std::collections::{BTreeMap, HashMap};
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
}

/// Why a create request was not accepted, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    RateLimited,
    ServerError,
    Timeout,
    Rejected,
}

#[derive(Default)]
struct Log {
    messages: Vec<SimMessage>,
    by_sid: HashMap<String, usize>,
    stats: Stats,
    /// The wall-clock second being counted and how many creates it accepted.
    second: u64,
    in_second: u64,
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
    /// accepted `rate_limit` (0 = no limit); answers whether it did.
    pub(crate) fn try_accept(
        &self,
        sid: &str,
        params: &[(String, String)],
        rate_limit: u32,
    ) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut log = self.log();
        if log.second != now.as_secs() {
            log.second = now.as_secs();
            log.in_second = 0;
        }
        if rate_limit > 0 && log.in_second >= u64::from(rate_limit) {
            return false;
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
            received_at_ms: u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
            status: "queued".into(),
            error_code: None,
        });
        true
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

    pub fn message(&self, sid: &str) -> Option<SimMessage> {
        let log = self.log();
        log.by_sid.get(sid).map(|&i| log.messages[i].clone())
    }

    // Nothing panics while holding the lock, so a poisoned one still holds consistent data.
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
