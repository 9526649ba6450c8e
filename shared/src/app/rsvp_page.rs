//! The RSVP page a guest's link opens: no login; the answer token in the
//! path opens the guest's own invitation (and nothing else) while its event
//! has not started. Showing it reads the guest's answer; a form posted to
//! it records a new one (`via`: `link`). A token that opens nothing,
//! whatever the reason, is closed alike; a client that tried too many of
//! those is refused for a while ([`rsvp::open_page`]).

use crate::app::AppError;
use crate::app::rsvp::{self, PageAccess, PageStore};
use crate::domain::rsvp::{Answer, AnswerVia, Rsvp, companions};
use crate::domain::{Event, FieldError, Invitation};
use crate::ports::Recorded;

/// The form is two fields; anything longer is not it.
const MAX_FORM_BYTES: usize = 1024;

/// What the page shows.
#[derive(Debug, Clone)]
pub enum Page {
    /// The guest's invitation, their answer, and a note on what just happened.
    Open(Box<OpenPage>),
    /// The token opens nothing (altered, unknown, expired, or the guest was
    /// removed).
    Closed,
    /// The client tried too many tokens that opened nothing.
    TooManyTries,
}

#[derive(Debug, Clone)]
pub struct OpenPage {
    pub invitation: Invitation,
    pub event: Event,
    pub rsvp: Option<Rsvp>,
    pub note: Note,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    None,
    Saved,
    /// The form was not one to record; names the field.
    Invalid(FieldError),
}

/// The page for `token` as `client` sees it at `now` (epoch seconds);
/// `form`: a posted answer to record first.
pub async fn page(
    store: &dyn PageStore,
    token: &str,
    client: &str,
    now: i64,
    form: Option<&[u8]>,
) -> Result<Page, AppError> {
    let (invitation, event) = match rsvp::open_page(store, token, client, now).await? {
        PageAccess::Open(found) => *found,
        PageAccess::Closed => {
            tracing::info!("an RSVP link that opens no invitation (altered, unknown or expired)");
            return Ok(Page::Closed);
        }
        PageAccess::TooManyTries => {
            tracing::warn!(
                "too many RSVP links that open nothing from one client; refused for a while"
            );
            return Ok(Page::TooManyTries);
        }
    };
    let note = match form.map(read_form) {
        None => Note::None,
        Some(Err(err)) => Note::Invalid(err),
        Some(Ok((answer, companions))) => {
            let recorded =
                rsvp::answer(store, &invitation, answer, companions, AnswerVia::Link).await?;
            let ids = (&invitation.invitation_id, &invitation.guest.guest_id);
            if recorded == Recorded::NoSuchGuest {
                tracing::warn!(invitation_id = %ids.0, guest_id = %ids.1, "an answer from a guest no longer on the list; nothing recorded");
                return Ok(Page::Closed);
            }
            tracing::info!(invitation_id = %ids.0, guest_id = %ids.1, %answer, recorded = recorded == Recorded::Recorded, "answer from the RSVP page");
            Note::Saved
        }
    };
    let rsvp = current(store, &invitation).await?;
    Ok(Page::Open(Box::new(OpenPage {
        invitation,
        event,
        rsvp,
        note,
    })))
}

/// The guest's answer that counts now.
async fn current(store: &dyn PageStore, inv: &Invitation) -> Result<Option<Rsvp>, AppError> {
    let (listed, _) =
        crate::app::answers::history(store, &inv.owner, &inv.event_id, &inv.guest.guest_id).await?;
    Ok(listed.rsvp)
}

#[derive(serde::Deserialize)]
struct Form {
    answer: Option<String>,
    companions: Option<String>,
}

