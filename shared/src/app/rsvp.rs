//! Guests' answers: recorded from a quick-reply tap, a typed reply, the
//! RSVP page or the organizer; the headcount and the per-guest list.
//!
//! A guest has no login. What lets them answer is the invitation's answer
//! token ([`AnswerToken`]): it opens only its own invitation, only while
//! the event has not started, and a token that opens nothing is answered
//! the same whatever the reason (altered, unknown, expired).

use super::AppError;
use crate::domain::rsvp::{Answer, AnswerToken, AnswerVia, Reply, Rsvp};
use crate::domain::{Event, Invitation, PhoneNumber, Status, now};
use crate::ports::{AttemptStore, EventStore, GuestStore, InvitationStore, Recorded, RsvpStore};

/// What answering reads and writes.
pub trait AnswerStore: EventStore + GuestStore + InvitationStore + RsvpStore {}
impl<T: EventStore + GuestStore + InvitationStore + RsvpStore + ?Sized> AnswerStore for T {}

/// How many of a number's latest invitations a typed reply is matched against.
const RECENT_INVITATIONS: usize = 10;

/// The invitation a token opens, with its event: None when the token is
/// altered or unknown, or its event has started.
pub async fn open(
    store: &dyn AnswerStore,
    token: &AnswerToken,
) -> Result<Option<(Invitation, Event)>, AppError> {
    let Some(invitation) = store.get_invitation(&token.invitation_id).await? else {
        return Ok(None);
    };
    if !token.opens(&invitation.answer_secret) {
        return Ok(None);
    }
    let Some(event) = store
        .get_event(&invitation.owner, &invitation.event_id)
        .await?
    else {
        return Ok(None);
    };
    if has_started(&event) {
        return Ok(None);
    }
    // A guest removed from the list has no invitation to answer any more.
    let on_the_list = !store
        .get_guests(
            &invitation.owner,
            &invitation.event_id,
            std::slice::from_ref(&invitation.guest.guest_id),
        )
        .await?
        .is_empty();
    Ok(on_the_list.then_some((invitation, event)))
}

/// The RSVP page's limit on tries of tokens that open nothing: this many
/// per client in each window, then those get 429 for a while. A link that
/// opens an invitation always opens it, whatever its client tried before:
/// guests behind one address (a carrier's, a venue's Wi-Fi) share the
/// count. That tells a guesser over the limit which token is good, but a
/// token holds 128 random bits: the limit keeps floods of bad links short,
/// guessing is hopeless either way.
pub const MAX_FAILED_TRIES: u32 = 20;
pub const TRY_WINDOW_SECONDS: i64 = 15 * 60;

/// What the RSVP page reads and writes.
pub trait PageStore: AnswerStore + AttemptStore {}
impl<T: AnswerStore + AttemptStore + ?Sized> PageStore for T {}

/// What a token brought to the RSVP page opens.
#[derive(Debug, Clone)]
pub enum PageAccess {
    Open(Box<(Invitation, Event)>),
    /// Altered, unknown or expired: all answered alike.
    Closed,
    /// The client tried too many tokens that opened nothing: wait.
    TooManyTries,
}

/// Opens the RSVP page for a raw token from `client` (an IP address), at
/// `now` (epoch seconds), counting a token that opens nothing against the
/// client. Once over the limit every token is refused alike, so the page
/// tells nothing about which are good.
pub async fn open_page(
    store: &dyn PageStore,
    raw: &str,
    client: &str,
    now: i64,
) -> Result<PageAccess, AppError> {
    let opened = match AnswerToken::parse(raw) {
        Some(token) => open(store, &token).await?,
        None => None,
    };
    if let Some(found) = opened {
        return Ok(PageAccess::Open(Box::new(found)));
    }
    let window = now - now.rem_euclid(TRY_WINDOW_SECONDS);
    if store.failed_attempts(client, window).await? >= MAX_FAILED_TRIES {
        return Ok(PageAccess::TooManyTries);
    }
    store
        .add_failed_attempt(client, window, window + 2 * TRY_WINDOW_SECONDS)
        .await?;
    Ok(PageAccess::Closed)
}

/// Records a guest's answer to their invitation.
pub async fn answer(
    store: &dyn AnswerStore,
    invitation: &Invitation,
    answer: Answer,
    companions: u32,
    via: AnswerVia,
) -> Result<Recorded, AppError> {
    let rsvp = Rsvp {
        answer,
        companions,
        via,
        at: now(),
    };
    Ok(store
        .record_rsvp(
            &invitation.owner,
            &invitation.event_id,
            &invitation.guest.guest_id,
            &rsvp,
        )
        .await?)
}

