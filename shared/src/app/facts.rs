//! What the API says about itself, for a client to show instead of keeping
//! copies: the invitation statuses in the order an organizer reads them
//! (with their words and what each means), the words for each flag and
//! reason, and the limits of its requests.

use crate::domain::guest::{self, holds_the_guest};
use crate::domain::{Status, opt_out, reason};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Facts {
    pub statuses: Vec<StatusFacts>,
    pub flags: BTreeMap<&'static str, &'static str>,
    pub reasons: BTreeMap<&'static str, &'static str>,
    pub limits: Limits,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatusFacts {
    pub status: Status,
    pub label: &'static str,
    /// What it means, where the label alone does not say it.
    pub title: Option<&'static str>,
    /// Still moving: a job is not done while an invitation is here.
    pub in_flight: bool,
    /// On its way or arrived: a send leaves the guest out unless it resends.
    pub holds_guest: bool,
    /// A retry may mend it.
    pub retryable: bool,
    /// Reached (or reaching) the guest: a reminder may follow.
    pub reached: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Limits {
    /// Guests in one send-bulk request.
    pub bulk_guests: usize,
    /// Guests in one page of a listing.
    pub guest_page: usize,
    /// Guests in one import.
    pub guest_import: usize,
    /// Numbers in one opt-out lookup.
    pub opt_out_lookup: usize,
}

pub fn facts() -> Facts {
    Facts {
        statuses: Status::DISPLAY_ORDER
            .into_iter()
            .map(|status| StatusFacts {
                status,
                label: status.label(),
                title: status.description(),
                in_flight: status.is_in_flight(),
                holds_guest: holds_the_guest(status),
                retryable: status.is_retryable(),
                reached: status.has_reached(),
            })
            .collect(),
        flags: reason::FLAGS.into_iter().collect(),
        reasons: reason::ALL.iter().map(|r| (r.code, r.message)).collect(),
        limits: Limits {
            bulk_guests: guest::MAX_PER_REQUEST,
            guest_page: guest::MAX_PAGE,
            guest_import: guest::MAX_PER_REQUEST,
            opt_out_lookup: opt_out::MAX_LOOKUP,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_once_in_the_order_an_organizer_reads_them() {
        let facts = facts();
        let order: Vec<&str> = facts.statuses.iter().map(|s| s.status.as_str()).collect();
        assert_eq!(
            order,
            [
                "queued",
                "waiting",
                "sending",
                "sent",
                "delivered",
                "read",
                "failed",
                "undelivered",
                "skipped"
            ]
        );
        let waiting = &facts.statuses[1];
        assert_eq!(waiting.label, "Waiting for daily limit");
        assert!(waiting.title.is_some() && waiting.in_flight && waiting.holds_guest);
        let read = &facts.statuses[5];
        assert!(read.reached && read.holds_guest && !read.in_flight && !read.retryable);
        let failed = &facts.statuses[6];
        assert!(failed.retryable && !failed.holds_guest && !failed.reached);
    }

    #[test]
    fn the_words_and_limits_are_the_ones_the_api_applies() {
        let facts = facts();
        assert_eq!(facts.reasons["opted_out"], reason::OPTED_OUT.message);
        assert!(facts.flags.contains_key(reason::SEND_UNCONFIRMED));
        assert_eq!(facts.limits.bulk_guests, 10_000);
        assert_eq!(facts.limits.guest_page, 1_000);
    }
}
