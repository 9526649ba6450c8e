//! Twilio's status callbacks: the URL the sender gives Twilio for each
//! message, and what a callback to it says.
//!
//! The URL carries the invitation, its job and the attempt
//! (`?invitation_id=..&job_id=..&attempt=..`), so a callback finds its
//! invitation without an index on the message SID, can move its status and
//! the job's counters without reading it first, and one for an earlier
//! attempt is recognised and ignored. Twilio signs the URL: none of it can
//! be forged.

use crate::domain::{FieldError, InvitationId, JobId, Status};
use crate::ports::MessageRef;

const INVITATION_PARAM: &str = "invitation_id";
const JOB_PARAM: &str = "job_id";
const ATTEMPT_PARAM: &str = "attempt";

/// The `StatusCallback` for one attempt of one invitation.
pub fn url(webhook_url: &str, reference: &MessageRef) -> String {
    let MessageRef {
        invitation_id,
        job_id,
        attempt,
    } = reference;
    match job_id {
        Some(job_id) => format!(
            "{webhook_url}?{INVITATION_PARAM}={invitation_id}&{JOB_PARAM}={job_id}&{ATTEMPT_PARAM}={attempt}"
        ),
        None => {
            format!("{webhook_url}?{INVITATION_PARAM}={invitation_id}&{ATTEMPT_PARAM}={attempt}")
        }
    }
}

/// Whether a webhook call's query names an invitation: a status callback
/// does, an incoming message does not.
pub fn names_invitation(query: impl Fn(&str) -> Option<String>) -> bool {
    query(INVITATION_PARAM).is_some()
}

/// The invitation and attempt a status callback's URL names (`query` reads
/// one query parameter). Errors name the parameter.
pub fn target(query: impl Fn(&str) -> Option<String>) -> Result<MessageRef, FieldError> {
    let invitation_id = query(INVITATION_PARAM)
        .ok_or_else(|| FieldError::new(INVITATION_PARAM, "is required in the callback URL"))?;
    let invitation_id =
        InvitationId::parse(&invitation_id).map_err(|e| FieldError::new(INVITATION_PARAM, e))?;
    let job_id = query(JOB_PARAM)
        .map(|j| JobId::parse(&j).map_err(|e| FieldError::new(JOB_PARAM, e)))
        .transpose()?;
    let attempt = query(ATTEMPT_PARAM)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| FieldError::new(ATTEMPT_PARAM, "must be a number in the callback URL"))?;
    Ok(MessageRef {
        invitation_id,
        job_id,
        attempt,
    })
}

/// Maps Twilio's `MessageStatus`; statuses that precede our own
/// `sending` (queued, accepted, scheduled) carry no news and map to None.
pub fn status(raw: &str) -> Option<Status> {
    match raw {
        "sending" => Some(Status::Sending),
        "sent" => Some(Status::Sent),
        "delivered" => Some(Status::Delivered),
        "read" => Some(Status::Read),
        "failed" | "canceled" => Some(Status::Failed),
        "undelivered" => Some(Status::Undelivered),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_round_trips() {
        let id = InvitationId::parse("inv_abc").unwrap();
        let job = JobId::parse("job_x").unwrap();
        let reference = MessageRef {
            invitation_id: id.clone(),
            job_id: Some(job.clone()),
            attempt: 3,
        };
        let url = url("https://hooks.example.com/", &reference);
        assert_eq!(
            url,
            "https://hooks.example.com/?invitation_id=inv_abc&job_id=job_x&attempt=3"
        );
        let query: Vec<(String, String)> =
            serde_urlencoded::from_str(url.split_once('?').unwrap().1).unwrap();
        let read = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert!(names_invitation(read));
        assert_eq!(
            target(read),
            Ok(MessageRef {
                invitation_id: id,
                job_id: Some(job),
                attempt: 3
            })
        );
        assert_eq!(target(|_| None).unwrap_err().field, "invitation_id");
    }

    #[test]
    fn statuses() {
        assert_eq!(status("queued"), None);
        assert_eq!(status("read"), Some(Status::Read));
    }
}
