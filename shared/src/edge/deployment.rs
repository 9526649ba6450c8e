//! The deployment's settings, defined once: the local stack creates its
//! queues from here, and tests hold `template.yaml` to the same values.
//! (The table's shape is the DynamoDB adapter's: `adapters::dynamo::TABLE`.)

use crate::app::deliver::Backoff;
use crate::domain::budget::DailyLimit;

/// The send queue and the sender's event source mapping.
pub struct QueueSettings {
    /// Records per sender invocation.
    pub batch_size: u32,
    /// Sender instances at once, fleet-wide; also its reserved concurrency.
    /// An instance idles one Twilio round trip between batches, so each
    /// sends a tenth of the rate or less (a batch lasts a second or more)
    /// to keep the fleet at 95% of it or better (the benchmark's figures).
    pub max_concurrency: u32,
    /// The sender's function timeout.
    pub sender_timeout_seconds: u32,
    /// At least six times the sender timeout, as AWS advises for SQS sources.
    pub visibility_timeout_seconds: u32,
    /// Receives before a message moves to the dead-letter queue.
    pub max_receive_count: u32,
    /// Messages per second the whole fleet may send: what Twilio allows a
    /// WhatsApp sender by default (up to 400 on request).
    pub send_rate_per_second: u32,
    /// Unique WhatsApp users reached in a moving day: a new business's
    /// tier, so nothing is refused for the limit until the operator raises it.
    pub daily_unique_recipients: DailyLimit,
    /// The sender's backoff after a retryable failure (a rate limit, a refused
    /// connection): this long after the first, doubling per receive...
    pub first_retry_backoff_seconds: u32,
    /// ...up to this. With `max_receive_count`, retries span about an hour.
    pub max_retry_backoff_seconds: u32,
}

pub const QUEUE: QueueSettings = QueueSettings {
    batch_size: 10,
    max_concurrency: 8,
    sender_timeout_seconds: 30,
    visibility_timeout_seconds: 180,
    max_receive_count: 10,
    send_rate_per_second: 80,
    daily_unique_recipients: DailyLimit::Limited(250),
    first_retry_backoff_seconds: 30,
    max_retry_backoff_seconds: 900,
};

/// How long a retryable send failure waits before its next try: 30 s
/// doubling to 15 minutes, so a rate limit or an outage of an hour or so is
/// waited out within the queue's maxReceiveCount tries.
pub const SEND_BACKOFF: Backoff = Backoff {
    first_seconds: QUEUE.first_retry_backoff_seconds,
    cap_seconds: QUEUE.max_retry_backoff_seconds,
};

/// The reports queue (status reports the webhook could not apply while
/// the provider waited) and its consumer's event source mapping.
pub struct ReportsQueueSettings {
    pub batch_size: u32,
    /// Consumer instances at once: a few, so a slow store is not
    /// hammered by the backlog it caused.
    pub max_concurrency: u32,
    pub consumer_timeout_seconds: u32,
    /// Six times the consumer's timeout, as AWS advises.
    pub visibility_timeout_seconds: u32,
    /// Receives before a report moves to the dead-letter queue.
    pub max_receive_count: u32,
}

pub const REPORTS_QUEUE: ReportsQueueSettings = ReportsQueueSettings {
    batch_size: 10,
    max_concurrency: 2,
    consumer_timeout_seconds: 30,
    visibility_timeout_seconds: 180,
    max_receive_count: 10,
};

/// The admissions queue (a large send's chunks, admitted behind its
/// answer) and its consumer's event source mapping.
pub struct AdmissionsQueueSettings {
    /// One chunk per invocation: each is paced on its own.
    pub batch_size: u32,
    /// Consumer instances at once; also its reserved concurrency.
    pub max_concurrency: u32,
    /// Guests one instance admits a second at most.
    pub guests_per_second: u32,
    pub consumer_timeout_seconds: u32,
    /// Six times the consumer's timeout, as AWS advises.
    pub visibility_timeout_seconds: u32,
    /// Receives before a chunk moves to the dead-letter queue
    /// (reconciliation enqueues an undone chunk again).
    pub max_receive_count: u32,
}

pub const ADMISSIONS_QUEUE: AdmissionsQueueSettings = AdmissionsQueueSettings {
    batch_size: 1,
    max_concurrency: 2,
    guests_per_second: 200,
    consumer_timeout_seconds: 60,
    visibility_timeout_seconds: 360,
    max_receive_count: 5,
};

/// Write units one admitted guest costs its event's busiest partition:
/// the guest's item in a transaction (the benchmark's figure, 2.00).
pub const WRITE_UNITS_PER_ADMITTED_GUEST: u32 = 2;

/// DynamoDB's write limit on one partition, units a second.
pub const PARTITION_WRITE_UNITS_PER_SECOND: u32 = 1000;

// Admission at full speed stays within one partition's share.
const _: () = assert!(
    ADMISSIONS_QUEUE.max_concurrency
        * ADMISSIONS_QUEUE.guests_per_second
        * WRITE_UNITS_PER_ADMITTED_GUEST
        < PARTITION_WRITE_UNITS_PER_SECOND
);

/// How often reconciliation runs: template.yaml's schedule, the local stack's timer.
pub const RECONCILE_EVERY_MINUTES: u64 = 5;

/// Default resource names of the local stack (a deployed stack's come from the template).
pub mod names {
    pub const TABLE: &str = "rsvp-invitations";
    pub const QUEUE: &str = "rsvp-send";
    pub const DEAD_LETTER_QUEUE: &str = "rsvp-send-dlq";
    pub const REPORTS_QUEUE: &str = "rsvp-reports";
    pub const REPORTS_DEAD_LETTER_QUEUE: &str = "rsvp-reports-dlq";
    pub const ADMISSIONS_QUEUE: &str = "rsvp-admissions";
    pub const ADMISSIONS_DEAD_LETTER_QUEUE: &str = "rsvp-admissions-dlq";
    pub const TWILIO_SECRET: &str = "rsvp/twilio";
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn retries_back_off_over_minutes_capped() {
        let waits: Vec<u32> = (1..QUEUE.max_receive_count)
            .map(|n| SEND_BACKOFF.seconds(n))
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 900, 900, 900, 900]);
        // The tries before the last span over an hour, not seconds.
        assert!(waits.iter().sum::<u32>() >= 3600);
    }
}
