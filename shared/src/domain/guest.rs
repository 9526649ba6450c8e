//! An event's guest list, kept on the server: each guest once, by id and by
//! phone. A send adds its guests to the list and points each at the
//! invitation it wrote, so the list always knows each guest's latest one.

use super::event::required_text;
use super::rsvp::Rsvp;
use super::{FieldError, Guest, GuestId, InvitationId, PhoneNumber, RsvpToken, Status};

/// A guest of an event, as the list keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGuest {
    pub guest: Guest,
    pub created_at: String,
    pub updated_at: String,
    /// The guest's latest invitation for the event, if any was sent.
    pub invitation_id: Option<InvitationId>,
    /// The guest's answer that counts (their latest), if they answered.
    pub rsvp: Option<Rsvp>,
}

/// A guest to add or change, before the list is consulted: the id may be
/// missing (the list finds the guest by phone, or derives one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestEntry {
    pub guest_id: Option<GuestId>,
    pub name: String,
    pub phone: PhoneNumber,
    pub rsvp_token: Option<RsvpToken>,
}

impl GuestEntry {
    /// The id a guest gets when none is given: stable for the same number,
    /// the same rule the dashboard follows, so importing a file again
    /// finds the same guests.
    pub fn id_from_phone(phone: &PhoneNumber) -> GuestId {
        let digits: String = phone
            .as_str()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        GuestId::parse(&format!("p{digits}")).expect("p and digits make an id")
    }

    /// The guest with this id (the given one, else the derived one).
    pub fn into_guest(self, id: GuestId, keep_token: Option<&RsvpToken>) -> Guest {
        Guest {
            guest_id: id,
            name: self.name,
            phone: self.phone,
            rsvp_token: self
                .rsvp_token
                .or_else(|| keep_token.cloned())
                .unwrap_or_else(RsvpToken::generate),
        }
    }
}

/// One guest as given to the list (a JSON object or a CSV row), before validation.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct GuestEntryInput {
    pub guest_id: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub rsvp_token: Option<String>,
}

impl GuestEntryInput {
    /// Parses by the send's rules; `path` prefixes field names in errors.
    pub fn parse(self, path: &str) -> Result<GuestEntry, FieldError> {
        let field = |name: &str| format!("{path}{name}");
        let present = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let guest_id = present(self.guest_id)
            .map(|id| GuestId::parse(&id).map_err(|e| FieldError::new(field("guest_id"), e)))
            .transpose()?;
        let name = required_text(self.name, &field("name"), 100)?;
        let phone = required_text(self.phone, &field("phone"), 32)?;
        let phone =
            PhoneNumber::parse_written(&phone).map_err(|e| FieldError::new(field("phone"), e))?;
        let rsvp_token = present(self.rsvp_token)
            .map(|t| RsvpToken::parse(&t).map_err(|e| FieldError::new(field("rsvp_token"), e)))
            .transpose()?;
        Ok(GuestEntry {
            guest_id,
            name,
            phone,
            rsvp_token,
        })
    }
}

/// The `index`th entry of a request's `guests`, parsed on its own as `I`
/// then by `parse` (given the field prefix `guests[index].`): the id it
/// gives, to name it in a rejection, and the guest or the field at fault.
pub fn parse_nth<I: serde::de::DeserializeOwned, T>(
    index: usize,
    value: serde_json::Value,
    parse: impl FnOnce(I, &str) -> Result<T, FieldError>,
) -> (Option<String>, Result<T, FieldError>) {
    let raw_id = value
        .get("guest_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let parsed = serde_json::from_value::<I>(value)
        .map_err(|e| FieldError::new(format!("guests[{index}]"), e))
        .and_then(|input| parse(input, &format!("guests[{index}].")));
    (raw_id, parsed)
}

/// The most guests one request may bring (a send, an import).
pub const MAX_PER_REQUEST: usize = 10_000;

/// The most guests one page of a listing holds.
pub const MAX_PAGE: usize = 1_000;

/// Whether a guest whose latest invitation is at `status` counts as invited:
/// it is still on its way, or it arrived. A failed or skipped one does not,
/// so such a guest may be invited again without saying so.
pub fn holds_the_guest(status: Status) -> bool {
    status.is_in_flight() || matches!(status, Status::Delivered | Status::Read)
}

/// Whether a guest's latest invitation holds them as they are listed now
/// (at `phone`): by its status, and only at the number it went to. A guest
/// whose number was changed since was never invited at the new one.
pub fn holds(invitation: &super::Invitation, phone: &PhoneNumber) -> bool {
    holds_the_guest(invitation.status) && invitation.guest.phone.same_user(phone)
}

/// Why a send left a guest out, as the API names it.
pub const ALREADY_INVITED: &str = "already_invited";

/// The words for a guest left out because their invitation at `status` holds them.
pub fn already_invited_words(status: Status) -> String {
    format!(
        "already has an invitation for this event ({status}); send with \"resend\": true to invite them again"
    )
}

/// What the list shows of a guest's invitation state, to filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    NotInvited,
    Is(Status),
}

