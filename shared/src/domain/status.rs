use std::fmt;
use std::str::FromStr;

/// Where an invitation is. Moves only forward along [`Status::rank`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Written and enqueued; no sender has it yet.
    Queued,
    /// Over the sender's daily limit of unique recipients: not attempted,
    /// and queued again (oldest first) when the window frees a place.
    Waiting,
    /// Claimed by a sender; Twilio may or may not have accepted it.
    Sending,
    Sent,
    Failed,
    Undelivered,
    Delivered,
    Read,
    /// Never sent on purpose (the guest opted out).
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown status '{0}'; expected one of queued, waiting, sending, sent, delivered, read, failed, undelivered, skipped"
)]
pub struct StatusError(pub String);

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Queued,
        Status::Waiting,
        Status::Sending,
        Status::Sent,
        Status::Failed,
        Status::Undelivered,
        Status::Delivered,
        Status::Read,
        Status::Skipped,
    ];

    /// The order an organizer reads them in: the way forward, then the
    /// ways out.
    pub const DISPLAY_ORDER: [Status; 9] = [
        Status::Queued,
        Status::Waiting,
        Status::Sending,
        Status::Sent,
        Status::Delivered,
        Status::Read,
        Status::Failed,
        Status::Undelivered,
        Status::Skipped,
    ];

    /// The organizer's word for it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Queued => "Queued",
            Status::Waiting => "Waiting for daily limit",
            Status::Sending => "Sending",
            Status::Sent => "Sent",
            Status::Failed => "Failed",
            Status::Undelivered => "Undelivered",
            Status::Delivered => "Delivered",
            Status::Read => "Read",
            Status::Skipped => "Skipped",
        }
    }

    /// What it means, where the label alone does not say it.
    pub fn description(self) -> Option<&'static str> {
        match self {
            Status::Waiting => Some(
                "Over WhatsApp's daily limit on new guests: not sent yet; it goes out by itself as the 24-hour window frees places, oldest first.",
            ),
            _ => None,
        }
    }

    /// The message reached (or is reaching) the guest: a reminder may follow.
    pub fn has_reached(self) -> bool {
        matches!(self, Status::Sent | Status::Delivered | Status::Read)
    }

    /// queued = waiting < sending < sent < failed = undelivered < delivered < read.
    /// Failed sits below delivered because Twilio can report a failure and
    /// then a delivery receipt; the receipt is the truth.
    pub fn rank(self) -> u8 {
        match self {
            Status::Queued | Status::Waiting => 0,
            Status::Sending => 1,
            Status::Sent => 2,
            Status::Failed | Status::Undelivered => 3,
            Status::Delivered => 4,
            Status::Read => 5,
            Status::Skipped => 6,
        }
    }

    /// The status a report of `self` usually finds (callbacks in order):
    /// sent after sending, delivered after sent, read after delivered.
    pub fn usual_predecessor(self) -> Option<Status> {
        match self {
            Status::Sent | Status::Failed => Some(Status::Sending),
            Status::Delivered | Status::Undelivered => Some(Status::Sent),
            Status::Read => Some(Status::Delivered),
            Status::Queued | Status::Waiting | Status::Sending | Status::Skipped => None,
        }
    }

    /// Whether a transition from `self` to `next` is allowed by the forward-only rule.
    pub fn can_advance_to(self, next: Status) -> bool {
        next.rank() > self.rank()
    }

    /// Still moving through the pipeline: a job is not done while any invitation is here.
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            Status::Queued | Status::Waiting | Status::Sending | Status::Sent
        )
    }

    /// May be sent again as a new attempt.
    pub fn is_retryable(self) -> bool {
        matches!(self, Status::Failed | Status::Undelivered)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Waiting => "waiting",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Undelivered => "undelivered",
            Status::Delivered => "delivered",
            Status::Read => "read",
            Status::Skipped => "skipped",
        }
    }
}

impl FromStr for Status {
    type Err = StatusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StatusError(s.to_owned()))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_only() {
        use Status::*;
        assert!(Queued.can_advance_to(Sending));
        assert!(Sent.can_advance_to(Delivered));
        assert!(Failed.can_advance_to(Delivered));
        assert!(Delivered.can_advance_to(Read));
        assert!(!Read.can_advance_to(Delivered));
        assert!(!Delivered.can_advance_to(Failed));
        assert!(!Failed.can_advance_to(Undelivered));
        assert!(!Sent.can_advance_to(Sent));
    }

    #[test]
    fn round_trips_names() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!("bogus".parse::<Status>().is_err());
    }
}
