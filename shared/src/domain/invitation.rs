use super::admission::Admitting;
use super::event::required_text;
use super::rsvp::AnswerToken;
use super::{
    EventId, FieldError, GuestId, InvitationId, JobId, PhoneNumber, RsvpToken, Status, TemplateRef,
};
use std::collections::BTreeMap;

/// A guest as snapshotted into an invitation at send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guest {
    pub guest_id: GuestId,
    pub name: String,
    pub phone: PhoneNumber,
    pub rsvp_token: RsvpToken,
}

/// A guest in a send request, before validation. Every field is optional
/// here so that a missing one is reported by name rather than by serde.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct GuestInput {
    pub guest_id: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub rsvp_token: Option<String>,
}

impl GuestInput {
    /// Parses the guest; `path` prefixes field names in errors (e.g. `guest.`).
    pub fn parse(self, path: &str) -> Result<Guest, FieldError> {
        let field = |name: &str| format!("{path}{name}");
        let guest_id = required_text(self.guest_id, &field("guest_id"), 64)?;
        let guest_id =
            GuestId::parse(&guest_id).map_err(|e| FieldError::new(field("guest_id"), e))?;
        let name = required_text(self.name, &field("name"), 100)?;
        let phone = required_text(self.phone, &field("phone"), 32)?;
        let phone =
            PhoneNumber::parse_written(&phone).map_err(|e| FieldError::new(field("phone"), e))?;
        let rsvp_token = match self.rsvp_token.filter(|t| !t.trim().is_empty()) {
            Some(t) => {
                RsvpToken::parse(t.trim()).map_err(|e| FieldError::new(field("rsvp_token"), e))?
            }
            None => RsvpToken::generate(),
        };
        Ok(Guest {
            guest_id,
            name,
            phone,
            rsvp_token,
        })
    }
}

/// `POST /send-invitation`, before validation.
#[derive(Debug, serde::Deserialize)]
pub struct SendRequest {
    pub event_id: Option<String>,
    pub guest: Option<GuestInput>,
    pub template_id: Option<String>,
    /// Invite again a guest whose invitation for the event is on its way or arrived.
    #[serde(default)]
    pub resend: bool,
}

/// Timestamps of each status reached, RFC 3339.
pub type Timestamps = BTreeMap<Status, String>;

/// One WhatsApp message to one guest for one event, across its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub invitation_id: InvitationId,
    pub event_id: EventId,
    pub job_id: JobId,
    pub owner: String,
    pub guest: Guest,
    /// The template version it is sent with (none: written before
    /// templates were versioned; the built-in default).
    pub template: Option<TemplateRef>,
    pub status: Status,
    /// Starts at 1; a retry increments it so callbacks for older attempts are recognisable.
    pub attempt: u32,
    pub message_sid: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Set when the sender cannot know whether Twilio accepted the message
    /// (a redelivery found it mid-send): the organizer decides, nothing resends.
    pub flag: Option<String>,
    pub updated_at: String,
    /// While waiting: not to be sent before then (WhatsApp held its
    /// marketing message back); None waits only for the daily limit.
    pub due_at: Option<String>,
    pub timestamps: Timestamps,
    /// The secret of the guest's answer token ([`AnswerToken`]); empty on
    /// invitations written before tokens, which no token opens.
    pub answer_secret: String,
}

impl Invitation {
    /// Where it sorts among invitations in flight: when it is due, else
    /// when it last changed (the oldest first).
    pub fn in_flight_since(&self) -> &str {
        self.due_at.as_deref().unwrap_or(&self.updated_at)
    }

    /// The token that answers this invitation (its RSVP page, its buttons).
    pub fn answer_token(&self) -> Option<AnswerToken> {
        (!self.answer_secret.is_empty()).then(|| AnswerToken {
            invitation_id: self.invitation_id.clone(),
            secret: self.answer_secret.clone(),
        })
    }

    pub fn new_queued(
        event_id: EventId,
        job_id: JobId,
        owner: &str,
        guest: Guest,
        template: Option<TemplateRef>,
        now: &str,
    ) -> Self {
        Self {
            invitation_id: InvitationId::for_guest(&job_id, &guest.guest_id),
            event_id,
            job_id,
            owner: owner.to_owned(),
            guest,
            template,
            status: Status::Queued,
            attempt: 1,
            message_sid: None,
            error_code: None,
            error_message: None,
            flag: None,
            updated_at: now.to_owned(),
            due_at: None,
            timestamps: BTreeMap::from([(Status::Queued, now.to_owned())]),
            answer_secret: AnswerToken::new_secret(),
        }
    }

