//! WhatsApp's limits on a sender, as the operator configures them (the
//! sender profile), and what the daily budget's state means for when a
//! send can finish. Times are epoch seconds.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The budget every send of the stack counts against. Meta's limit is per
/// business portfolio, and a stack sends from one portfolio's sender.
pub const STACK_SENDER: &str = "whatsapp";

/// The clock as the budget counts it.
pub fn epoch_seconds() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A day: Meta's moving window for the limit.
pub const DAY_SECONDS: i64 = 86_400;

/// How many unique WhatsApp users the sender may reach outside a
/// conversation in a moving window: Meta's messaging limit tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DailyLimit {
    Limited(u32),
    Unlimited,
}

/// Meta's tiers, for the error's words and the template's allowed values.
pub const TIERS: [u32; 4] = [250, 2_000, 10_000, 100_000];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a daily limit: expected 250, 2000, 10000, 100000 or unlimited")]
pub struct DailyLimitError(pub String);

impl FromStr for DailyLimit {
    type Err = DailyLimitError;
    /// Meta's tiers, or any whole number above 0 (a test's small limit).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("unlimited") {
            return Ok(DailyLimit::Unlimited);
        }
        s.parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .map(DailyLimit::Limited)
            .ok_or_else(|| DailyLimitError(s.to_owned()))
    }
}

impl fmt::Display for DailyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DailyLimit::Limited(n) => write!(f, "{n}"),
            DailyLimit::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl serde::Serialize for DailyLimit {
    /// A number, or the string "unlimited".
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DailyLimit::Limited(n) => s.serialize_u32(*n),
            DailyLimit::Unlimited => s.serialize_str("unlimited"),
        }
    }
}

/// The operator's WhatsApp sender: how fast and how widely it may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderProfile {
    /// Messages per second, fleet-wide.
    pub rate_per_second: u32,
    pub daily_limit: DailyLimit,
    /// The limit's moving window: a day, shorter in tests.
    pub window_seconds: i64,
}

/// A counted recipient holds its place this much longer than the window:
/// the place is taken just before the send, and Twilio counts the message
/// when it arrives, a moment later.
pub const HOLD_MARGIN_SECONDS: i64 = 1;

impl SenderProfile {
    /// How long a place in the budget stays taken.
    pub fn hold_seconds(&self) -> i64 {
        self.window_seconds + HOLD_MARGIN_SECONDS
    }

    /// After Twilio refused a send for the limit (63018) although the
    /// budget had a place: the portfolio's count is ahead of ours (another
    /// system sends from it, or the tier is lower than configured). Sends
    /// wait this long before trying again: five minutes in a day.
    pub fn pause_after_refusal(&self, now: i64) -> i64 {
        now + (self.window_seconds / 288).max(1)
    }

    /// When `remaining` more sends will all have left, at the profile's
    /// rate and within the budget as `state` has it (None: unlimited).
    pub fn expected_finish(&self, state: Option<&BudgetState>, now: i64, remaining: u64) -> i64 {
        if remaining == 0 {
            return now;
        }
        let gap = 1.0 / f64::from(self.rate_per_second.max(1));
        let times = match (self.daily_limit, state) {
            (DailyLimit::Limited(limit), Some(state)) => {
                state.takes(limit, self.hold_seconds(), now, remaining as usize, gap)
            }
            _ => BudgetState::default().takes(u32::MAX, 0, now, remaining as usize, gap),
        };
        times.last().copied().unwrap_or(now as f64).ceil() as i64
    }
}

/// The daily budget as stored: a ring of places taken in turn, each held
/// until its time; the next take is place `taken % limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetState {
    /// Places ever taken.
    pub taken: u64,
    /// Until when Twilio's refusal stopped all takes (0: never).
    pub paused_until: i64,
    /// Each place's holding time, by place number (absent: never taken).
    pub places: BTreeMap<u32, i64>,
}

impl BudgetState {
    /// Places of a `limit`-place ring held at `now`.
    pub fn held(&self, limit: u32, now: i64) -> u32 {
        self.places
            .iter()
            .filter(|(place, until)| **place < limit && **until > now)
            .count() as u32
    }