/// Which invitation a guest's message is about.
#[derive(Debug, Clone)]
pub enum Replied {
    /// The invitation it quoted, or (quoting nothing) the latest of the
    /// one organizer whose invitations reached the number lately: an
    /// answer in it counts for this invitation.
    To(Box<Invitation>),
    /// It quoted a message that is none of the guest's recent invitations,
    /// and one organizer's reached the number lately: kept for that
    /// organizer to read, never counted.
    Unsure(Box<Invitation>),
    /// More than one organizer's invitation reached the number lately and
    /// it quoted none: the guest is asked which one they mean, and no
    /// organizer sees the text (it may be for another).
    Ambiguous,
}

/// How long after an invitation reached a guest a reply that quotes
/// nothing may be taken as being about it.
const REPLY_WINDOW: time::Duration = time::Duration::days(30);

/// What a guest who wrote without quoting gets back when several
/// organizers' invitations reached them, in the three languages answers
/// are read in.
pub const WHICH_INVITATION: &str = "You have invitations from more than one host: to answer one, reply to its message (swipe right on it, or touch and hold, then Reply). / Você tem convites de mais de um anfitrião: para responder a um, responda à mensagem dele. / Tienes invitaciones de más de un anfitrión: para responder a una, responde a su mensaje.";

/// The invitation a message from `from` is about. One it quotes
/// (`replied_to`, Twilio's `OriginalRepliedMessageSid`) among the latest
/// sent to that WhatsApp user counts for it. Otherwise only the
/// invitations that reached the number (sent and not failed) in the last
/// 30 days are looked at, and only if they are one organizer's: every
/// organizer of the stack shares its WhatsApp sender, so the latest
/// message the guest got may be another organizer's.
pub async fn replied_invitation(
    store: &dyn AnswerStore,
    from: &PhoneNumber,
    replied_to: Option<&str>,
) -> Result<Option<Replied>, AppError> {
    let sent: Vec<Invitation> = store
        .invitations_to(from, RECENT_INVITATIONS)
        .await?
        .into_iter()
        .filter(|i| i.message_sid.is_some())
        .collect();
    let quoted = replied_to.map(|sid| {
        sent.iter()
            .find(|i| i.message_sid.as_deref() == Some(sid))
            .cloned()
    });
    let quoted_other = match quoted {
        Some(Some(found)) => return Ok(Some(Replied::To(Box::new(found)))),
        Some(None) => true,
        None => false,
    };
    let since = crate::domain::timestamp(time::OffsetDateTime::now_utc() - REPLY_WINDOW);
    // Newest first, as the store gives them.
    let reached: Vec<Invitation> = sent
        .into_iter()
        .filter(|i| !matches!(i.status, Status::Failed | Status::Undelivered))
        .filter(|i| i.updated_at >= since)
        .collect();
    let organizers: std::collections::HashSet<&str> =
        reached.iter().map(|i| i.owner.as_str()).collect();
    if organizers.len() > 1 {
        return Ok(Some(Replied::Ambiguous));
    }
    let latest = reached.into_iter().next().map(Box::new);
    Ok(if quoted_other {
        latest.map(Replied::Unsure)
    } else {
        latest.map(Replied::To)
    })
}

/// The invitation's event while it may still be answered (it has not started).
pub async fn answerable(
    store: &dyn AnswerStore,
    invitation: &Invitation,
) -> Result<Option<Event>, AppError> {
    let event = store
        .get_event(&invitation.owner, &invitation.event_id)
        .await?;
    Ok(event.filter(|e| !has_started(e)))
}

fn has_started(event: &Event) -> bool {
    event
        .starts_at_instant()
        .is_some_and(|at| at <= time::OffsetDateTime::now_utc())
}

