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

/// A hold's end is rounded up to 1/96 of the window (15 minutes in a day):
/// a ledger then keeps about a hundred entries however many it holds, at
/// the cost of a place freeing up to that much later.
pub const BUCKETS_PER_WINDOW: i64 = 96;

/// After the provider refused a send for its limit (63018), its count is
/// believed for a window; then the budget offers this many places more a
/// window (at least), until the operator's tier: Meta may have raised the
/// tier, and a wrong guess costs only these few refusals a window.
pub const LEARNED_STEP_MIN: u32 = 5;

impl SenderProfile {
    /// How long a place in the budget stays taken.
    pub fn hold_seconds(&self) -> i64 {
        self.window_seconds + HOLD_MARGIN_SECONDS
    }

    /// When a place taken at `now` frees, `extra` seconds later than the
    /// window (a batch's sends spread over that much), rounded up to the
    /// ledger's bucket.
    pub fn hold_until(&self, now: i64, extra: i64) -> i64 {
        let end = now + self.hold_seconds() + extra.max(0);
        let bucket = (self.window_seconds / BUCKETS_PER_WINDOW).max(1);
        end.div_euclid(bucket) * bucket + if end % bucket == 0 { 0 } else { bucket }
    }

    /// When `remaining` more sends will all have left, at the profile's
    /// rate and within the budget as `state` has it (None: unlimited).
    pub fn expected_finish(&self, state: Option<&BudgetState>, now: i64, remaining: u64) -> i64 {
        if remaining == 0 {
            return now;
        }
        let gap = 1.0 / f64::from(self.rate_per_second.max(1));
        let times = match (self.daily_limit, state) {
            (DailyLimit::Limited(limit), Some(state)) => state.takes(
                limit,
                self.window_seconds,
                self.hold_seconds(),
                now,
                remaining as usize,
                gap,
            ),
            _ => BudgetState::default().takes(u32::MAX, 1, 0, now, remaining as usize, gap),
        };
        times.last().copied().unwrap_or(now as f64).ceil() as i64
    }
}

/// Who holds a place: an invitation's attempt. A redelivery of its record
/// finds the place it already holds instead of taking a second.
pub fn holder(invitation_id: &str, attempt: u32) -> String {
    format!("{invitation_id}#{attempt}")
}

/// What a batch's take counts against: the limit, its window, and when the
/// places taken now free ([`SenderProfile::hold_until`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetRules {
    pub limit: u32,
    pub window_seconds: i64,
    pub until: i64,
}

/// The limit the provider showed when it refused a send for it: the places
/// the budget held then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    pub limit: u32,
    /// When it was learned (epoch seconds).
    pub at: i64,
}

impl Learned {
    /// Believed for a window after the refusal, then a step more each
    /// window ([`LEARNED_STEP_MIN`]).
    pub fn limit_at(&self, now: i64, window: i64) -> u32 {
        let windows = ((now - self.at) / window.max(1)).max(0);
        let step = (self.limit / 10).max(LEARNED_STEP_MIN);
        let grown = u64::from(self.limit) + u64::from(step) * windows as u64;
        grown.min(u64::from(u32::MAX)) as u32
    }
}

/// One part of the budget as stored: the places it holds, counted by when
/// their hold ends, and what the provider taught it. The stack's limit is
/// split over the parts ([`share`]), each taken and given back on its own
/// so that no one item is written for every batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Places held, by the epoch second their hold ends.
    pub holds: BTreeMap<i64, u32>,
    pub learned: Option<Learned>,
}

impl Ledger {
    /// Places held at `now`.
    pub fn held(&self, now: i64) -> u32 {
        self.holds.range(now + 1..).map(|(_, n)| *n).sum()
    }

    /// The places this part may hold at `now`, of its `share`.
    pub fn limit(&self, share: u32, window: i64, now: i64) -> u32 {
        match self.learned {
            Some(learned) => learned.limit_at(now, window).min(share),
            None => share,
        }
    }

    /// Places that may be taken at `now`.
    pub fn free(&self, share: u32, window: i64, now: i64) -> u32 {
        self.limit(share, window, now)
            .saturating_sub(self.held(now))
    }

