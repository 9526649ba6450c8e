//! A guest's message to the sender: an opt-out or opt-in keyword changes
//! their record; a tap on an invitation's quick-reply button records the
//! answer its payload carries, for the invitation its token opens; a typed
//! yes / no / maybe (in English, Portuguese or Spanish) records an answer
//! to the invitation it replied to, or, quoting nothing, the latest that
//! reached the number when one organizer's did (several: the guest is
//! asked which they mean); anything else is kept for the organizer. A
//! newly recorded answer is confirmed in the conversation (the event's
//! confirmation text); a delivery the provider repeats is answered without
//! doing its work twice.

use crate::app::AppError;
use crate::app::rsvp::{self, AnswerStore, Replied};
use crate::domain::render::{self, TemplateContext};
use crate::domain::rsvp::{Answer, AnswerToken, AnswerVia, Payload};
use crate::domain::{Invitation, Keyword, OptOut, PhoneNumber, now};
use crate::ports::{DeliveryStore, InboundMessage, OptOutStore, Recorded};

/// What a guest's message reads and writes.
pub trait InboundStore: OptOutStore + DeliveryStore + AnswerStore {}
impl<T: OptOutStore + DeliveryStore + AnswerStore + ?Sized> InboundStore for T {}

/// Receives one delivery of a guest's message (`delivery` names it, when
/// the provider does). Some(text): the confirmation to send back.
pub async fn receive(
    store: &dyn InboundStore,
    message: &InboundMessage,
    delivery: Option<&str>,
    rsvp_page_url: &str,
) -> Result<Option<String>, AppError> {
    if let Some(delivery) = delivery
        && store.delivery_seen(delivery).await?
    {
        tracing::info!("a retry of a request already answered; answered again");
        return Ok(None);
    }
    let reply = act(store, message, rsvp_page_url).await?;
    if let Some(delivery) = delivery {
        // The work is done and repeatable: a failure to remember it only
        // lets a retry do it again.
        if let Err(err) = store.record_delivery(delivery).await {
            tracing::warn!(error = %err, "could not remember the delivery; a retry will be applied again");
        }
    }
    Ok(reply)
}

async fn act(
    store: &dyn InboundStore,
    message: &InboundMessage,
    rsvp_page_url: &str,
) -> Result<Option<String>, AppError> {
    let from = &message.from;
    if let Some(payload) = &message.button_payload {
        match Payload::parse(payload) {
            Payload::Answer(answer, token) => {
                return tapped(store, from, answer, &token, rsvp_page_url).await;
            }
            Payload::Altered => {
                tracing::warn!(from = %from, "a button's payload is not one this stack wrote (altered); nothing recorded");
                return Ok(None);
            }
            // A button of the organizer's own: its text is read as typed.
            Payload::Foreign => {}
        }
    }
    let text = message.text.as_str();
    if let Some((keyword, word)) = Keyword::of(text) {
        // "YES" is also how guests answer invitations: only an opted-out
        // number has anything to opt back into.
        let opted_out = || async {
            let current = store.get_guests_opt_out(from).await?;
            Ok::<_, AppError>(current.is_some_and(|c| c.opted_out))
        };
        if keyword == Keyword::OptOut || opted_out().await? {
            let record = OptOut::by_guest(from.clone(), keyword == Keyword::OptOut, word, &now());
            store.put_opt_out(&record, None).await?;
            tracing::info!(from = %from, opted_out = record.opted_out, keyword = ?record.keyword, "guest's opt-out recorded");
            return Ok(None);
        }
    }
    let replied_to = message.replied_to.as_deref();
    let (invitation, sure) = match rsvp::replied_invitation(store, from, replied_to).await? {
        None => {
            tracing::info!(from = %from, "a message from a number no invitation reached; acknowledged");
            return Ok(None);
        }
        Some(Replied::To(invitation)) => (invitation, true),
        Some(Replied::Unsure(invitation)) => (invitation, false),
        Some(Replied::Ambiguous) => {
            tracing::info!(from = %from, "a message quoting nothing from a number several organizers invited; the guest is asked which invitation they mean");
            return Ok(Some(rsvp::WHICH_INVITATION.to_owned()));
        }
    };
    // An answer counts for an invitation it surely answers, while its
    // event has not started; anything else is kept for the organizer.
    let answer = match Answer::from_reply(text) {
        Some(answer) if sure && rsvp::answerable(store, &invitation).await?.is_some() => answer,
        _ => {
            rsvp::keep(store, &invitation, text, &message.message_id).await?;
            tracing::info!(from = %from, invitation_id = %invitation.invitation_id, "a guest's message kept for the organizer");
            return Ok(None);
        }
    };
    record(store, &invitation, answer, AnswerVia::Typed, rsvp_page_url).await
}

/// A tap on an invitation's button: recorded when its token opens the
/// invitation, and the invitation went to the number that tapped.
async fn tapped(
    store: &dyn InboundStore,
    from: &PhoneNumber,
    answer: Answer,
    token: &AnswerToken,
    rsvp_page_url: &str,
) -> Result<Option<String>, AppError> {
    let Some((invitation, _)) = rsvp::open(store, token).await? else {
        tracing::warn!(from = %from, invitation_id = %token.invitation_id, "a button's token opens no invitation (altered, another's, or the event has started); nothing recorded");
        return Ok(None);
    };
    if invitation.guest.phone.whatsapp_identity() != from.whatsapp_identity() {
        tracing::warn!(from = %from, invitation_id = %invitation.invitation_id, "a button tapped by another number than the invitation's; nothing recorded");
        return Ok(None);
    }
    record(store, &invitation, answer, AnswerVia::Button, rsvp_page_url).await
}

/// Records an answer; a new one is confirmed with the event's text for it.
async fn record(
    store: &dyn InboundStore,
    invitation: &Invitation,
    answer: Answer,
    via: AnswerVia,
    rsvp_page_url: &str,
) -> Result<Option<String>, AppError> {
    let recorded = rsvp::answer(store, invitation, answer, 0, via).await?;
    let ids = (&invitation.invitation_id, &invitation.guest.guest_id);
    match recorded {
        Recorded::Recorded => {
            tracing::info!(invitation_id = %ids.0, guest_id = %ids.1, %answer, via = via.as_str(), "answer recorded");
        }
        Recorded::Repeated => {
            tracing::info!(invitation_id = %ids.0, guest_id = %ids.1, %answer, "the guest's answer already says so; nothing recorded");
            return Ok(None);
        }
        Recorded::NoSuchGuest => {
            tracing::warn!(invitation_id = %ids.0, guest_id = %ids.1, "an answer from a guest no longer on the list; nothing recorded");
            return Ok(None);
        }
    }
    let Some(event) = store
        .get_event(&invitation.owner, &invitation.event_id)
        .await?
    else {
        return Ok(None);
    };
    let context = TemplateContext::for_invitation(&event, invitation, rsvp_page_url);
    match render::render(event.confirmations.for_answer(answer), &context) {
        Ok(text) => Ok(Some(text)),
        Err(err) => {
            tracing::warn!(error = %err, "the confirmation does not render; none sent");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests;