/// Keeps a guest's message that was not an answer.
pub async fn keep(
    store: &dyn AnswerStore,
    invitation: &Invitation,
    text: &str,
    message_sid: &str,
) -> Result<(), AppError> {
    let reply = Reply {
        guest_id: invitation.guest.guest_id.clone(),
        text: text.to_owned(),
        at: now(),
        message_sid: message_sid.to_owned(),
    };
    store
        .keep_reply(&invitation.owner, &invitation.event_id, &reply)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::answers::{AnswerFilter, answers, history, record_by_organizer};
    use crate::app::fixtures::{self, OWNER};
    use crate::domain::GuestId;
    use crate::domain::rsvp::Headcount;

    async fn invited(n: u32) -> (crate::adapters::memory::MemoryStore, Vec<Invitation>) {
        let (store, _queue, invitations) = fixtures::invited(n).await;
        (store, invitations)
    }

    #[tokio::test]
    async fn a_token_opens_its_own_invitation_only() {
        let (store, invitations) = invited(2).await;
        let token = invitations[0].answer_token().unwrap();
        let (opened, _) = open(&store, &token).await.unwrap().unwrap();
        assert_eq!(opened.invitation_id, invitations[0].invitation_id);
        // The other invitation's id with this secret opens nothing.
        let swapped = AnswerToken {
            invitation_id: invitations[1].invitation_id.clone(),
            ..token.clone()
        };
        assert!(open(&store, &swapped).await.unwrap().is_none());
        let altered = AnswerToken {
            secret: AnswerToken::new_secret(),
            ..token
        };
        assert!(open(&store, &altered).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_page_limits_tries_of_tokens_that_open_nothing() {
        let (store, invitations) = invited(1).await;
        let good = invitations[0].answer_token().unwrap().to_string();
        let now = 1_800_000_000;
        let page = |raw: String, client: &'static str| {
            let store = &store;
            async move { open_page(store, &raw, client, now).await.unwrap() }
        };
        assert!(matches!(page(good.clone(), "a").await, PageAccess::Open(_)));
        for n in 0..MAX_FAILED_TRIES {
            let wrong = format!(
                "{}.{}",
                invitations[0].invitation_id,
                AnswerToken::new_secret()
            );
            let raw = if n % 2 == 0 { wrong } else { "junk".to_owned() };
            assert!(matches!(page(raw, "a").await, PageAccess::Closed));
        }
        // Over the limit, bad links are refused; a guest's good link
        // behind the same address still opens; another client's bad link
        // is only closed; a new window starts afresh.
        assert!(matches!(
            page("junk".into(), "a").await,
            PageAccess::TooManyTries
        ));
        assert!(matches!(page(good.clone(), "a").await, PageAccess::Open(_)));
        assert!(matches!(page("junk".into(), "b").await, PageAccess::Closed));
        let later = open_page(&store, "junk", "a", now + TRY_WINDOW_SECONDS)
            .await
            .unwrap();
        assert!(matches!(later, PageAccess::Closed));
    }

    #[tokio::test]
    async fn the_latest_answer_counts_and_a_repeat_records_nothing() {
        let (store, invitations) = invited(3).await;
        let inv = &invitations[0];
        let yes = answer(&store, inv, Answer::Yes, 0, AnswerVia::Button);
        assert_eq!(yes.await.unwrap(), Recorded::Recorded);
        let again = answer(&store, inv, Answer::Yes, 0, AnswerVia::Button);
        assert_eq!(again.await.unwrap(), Recorded::Repeated);
        let no = answer(&store, inv, Answer::No, 0, AnswerVia::Typed);
        assert_eq!(no.await.unwrap(), Recorded::Recorded);
        let maybe = answer(&store, &invitations[1], Answer::Maybe, 0, AnswerVia::Link);
        assert_eq!(maybe.await.unwrap(), Recorded::Recorded);
        let (_, history) = history(&store, OWNER, &inv.event_id, &inv.guest.guest_id)
            .await
            .unwrap();
        let said: Vec<Answer> = history.all().iter().map(|r| r.answer).collect();
        assert_eq!(said, [Answer::Yes, Answer::No]);
        let (_, corrected) = record_by_organizer(
            &store,
            OWNER,
            &inv.event_id,
            &inv.guest.guest_id,
            Answer::Yes,
            2,
        )
        .await
        .unwrap();
        assert_eq!(corrected.latest().unwrap().via, AnswerVia::Organizer);
        let all = answers(&store, OWNER, &inv.event_id, None, None, 10)
            .await
            .unwrap();
        assert_eq!(
            all.headcount,
            Headcount {
                yes: 1,
                no: 0,
                maybe: 1,
                no_answer: 1,
                companions: 2
            }
        );
        let silent = answers(
            &store,
            OWNER,
            &inv.event_id,
            Some(AnswerFilter::NoAnswer),
            None,
            10,
        )
        .await
        .unwrap();
        assert_eq!(silent.rows.len(), 1);
        assert_eq!(silent.rows[0].guest.guest_id, invitations[2].guest.guest_id);
        let first = answers(&store, OWNER, &inv.event_id, None, None, 2)
            .await
            .unwrap();
        let rest = answers(
            &store,
            OWNER,
            &inv.event_id,
            None,
            first.next_cursor.as_deref(),
            2,
        )
        .await
        .unwrap();
        assert_eq!((first.rows.len(), rest.rows.len()), (2, 1));
        assert!(rest.next_cursor.is_none());
        let missing = GuestId::parse("nobody").unwrap();
        let err = record_by_organizer(&store, OWNER, &inv.event_id, &missing, Answer::No, 0).await;
        assert!(matches!(err, Err(AppError::NotFound(_))));
    }
}