    /// `n` more places held until `until`.
    pub fn hold(&mut self, until: i64, n: u32) {
        *self.holds.entry(until).or_default() += n;
    }

    /// Gives back one place held until `until`; false when none is.
    pub fn release(&mut self, until: i64) -> bool {
        match self.holds.get_mut(&until) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.holds.remove(&until);
            }
            None => return false,
        }
        true
    }

    /// Forgets holds that ended, and a learned limit grown past the share.
    pub fn prune(&mut self, share: u32, window: i64, now: i64) {
        self.holds.retain(|until, _| *until > now);
        if self
            .learned
            .is_some_and(|l| l.limit_at(now, window) >= share)
        {
            self.learned = None;
        }
    }

    /// The provider refused a send for its limit: the places held now are
    /// all it allows (never more than a limit already learned).
    pub fn learn(&mut self, share: u32, window: i64, now: i64) {
        let limit = self.limit(share, window, now).min(self.held(now));
        self.learned = Some(Learned { limit, at: now });
    }

    /// When a place can next be taken, if not now.
    pub fn next_free_at(&self, share: u32, window: i64, now: i64) -> Option<i64> {
        if self.free(share, window, now) > 0 {
            return None;
        }
        // A hold ending, or the learned limit's next step.
        let ends = self.holds.keys().copied().filter(|end| *end > now);
        let step = self
            .learned
            .map(|l| l.at + ((now - l.at) / window.max(1) + 1) * window.max(1));
        ends.chain(step)
            .filter(|at| self.free(share, window, *at) > 0)
            .min()
    }
}

/// Part `part` of `parts` of a `limit`: the parts' shares add up to it.
pub fn share(limit: u32, part: usize, parts: usize) -> u32 {
    let parts = parts.max(1) as u32;
    limit / parts + u32::from((part as u32) < limit % parts)
}

/// The daily budget as stored: its parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetState {
    pub parts: Vec<Ledger>,
}

impl BudgetState {
    fn shares(&self, limit: u32) -> impl Iterator<Item = (&Ledger, u32)> {
        let n = self.parts.len();
        self.parts
            .iter()
            .enumerate()
            .map(move |(i, part)| (part, share(limit, i, n)))
    }

    /// Places held at `now`.
    pub fn held(&self, now: i64) -> u32 {
        self.parts.iter().map(|p| p.held(now)).sum()
    }

    /// Places that may be taken at `now` under a `limit` (none stored:
    /// all of it).
    pub fn free_now(&self, limit: u32, window: i64, now: i64) -> u32 {
        if self.parts.is_empty() {
            return limit;
        }
        self.shares(limit)
            .map(|(part, share)| part.free(share, window, now))
            .sum()
    }

    /// The places the budget allows at `now`, when a refusal taught it
    /// fewer than `limit`.
    pub fn learned_limit(&self, limit: u32, window: i64, now: i64) -> Option<u32> {
        let learned = self.parts.iter().any(|p| p.learned.is_some());
        let allowed: u32 = self
            .shares(limit)
            .map(|(part, share)| part.limit(share, window, now))
            .sum();
        (learned && allowed < limit).then_some(allowed)
    }

    /// When the next place frees, if none is free now.
    pub fn next_free_at(&self, limit: u32, window: i64, now: i64) -> Option<i64> {
        if self.free_now(limit, window, now) > 0 {
            return None;
        }
        self.shares(limit)
            .filter_map(|(part, share)| part.next_free_at(share, window, now))
            .min()
    }

