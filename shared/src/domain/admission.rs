//! A large send admitted behind its answer: the request's guests are kept
//! in chunks, each admitted on its own (written, checked against the list,
//! queued) by the admissions queue's consumer, and the job shows how far
//! admission has got.

use super::{EventId, Guest, JobId, Status, TemplateRef};
use std::collections::BTreeMap;

/// Guests in one chunk: one admission step, about a second of one
/// instance's share of the event's partitions.
pub const CHUNK_GUESTS: usize = 200;

/// A send of more guests than this is answered first and admitted behind
/// the answer; up to this, the answer says what happened to each guest.
pub const INLINE_GUESTS: usize = 250;

/// How far a job's admission has got (a job admitted with its answer has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitting {
    /// The guests accepted for admission.
    pub guests: u64,
    pub chunks: u32,
    /// Chunks whose guests are all written, counted and queued.
    pub chunks_done: u32,
    /// Guests not invited because an earlier invitation holds them.
    pub left_out: u64,
}

impl Admitting {
    pub fn new(guests: usize) -> Self {
        Self {
            guests: guests as u64,
            chunks: guests.div_ceil(CHUNK_GUESTS) as u32,
            chunks_done: 0,
            left_out: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.chunks_done >= self.chunks
    }
}

/// One chunk of a large send: what its admission needs to invite its
/// guests as the request asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionChunk {
    pub job_id: JobId,
    /// From 0, in the request's order.
    pub number: u32,
    pub owner: String,
    pub event_id: EventId,
    /// The template version chosen when the request was accepted.
    pub template: TemplateRef,
    pub resend: bool,
    pub guests: Vec<Guest>,
    pub created_at: String,
    /// Admitted and counted already (a redelivered message changes nothing).
    pub done: bool,
}

impl AdmissionChunk {
    /// The request's accepted guests, in chunks of [`CHUNK_GUESTS`].
    pub fn split(
        job_id: &JobId,
        owner: &str,
        event_id: &EventId,
        template: &TemplateRef,
        resend: bool,
        guests: Vec<Guest>,
        now: &str,
    ) -> Vec<Self> {
        guests
            .chunks(CHUNK_GUESTS)
            .enumerate()
            .map(|(number, guests)| Self {
                job_id: job_id.clone(),
                number: number as u32,
                owner: owner.to_owned(),
                event_id: event_id.clone(),
                template: template.clone(),
                resend,
                guests: guests.to_vec(),
                created_at: now.to_owned(),
                done: false,
            })
            .collect()
    }
}

/// What admitting one chunk added to its job: each invitation in the
/// status it was written with, and the guests left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub counts: BTreeMap<Status, i64>,
    pub total: u64,
    pub left_out: u64,
}

impl Tally {
    /// A chunk's invitations, each in the status it was written with.
    pub fn of(invitations: &[super::Invitation], left_out: usize) -> Self {
        let mut counts = BTreeMap::new();
        for inv in invitations {
            *counts.entry(inv.written_as()).or_insert(0) += 1;
        }
        Self {
            counts,
            total: invitations.len() as u64,
            left_out: left_out as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_is_split_in_chunks_of_the_chunk_size_in_order() {
        let guests: Vec<Guest> = (0..CHUNK_GUESTS * 2 + 1)
            .map(|n| Guest {
                guest_id: crate::domain::GuestId::parse(&format!("g{n}")).unwrap(),
                name: "Ana".into(),
                phone: crate::domain::PhoneNumber::parse(&format!("+55119{n:08}")).unwrap(),
                rsvp_token: crate::domain::RsvpToken::generate(),
            })
            .collect();
        let template = TemplateRef {
            template_id: crate::domain::TemplateId::parse("default").unwrap(),
            version: 1,
        };
        let job = JobId::generate();
        let chunks = AdmissionChunk::split(
            &job,
            "org",
            &EventId::parse("gala").unwrap(),
            &template,
            false,
            guests.clone(),
            "now",
        );
        let sizes: Vec<usize> = chunks.iter().map(|c| c.guests.len()).collect();
        assert_eq!(sizes, [CHUNK_GUESTS, CHUNK_GUESTS, 1]);
        assert_eq!(chunks[2].number, 2);
        assert_eq!(chunks[2].guests[0], guests[CHUNK_GUESTS * 2]);
        let admitting = Admitting::new(guests.len());
        assert_eq!((admitting.chunks, admitting.is_done()), (3, false));
    }
}