impl std::str::FromStr for StatusFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "not_invited" {
            return Ok(StatusFilter::NotInvited);
        }
        s.parse::<Status>()
            .map(StatusFilter::Is)
            .map_err(|e| format!("{e}, or not_invited"))
    }
}

impl StatusFilter {
    pub fn matches(self, status: Option<Status>) -> bool {
        match self {
            StatusFilter::NotInvited => status.is_none(),
            StatusFilter::Is(wanted) => status == Some(wanted),
        }
    }
}

/// Search text as people type it: any case; a phone matches with or
/// without its spaces and punctuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search(String);

impl Search {
    /// None for an empty search.
    pub fn parse(raw: &str) -> Option<Self> {
        let text = raw.trim().to_lowercase();
        (!text.is_empty()).then_some(Search(text))
    }

    pub fn matches(&self, guest: &Guest) -> bool {
        if guest.name.to_lowercase().contains(&self.0) {
            return true;
        }
        let digits: String = self.0.chars().filter(char::is_ascii_digit).collect();
        let only_phone_chars = self
            .0
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
        only_phone_chars && !digits.is_empty() && guest.phone.as_str().contains(&digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(name: &str, phone: &str) -> Guest {
        Guest {
            guest_id: GuestId::parse("g1").unwrap(),
            name: name.into(),
            phone: PhoneNumber::parse(phone).unwrap(),
            rsvp_token: RsvpToken::generate(),
        }
    }

    #[test]
    fn an_entry_names_each_bad_field_and_may_leave_the_id_out() {
        let entry = GuestEntryInput {
            name: Some(" Ana ".into()),
            phone: Some("+5511999990001".into()),
            ..Default::default()
        }
        .parse("guests[0].")
        .unwrap();
        assert_eq!(entry.guest_id, None);
        assert_eq!(entry.name, "Ana");
        let bad = GuestEntryInput {
            name: Some("Ana".into()),
            phone: Some("5511".into()),
            ..Default::default()
        }
        .parse("guests[3].")
        .unwrap_err();
        assert_eq!(bad.field, "guests[3].phone");
        let bad = GuestEntryInput {
            phone: Some("+5511999990001".into()),
            ..Default::default()
        }
        .parse("")
        .unwrap_err();
        assert_eq!(bad.field, "name");
    }

    #[test]
    fn the_derived_id_is_the_dashboards() {
        let phone = PhoneNumber::parse("+14155550100").unwrap();
        assert_eq!(GuestEntry::id_from_phone(&phone).as_str(), "p14155550100");
    }

    #[test]
    fn invited_means_on_its_way_or_arrived() {
        let holding: Vec<_> = Status::ALL
            .into_iter()
            .filter(|s| holds_the_guest(*s))
            .collect();
        assert_eq!(
            holding,
            [
                Status::Queued,
                Status::Waiting,
                Status::Sending,
                Status::Sent,
                Status::Delivered,
                Status::Read
            ]
        );
    }

    #[test]
    fn search_finds_names_in_any_case_and_phones_as_typed() {
        let ana = guest("Ana Souza", "+5511999990001");
        assert!(Search::parse("souza").unwrap().matches(&ana));
        assert!(Search::parse("99999-0001").unwrap().matches(&ana));
        assert!(!Search::parse("bruno").unwrap().matches(&ana));
        assert!(
            !Search::parse("ana 1")
                .unwrap()
                .matches(&guest("Bia", "+5511999990001"))
        );
        assert_eq!(Search::parse("  "), None);
        assert_eq!(
            "not_invited".parse::<StatusFilter>(),
            Ok(StatusFilter::NotInvited)
        );
        assert!("nope".parse::<StatusFilter>().is_err());
    }
}
