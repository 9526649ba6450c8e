//! A guest as the API shows them: their row with their latest invitation
//! (and what its error means), their opt-out and their answer.

use super::GuestRow;
use crate::app::progress::error_action;
use crate::domain::reason::Action;
use crate::domain::rsvp::{Answer, AnswerVia, Rsvp};
use crate::domain::{OptOutSource, Status};
use crate::ports::ErrorCodes;
use serde::Serialize;

#[derive(Serialize)]
pub struct GuestView<'a> {
    pub guest_id: &'a str,
    pub name: &'a str,
    pub phone: &'a str,
    pub rsvp_token: &'a str,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    pub opted_out: bool,
    /// Who opted the number out, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_out: Option<OptOutSummary<'a>>,
    pub invitation: Option<InvitationSummary<'a>>,
    /// The guest's answer that counts, if they answered.
    pub rsvp: Option<RsvpView<'a>>,
}

#[derive(Serialize)]
pub struct OptOutSummary<'a> {
    pub source: OptOutSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<&'a str>,
    pub updated_at: &'a str,
}

/// The guest's latest invitation, as much as a row shows (the invitations
/// listing has the rest): absent fields are null.
#[derive(Serialize)]
pub struct InvitationSummary<'a> {
    pub invitation_id: &'a str,
    pub job_id: &'a str,
    pub status: Status,
    pub attempt: u32,
    pub updated_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_action: Option<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_to_do: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<&'a str>,
    /// The number it went to, when the guest's number was changed since:
    /// the guest was not invited at the number they have now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_to_other_number: Option<&'a str>,
}

/// An answer as the API shows it.
#[derive(Serialize)]
pub struct RsvpView<'a> {
    pub answer: Answer,
    pub companions: u32,
    pub via: AnswerVia,
    pub at: &'a str,
}

impl<'a> From<&'a Rsvp> for RsvpView<'a> {
    fn from(r: &'a Rsvp) -> Self {
        Self {
            answer: r.answer,
            companions: r.companions,
            via: r.via,
            at: &r.at,
        }
    }
}

impl<'a> GuestView<'a> {
    pub fn new(row: &'a GuestRow, codes: &dyn ErrorCodes) -> Self {
        let g = &row.listed;
        let opt_out = row
            .opt_out
            .effective()
            .filter(|r| r.opted_out)
            .map(|r| OptOutSummary {
                source: r.source,
                keyword: r.keyword.as_deref(),
                updated_at: &r.updated_at,
            });
        let invitation = row.invitation.as_ref().map(|i| {
            let (error_action, what_to_do) = error_action(codes, i);
            InvitationSummary {
                invitation_id: i.invitation_id.as_str(),
                job_id: i.job_id.as_str(),
                status: i.status,
                attempt: i.attempt,
                updated_at: &i.updated_at,
                error_code: i.error_code.as_deref(),
                error_message: i.error_message.as_deref(),
                error_action,
                what_to_do,
                flag: i.flag.as_deref(),
                sent_to_other_number: (!i.guest.phone.same_user(&g.guest.phone))
                    .then(|| i.guest.phone.as_str()),
            }
        });
        GuestView {
            guest_id: g.guest.guest_id.as_str(),
            name: &g.guest.name,
            phone: g.guest.phone.as_str(),
            rsvp_token: g.guest.rsvp_token.as_str(),
            created_at: &g.created_at,
            updated_at: &g.updated_at,
            opted_out: opt_out.is_some(),
            opt_out,
            invitation,
            rsvp: g.rsvp.as_ref().map(RsvpView::from),
        }
    }
}

/// Rows as the API shows them.
pub fn views<'a>(rows: &'a [GuestRow], codes: &dyn ErrorCodes) -> Vec<GuestView<'a>> {
    rows.iter().map(|row| GuestView::new(row, codes)).collect()
}