    /// When each of the next `n` takes can happen, in turn, `gap` seconds
    /// apart at least (the rate), each place held `hold` seconds.
    pub fn takes(
        &self,
        limit: u32,
        window: i64,
        hold: i64,
        now: i64,
        n: usize,
        gap: f64,
    ) -> Vec<f64> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let allowed = if self.parts.is_empty() {
            limit
        } else {
            self.shares(limit)
                .map(|(part, share)| part.limit(share, window, now))
                .sum()
        }
        .max(1) as usize;
        // Hold ends in milliseconds, earliest first.
        let mut held: BinaryHeap<Reverse<i64>> = self
            .parts
            .iter()
            .flat_map(|p| p.holds.range(now + 1..))
            .flat_map(|(end, count)| std::iter::repeat_n(Reverse(end * 1000), *count as usize))
            .collect();
        let mut times: Vec<f64> = Vec::with_capacity(n);
        for _ in 0..n {
            let mut ready = now as f64;
            while held.len() >= allowed {
                let Some(Reverse(end)) = held.pop() else {
                    break;
                };
                ready = ready.max(end as f64 / 1000.0);
            }
            if let Some(previous) = times.last() {
                ready = ready.max(previous + gap);
            }
            times.push(ready);
            held.push(Reverse(((ready + hold as f64) * 1000.0) as i64));
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

    fn one(ledger: Ledger) -> BudgetState {
        BudgetState {
            parts: vec![ledger],
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
    fn shares_add_up_to_the_limit() {
        for limit in [1, 3, 250, 2_000, 100_001] {
            let total: u32 = (0..8).map(|part| share(limit, part, 8)).sum();
            assert_eq!(total, limit);
        }
        assert_eq!(share(3, 0, 8), 1);
        assert_eq!(share(3, 3, 8), 0);
    }

    #[test]
    fn a_hold_ends_a_window_later_rounded_up_to_its_bucket() {
        let day = SenderProfile {
            window_seconds: DAY_SECONDS,
            ..profile(DailyLimit::Limited(250))
        };
        // 15-minute buckets in a day.
        assert_eq!(day.hold_until(0, 0), 900 * 97);
        assert_eq!(day.hold_until(899 * 96, 0) % 900, 0);
        // A 30-second window has 1-second buckets.
        assert_eq!(profile(DailyLimit::Limited(3)).hold_until(100, 4), 135);
    }

    #[test]
    fn an_empty_budget_is_free_and_a_full_one_frees_as_its_holds_end() {
        assert_eq!(BudgetState::default().free_now(3, 30, 100), 3);
        let empty = one(Ledger::default());
        assert_eq!(empty.free_now(3, 30, 100), 3);
        assert_eq!(empty.next_free_at(3, 30, 100), None);
        let mut ledger = Ledger::default();
        ledger.hold(121, 1);
        ledger.hold(126, 1);
        ledger.hold(130, 1);
        let full = one(ledger.clone());
        assert_eq!(full.held(100), 3);
        assert_eq!(full.free_now(3, 30, 100), 0);
        assert_eq!(full.next_free_at(3, 30, 100), Some(121));
        assert_eq!(
            full.takes(3, 30, 31, 100, 5, 0.0),
            [121.0, 126.0, 130.0, 152.0, 157.0]
        );
        assert_eq!(full.free_now(3, 30, 126), 2);
        // A place given back is free at once.
        assert!(ledger.release(126));
        assert!(!ledger.release(126));
        assert_eq!(one(ledger).free_now(3, 30, 100), 1);
    }

    #[test]
    fn a_refusal_teaches_the_places_held_then_grows_a_step_a_window() {
        let mut ledger = Ledger::default();
        ledger.hold(120, 12);
        ledger.learn(250, 30, 100);
        assert_eq!(ledger.learned, Some(Learned { limit: 12, at: 100 }));
        assert_eq!(ledger.free(250, 30, 100), 0);
        // The holds end at 120: twelve again, not 250.
        assert_eq!(ledger.free(250, 30, 121), 12);
        assert_eq!(ledger.next_free_at(250, 30, 100), Some(120));
        // A window after the refusal, five more.
        assert_eq!(ledger.limit(250, 30, 130), 17);
        let state = one(ledger.clone());
        assert_eq!(state.learned_limit(250, 30, 100), Some(12));
        // A second refusal never raises what was learned.
        ledger.hold(160, 10);
        ledger.learn(250, 30, 101);
        assert_eq!(ledger.learned.unwrap().limit, 12);
        // Grown back to the share, it is forgotten.
        ledger.prune(250, 30, 101 + 30 * 48);
        assert_eq!(ledger.learned, None);
        assert!(ledger.holds.is_empty());
        // Learned with nothing held: nothing goes until the next window.
        let mut idle = Ledger::default();
        idle.learn(250, 30, 100);
        assert_eq!(idle.next_free_at(250, 30, 100), Some(130));
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