    /// The status this invitation was written with: skipped when it was
    /// skipped as it was made (the same instant as its queued time), else
    /// queued. A job counts it there; its moves since are counted apart.
    pub fn written_as(&self) -> Status {
        let at = |status| self.timestamps.get(&status);
        if self.status == Status::Skipped && at(Status::Skipped) == at(Status::Queued) {
            Status::Skipped
        } else {
            Status::Queued
        }
    }

    /// This invitation recorded as never sent, for `error` (an opted-out guest).
    pub fn skipped(mut self, code: &str, message: &str, now: &str) -> Self {
        self.status = Status::Skipped;
        self.error_code = Some(code.to_owned());
        self.error_message = Some(message.to_owned());
        self.timestamps.insert(Status::Skipped, now.to_owned());
        self
    }
}

/// A send (one guest or many): the unit the progress bar follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub job_id: JobId,
    pub event_id: EventId,
    pub owner: String,
    pub total: u64,
    /// Exactly one count per invitation, kept by the same transactions that move statuses.
    pub counts: BTreeMap<Status, i64>,
    pub created_at: String,
    /// A large send's admission behind its answer; None when the job was
    /// admitted with the answer.
    pub admission: Option<Admitting>,
}

impl Job {
    pub fn new(job_id: JobId, event_id: EventId, owner: &str, queued: u64, now: &str) -> Self {
        let mut counts: BTreeMap<Status, i64> = Status::ALL.into_iter().map(|s| (s, 0)).collect();
        counts.insert(Status::Queued, queued as i64);
        Self {
            job_id,
            event_id,
            owner: owner.to_owned(),
            total: queued,
            counts,
            created_at: now.to_owned(),
            admission: None,
        }
    }

    /// A large send's job, before any of its `guests` is admitted.
    pub fn admitting(
        job_id: JobId,
        event_id: EventId,
        owner: &str,
        guests: usize,
        now: &str,
    ) -> Self {
        Self {
            admission: Some(Admitting::new(guests)),
            ..Self::new(job_id, event_id, owner, 0, now)
        }
    }

    /// While some of a large send's guests are still to be admitted.
    pub fn is_admitting(&self) -> bool {
        self.admission.as_ref().is_some_and(|a| !a.is_done())
    }

    /// A job counting each of `invitations` in its status.
    pub fn of(
        job_id: JobId,
        event_id: EventId,
        owner: &str,
        invitations: &[Invitation],
        now: &str,
    ) -> Self {
        let mut job = Self::new(job_id, event_id, owner, 0, now);
        for inv in invitations {
            *job.counts.entry(inv.written_as()).or_insert(0) += 1;
        }
        job.total = invitations.len() as u64;
        job
    }

    pub fn count(&self, status: Status) -> i64 {
        self.counts.get(&status).copied().unwrap_or(0)
    }

    /// Done when every guest is admitted and nothing is still moving
    /// through the pipeline.
    pub fn is_done(&self) -> bool {
        !self.is_admitting()
            && Status::ALL
                .into_iter()
                .filter(|s| s.is_in_flight())
                .all(|s| self.count(s) == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest() -> GuestInput {
        GuestInput {
            guest_id: Some("g1".into()),
            name: Some(" Ana ".into()),
            phone: Some("+5511999990000".into()),
            rsvp_token: None,
        }
    }

    #[test]
    fn guest_parses_and_generates_a_token() {
        let g = guest().parse("guest.").unwrap();
        assert_eq!(g.name, "Ana");
        assert_eq!(g.rsvp_token.as_str().len(), 32);
        let with_token = GuestInput {
            rsvp_token: Some("tok-1".into()),
            ..guest()
        }
        .parse("")
        .unwrap();
        assert_eq!(with_token.rsvp_token.as_str(), "tok-1");
    }

    #[test]
    fn guest_errors_name_the_field() {
        let e = GuestInput {
            phone: Some("011 555".into()),
            ..guest()
        }
        .parse("guest.")
        .unwrap_err();
        assert_eq!(e.field, "guest.phone");
        let e = GuestInput {
            name: Some("  ".into()),
            ..guest()
        }
        .parse("guests[3].")
        .unwrap_err();
        assert_eq!(e.field, "guests[3].name");
        let e = GuestInput {
            guest_id: None,
            ..guest()
        }
        .parse("")
        .unwrap_err();
        assert_eq!(e.field, "guest_id");
    }

    #[test]
    fn job_done_when_nothing_in_flight() {
        let mut job = Job::new(
            JobId::generate(),
            EventId::parse("e").unwrap(),
            "o",
            2,
            "now",
        );
        assert!(!job.is_done());
        job.counts.insert(Status::Queued, 0);
        job.counts.insert(Status::Read, 1);
        job.counts.insert(Status::Failed, 1);
        assert!(job.is_done());
    }
}