    /// Places that may be taken now (none while paused).
    pub fn free_now(&self, limit: u32, now: i64) -> u32 {
        if self.paused_until > now {
            return 0;
        }
        limit.saturating_sub(self.held(limit, now))
    }

    /// When the next place can be taken, if not now.
    pub fn next_free_at(&self, limit: u32, now: i64) -> Option<i64> {
        let at = self.takes(limit, 0, now, 1, 0.0)[0].ceil() as i64;
        (at > now).then_some(at)
    }

    /// When each of the next `n` takes can happen, in turn, `gap` seconds
    /// apart at least (the rate), each place held `hold` seconds.
    pub fn takes(&self, limit: u32, hold: i64, now: i64, n: usize, gap: f64) -> Vec<f64> {
        let limit = limit.max(1) as usize;
        let start = now.max(self.paused_until) as f64;
        let mut times: Vec<f64> = Vec::with_capacity(n);
        for i in 0..n {
            let ready = if i < limit {
                let place = ((self.taken + i as u64) % limit as u64) as u32;
                start.max(self.places.get(&place).copied().unwrap_or(0) as f64)
            } else {
                // The same place again, once its previous take has lapsed.
                times[i - limit] + hold as f64
            };
            let after_previous = times.last().map_or(f64::MIN, |t| t + gap);
            times.push(ready.max(after_previous));
        }
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(limit: DailyLimit) -> SenderProfile {
        SenderProfile {
            rate_per_second: 10,
            daily_limit: limit,
            window_seconds: 30,
        }
    }

    #[test]
    fn limits_parse_as_tiers_or_unlimited() {
        assert_eq!("250".parse(), Ok(DailyLimit::Limited(250)));
        assert_eq!(" Unlimited ".parse(), Ok(DailyLimit::Unlimited));
        for bad in ["0", "-1", "many", ""] {
            let err = bad.parse::<DailyLimit>().unwrap_err();
            assert!(err.to_string().contains("250, 2000"), "{err}");
        }
        assert_eq!(
            serde_json::to_value([DailyLimit::Limited(250), DailyLimit::Unlimited]).unwrap(),
            serde_json::json!([250, "unlimited"])
        );
    }

    #[test]
    fn an_empty_budget_is_free_and_a_full_one_frees_in_the_order_it_was_taken() {
        let empty = BudgetState::default();
        assert_eq!(empty.free_now(3, 100), 3);
        assert_eq!(empty.next_free_at(3, 100), None);
        // Three places taken at 90, 95 and 99 and held 31 s; the cursor is back at place 0.
        let full = BudgetState {
            taken: 3,
            paused_until: 0,
            places: BTreeMap::from([(0, 121), (1, 126), (2, 130)]),
        };
        assert_eq!(full.free_now(3, 100), 0);
        assert_eq!(full.next_free_at(3, 100), Some(121));
        assert_eq!(
            full.takes(3, 31, 100, 5, 0.0),
            [121.0, 126.0, 130.0, 152.0, 157.0]
        );
        assert_eq!(full.free_now(3, 126), 2);
        // A pause holds every place.
        let paused = BudgetState {
            paused_until: 140,
            ..BudgetState::default()
        };
        assert_eq!(paused.free_now(3, 100), 0);
        assert_eq!(paused.takes(3, 31, 100, 2, 0.5), [140.0, 140.5]);
    }

    #[test]
    fn a_send_finishes_at_the_rate_within_the_budget() {
        // Unlimited: 100 at 10 a second.
        assert_eq!(
            profile(DailyLimit::Unlimited).expected_finish(None, 1_000, 100),
            1_010
        );
        assert_eq!(
            profile(DailyLimit::Unlimited).expected_finish(None, 1_000, 0),
            1_000
        );
        // 600 under a limit of 250 in a 30-second window, starting empty:
        // 250 by 1024.9, 250 more from 1031 (each place is held 31 s), the
        // last 100 from 1062 to 1071.9.
        let empty = BudgetState::default();
        let limited = profile(DailyLimit::Limited(250));
        assert_eq!(limited.expected_finish(Some(&empty), 1_000, 600), 1_072);
        assert_eq!(limited.expected_finish(Some(&empty), 1_000, 250), 1_025);
    }
}
