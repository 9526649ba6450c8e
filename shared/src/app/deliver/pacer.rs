//! Spaces one instance's sends so the whole fleet stays under the rate in
//! every one-second window.
//!
//! With at most `max_concurrency` instances (reserved concurrency and the
//! event source mapping's maximum concurrency are the same number), each
//! instance may send `floor(rate / max_concurrency)` messages in any
//! one-second window: spaced `1 / that` seconds apart, an instance never
//! fits one more into a window, so the fleet never sends more than the rate,
//! however the instances' sends fall against each other. (A share that is
//! not whole would let each instance round up within some window.) Hence
//! the rule that `max_concurrency` is at most the rate ([`Pacer::new`]).
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

/// More sender instances than messages per second: no instance can have a
/// whole share of the rate. (The configuration names both settings.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a maximum concurrency of {max_concurrency} is more than the rate of {rate} per second: more sender instances than messages per second cannot hold the rate; lower it to at most {rate}"
)]
pub struct PacingError {
    pub max_concurrency: u32,
    pub rate: u32,
}

pub struct Pacer {
    interval: Duration,
    next_slot: Mutex<Option<Instant>>,
}

impl Pacer {
    /// Paces one of `max_concurrency` instances sharing `fleet_rate_per_second`.
    pub fn new(fleet_rate_per_second: u32, max_concurrency: u32) -> Result<Self, PacingError> {
        let per_instance = fleet_rate_per_second / max_concurrency.max(1);
        if per_instance == 0 {
            return Err(PacingError {
                max_concurrency,
                rate: fleet_rate_per_second,
            });
        }
        let interval = Duration::from_secs_f64((1.0 + JITTER_MARGIN) / f64::from(per_instance));
        Ok(Self {
            interval,
            next_slot: Mutex::new(None),
        })
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Takes this instance's next send slot: the time to send at. A slot
    /// taken and not used is lost (the pace only gets slower).
    pub async fn reserve(&self) -> Instant {
        let mut next = self.next_slot.lock().await;
        let now = Instant::now();
        // An idle instance does not bank slots: bursts stay within the rate.
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + self.interval);
        slot
    }

    /// Waits for this instance's next send slot.
    pub async fn wait(&self) {
        let slot = self.reserve().await;
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_sends_by_fleet_share() {
        let pacer = Pacer::new(10, 2).unwrap();
        assert_eq!(pacer.interval(), Duration::from_millis(206));
        let start = Instant::now();
        for _ in 0..6 {
            pacer.wait().await;
        }
        // Six sends: the first at once, then five intervals, so at most
        // five (10 per second over 2 instances) in any one second.
        assert_eq!(start.elapsed(), Duration::from_millis(1030));
    }

    /// The most sends one instance fits in any one-second window.
    fn most_in_a_second(interval: Duration) -> u64 {
        // Sends at 0, i, 2i, ...: a window [t, t + 1s) holds ceil(1s / i) of them.
        Duration::from_secs(1)
            .as_nanos()
            .div_ceil(interval.as_nanos()) as u64
    }

    #[test]
    fn the_fleet_holds_the_rate_for_every_concurrency_the_template_allows() {
        // template.yaml: SenderMaxConcurrency 2 to 1000, SendRatePerSecond
        // from 1; Twilio allows a WhatsApp sender up to 400 per second.
        for rate in 1..=400u32 {
            for concurrency in 2..=1000u32 {
                match Pacer::new(rate, concurrency) {
                    Ok(pacer) => {
                        let fleet = u64::from(concurrency) * most_in_a_second(pacer.interval());
                        assert!(
                            fleet <= u64::from(rate),
                            "rate {rate}, {concurrency} instances: {fleet} in one second"
                        );
                    }
                    Err(e) => assert!(concurrency > rate, "{e}"),
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn instances_started_at_any_offset_stay_under_the_rate() {
        let (rate, concurrency) = (10u32, 3u32);
        let t0 = Instant::now();
        let mut sends = Vec::new();
        // Each instance starts a little after the previous one.
        for offset_ms in [0u64, 37, 311] {
            tokio::time::advance(Duration::from_millis(offset_ms)).await;
            let pacer = Pacer::new(rate, concurrency).unwrap();
            for _ in 0..20 {
                sends.push(pacer.reserve().await - t0);
            }
        }
        sends.sort();
        for (i, first) in sends.iter().enumerate() {
            let in_window = sends[i..]
                .iter()
                .take_while(|t| **t < *first + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= rate as usize,
                "{in_window} sends in one second"
            );
        }
    }
}
