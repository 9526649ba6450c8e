//! Spaces one instance's sends so the whole fleet stays under the rate.
//!
//! With at most `max_concurrency` instances (reserved concurrency and the
//! event source mapping's maximum concurrency are the same number), each
//! instance may send `rate / max_concurrency` messages per second.
//!
//! Twilio counts arrivals, and network jitter can carry a send into the next
//! second. Spacing sends [`JITTER_MARGIN`] wider keeps every one-second
//! window at or under the rate as long as jitter stays under that share of
//! a second (30 ms), at the cost of 3% of the throughput.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Extra spacing between sends, as a share of the nominal interval.
pub const JITTER_MARGIN: f64 = 0.03;

pub struct Pacer {
    interval: Duration,
    next_slot: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(fleet_rate_per_second: u32, max_concurrency: u32) -> Self {
        let rate = f64::from(fleet_rate_per_second.max(1));
        let interval = Duration::from_secs_f64(
            f64::from(max_concurrency.max(1)) / rate * (1.0 + JITTER_MARGIN),
        );
        Self {
            interval,
            next_slot: Mutex::new(None),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits for this instance's next send slot.
    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next_slot.lock().await;
            let now = Instant::now();
            // An idle instance does not bank slots: bursts stay within the rate.
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_sends_by_fleet_share() {
        let pacer = Pacer::new(10, 2);
        assert_eq!(pacer.interval(), Duration::from_millis(206));
        let start = Instant::now();
        for _ in 0..6 {
            pacer.wait().await;
        }
        // Six sends: the first at once, then five intervals, so at most
        // five (10 per second over 2 instances) in any one second.
        assert_eq!(start.elapsed(), Duration::from_millis(1030));
    }
}