/// The form, read: the answer, and companions (with yes only).
fn read_form(body: &[u8]) -> Result<(Answer, u32), FieldError> {
    if body.len() > MAX_FORM_BYTES {
        return Err(FieldError::new("answer", "the form is too long"));
    }
    let form: Form = serde_urlencoded::from_bytes(body)
        .map_err(|_| FieldError::new("answer", "the form could not be read"))?;
    let answer = form
        .answer
        .as_deref()
        .ok_or_else(|| FieldError::new("answer", "choose yes, no or maybe"))?
        .parse::<Answer>()
        .map_err(|e| FieldError::new("answer", e))?;
    let raw = form.companions.unwrap_or_default();
    let raw = raw.trim();
    let given =
        if raw.is_empty() {
            None
        } else {
            Some(raw.parse::<i64>().map_err(|_| {
                FieldError::new("companions", "must be a whole number from 0 to 20")
            })?)
        };
    let companions = companions(given, "companions")?;
    Ok((answer, if answer == Answer::Yes { companions } else { 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::app::fixtures;

    async fn invited() -> (MemoryStore, Invitation) {
        let (store, _queue, invitations) = fixtures::invited(1).await;
        (store, invitations.into_iter().next().unwrap())
    }

    fn open(page: Page) -> OpenPage {
        match page {
            Page::Open(open) => *open,
            other => panic!("not open: {other:?}"),
        }
    }

    #[tokio::test]
    async fn given_a_guests_link_when_they_answer_yes_with_two_then_it_is_saved_and_shown() {
        let (store, inv) = invited().await;
        let token = inv.answer_token().unwrap().to_string();
        let shown = open(page(&store, &token, "ip", 0, None).await.unwrap());
        assert_eq!((shown.rsvp, shown.note), (None, Note::None));
        let form = b"answer=yes&companions=2";
        let saved = open(page(&store, &token, "ip", 0, Some(form)).await.unwrap());
        assert_eq!(saved.note, Note::Saved);
        let rsvp = saved.rsvp.unwrap();
        assert_eq!(
            (rsvp.answer, rsvp.companions, rsvp.via),
            (Answer::Yes, 2, AnswerVia::Link)
        );
    }

    #[tokio::test]
    async fn given_a_bad_form_then_the_field_is_named_and_nothing_is_recorded() {
        let (store, inv) = invited().await;
        let token = inv.answer_token().unwrap().to_string();
        let shown = open(
            page(&store, &token, "ip", 0, Some(b"answer=perhaps"))
                .await
                .unwrap(),
        );
        assert!(matches!(&shown.note, Note::Invalid(e) if e.field == "answer"));
        assert_eq!(shown.rsvp, None);
        let many = open(
            page(&store, &token, "ip", 0, Some(b"answer=yes&companions=99"))
                .await
                .unwrap(),
        );
        assert!(matches!(&many.note, Note::Invalid(e) if e.field == "companions"));
        // No with companions: the companions are dropped, the answer kept.
        let no = open(
            page(&store, &token, "ip", 0, Some(b"answer=no&companions=3"))
                .await
                .unwrap(),
        );
        assert_eq!(
            no.rsvp.map(|r| (r.answer, r.companions)),
            Some((Answer::No, 0))
        );
    }

    #[tokio::test]
    async fn given_a_guest_removed_from_the_list_then_their_link_shows_the_closed_page() {
        use crate::ports::GuestStore;
        let (store, inv) = invited().await;
        let token = inv.answer_token().unwrap().to_string();
        let removed = store
            .remove_guest(&inv.owner, &inv.event_id, &inv.guest.guest_id)
            .await
            .unwrap();
        assert!(removed);
        for form in [None, Some(&b"answer=yes"[..])] {
            let shown = page(&store, &token, "ip", 0, form).await.unwrap();
            assert!(matches!(shown, Page::Closed), "{shown:?}");
        }
    }

    #[tokio::test]
    async fn given_a_token_that_opens_nothing_then_the_page_is_closed() {
        let (store, _inv) = invited().await;
        let closed = page(&store, "inv_x.nothing", "ip", 0, None).await.unwrap();
        assert!(matches!(closed, Page::Closed));
    }
}
