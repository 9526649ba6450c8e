//! Retry: a failed, undelivered or skipped invitation (or a flagged send
//! the organizer decided on) sent again as a new attempt, so callbacks for
//! the old attempt are then ignored; or every failed one of a job or event
//! at once. Only a guest's latest invitation is retried: a failure a newer
//! invitation replaced stays as it is, so a retry never gives a guest a
//! second message.

use crate::app::{AppError, guest_list, lifecycle, send};
use crate::domain::{
    EventId, GuestId, Invitation, InvitationId, JobId, Status, TemplateId, TemplateRef, now,
};
use crate::ports::{
    EventStore, GuestStore, InvitationStore, JobStore, ListQuery, Renewal, SendQueue,
    TemplateStore, Transition,
};
use std::collections::HashMap;

/// What retry reads and moves: invitations, the job or event named, the
/// guests' latest invitations (only those are sent again) and what a new
/// attempt is rendered from (the list's guest, the template's version).
pub trait RetryStore: InvitationStore + JobStore + EventStore + GuestStore + TemplateStore {}
impl<T: InvitationStore + JobStore + EventStore + GuestStore + TemplateStore + ?Sized> RetryStore
    for T
{
}

/// A retried invitation: its new attempt, rendered again from the
/// template's current version and the guest as listed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retried {
    pub attempt: u32,
    pub template: Option<TemplateRef>,
    /// What differs from the attempt that failed: `template`, `name`, `phone`.
    pub changed: Vec<&'static str>,
}

impl Retried {
    /// What the retry did, for the organizer.
    pub fn words(&self) -> String {
        let template = self.template.as_ref().map_or(String::new(), |t| {
            format!(" with template '{}' version {}", t.template_id, t.version)
        });
        let changed = match self.changed.as_slice() {
            [] => "nothing changed since the failed attempt".to_owned(),
            changed => format!("changed since the failed attempt: {}", changed.join(", ")),
        };
        format!("Sent again as things are now{template}, to the guest as listed ({changed}).")
    }
}

/// Each invitation's new attempt rendered from now: its guest as listed
/// and its template's current version. An invitation whose guest left
/// the list has none (there is no one to send it to).
async fn renewals(
    store: &dyn RetryStore,
    owner: &str,
    event_id: &EventId,
    invitations: &[Invitation],
) -> Result<HashMap<InvitationId, (Renewal, Vec<&'static str>)>, AppError> {
    let ids: Vec<GuestId> = invitations
        .iter()
        .map(|i| i.guest.guest_id.clone())
        .collect();
    let listed = send::listed_by_id(store, owner, event_id, &ids).await?;
    let mut current: HashMap<TemplateId, Option<TemplateRef>> = HashMap::new();
    let mut renewals = HashMap::new();
    for inv in invitations {
        let Some(guest) = listed.get(&inv.guest.guest_id) else {
            continue;
        };
        let template = match &inv.template {
            None => None,
            Some(was) => {
                if !current.contains_key(&was.template_id) {
                    let now = store.get_template(owner, &was.template_id, None).await?;
                    current.insert(was.template_id.clone(), now.map(|t| t.reference()));
                }
                // A template deleted since: the version the guest was sent.
                current[&was.template_id]
                    .clone()
                    .or_else(|| Some(was.clone()))
            }
        };
        let mut changed = Vec::new();
        if template != inv.template {
            changed.push("template");
        }
        if guest.name != inv.guest.name {
            changed.push("name");
        }
        if guest.phone != inv.guest.phone {
            changed.push("phone");
        }
        let renewal = Renewal {
            guest: guest.clone(),
            template,
        };
        renewals.insert(inv.invitation_id.clone(), (renewal, changed));
    }
    Ok(renewals)
}

/// `inv` queued again as a new attempt rendered from `renewal`;
/// Ok(false) when it changed meanwhile.
async fn requeue(
    store: &dyn RetryStore,
    inv: &Invitation,
    renewal: Renewal,
    at: &str,
) -> Result<bool, AppError> {
    let mut t: Transition = lifecycle::forced(inv, Status::Queued, at);
    t.new_attempt = Some(inv.attempt + 1);
    t.renew = Some(renewal);
    Ok(store.transition(&t).await?)
}

/// Queues the organizer's invitation `id` again, rendered from the
/// template's current version and the guest as listed now.
pub async fn retry(
    store: &dyn RetryStore,
    queue: &dyn SendQueue,
    owner: &str,
    id: &InvitationId,
) -> Result<Retried, AppError> {
    let inv = store.get_invitation(id).await?;
    let inv = inv
        .filter(|i| i.owner == owner)
        .ok_or_else(|| AppError::NotFound(format!("invitation {id}")))?;
    // A flagged send (outcome unknown) may be retried once the organizer decides to.
    let flagged_send = inv.status == Status::Sending && inv.flag.is_some();
    // A skipped one (the guest had opted out) may be tried again, say after
    // the guest sent START; the sender skips it again if they still are.
    let skipped = inv.status == Status::Skipped;
    if !inv.status.is_retryable() && !flagged_send && !skipped {
        return Err(AppError::Conflict(format!(
            "invitation is {}; only failed, undelivered or skipped invitations can be retried",
            inv.status
        )));
    }
    let replaced =
        guest_list::superseded(store, owner, &inv.event_id, std::slice::from_ref(&inv)).await?;
    if let Some(newer) = replaced.get(&inv.invitation_id) {
        return Err(AppError::Conflict(format!(
            "guest {} has a newer invitation ({newer}); retry that one, so they get one message",
            inv.guest.guest_id
        )));
    }
    let Some((renewal, changed)) =
        renewals(store, owner, &inv.event_id, std::slice::from_ref(&inv))
            .await?
            .remove(&inv.invitation_id)
    else {
        return Err(AppError::Conflict(format!(
            "guest {} was removed from the list; add them again to invite them",
            inv.guest.guest_id
        )));
    };
    let attempt = inv.attempt + 1;
    let template = renewal.template.clone();
    if !requeue(store, &inv, renewal, &now()).await? {
        return Err(AppError::Conflict(
            "invitation changed while retrying; reload and try again".into(),
        ));
    }
    let queued = store
        .get_invitation(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("invitation {id}")))?;
    send::enqueue(queue, std::slice::from_ref(&queued)).await;
    tracing::info!(invitation_id = %id, attempt, changed = ?changed, "invitation re-queued, rendered again");
    Ok(Retried {
        attempt,
        template,
        changed,
    })
}

/// Which failed invitations to retry: a job's, or an event's.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryFailedRequest {
    pub job_id: Option<String>,
    pub event_id: Option<String>,
}

/// Transactions in flight at once while re-queueing many invitations.
const RETRY_PARALLELISM: usize = 16;

/// Every failed or undelivered invitation of the job or event, as new
/// attempts; answers those queued again.
pub async fn retry_failed(
    store: &dyn RetryStore,
    queue: &dyn SendQueue,
    owner: &str,
    input: RetryFailedRequest,
) -> Result<Vec<InvitationId>, AppError> {
    use futures::StreamExt;
    let (event_id, job_id) = match (input.job_id, input.event_id) {
        (Some(job), None) => {
            let job_id = JobId::parse(&job).map_err(|e| AppError::invalid("job_id", e))?;
            let job = store.get_job(&job_id).await?.filter(|j| j.owner == owner);
            let job = job.ok_or_else(|| AppError::NotFound(format!("job {job_id}")))?;
            (job.event_id, Some(job_id))
        }
        (None, Some(event)) => {
            let event_id = EventId::parse(&event).map_err(|e| AppError::invalid("event_id", e))?;
            if store.get_event(owner, &event_id).await?.is_none() {
                return Err(AppError::NotFound(format!("event {event_id}")));
            }
            (event_id, None)
        }
        _ => {
            return Err(AppError::invalid(
                "job_id",
                "give exactly one of job_id and event_id",
            ));
        }
    };
    let mut candidates = Vec::new();
    for status in [Status::Failed, Status::Undelivered] {
        let mut cursor = None;
        loop {
            let query = ListQuery {
                owner: owner.to_owned(),
                event_id: event_id.clone(),
                status: Some(status),
                limit: 200,
                cursor,
            };
            let page = store.list_invitations(&query).await?;
            candidates.extend(
                page.items
                    .into_iter()
                    .filter(|i| job_id.as_ref().is_none_or(|j| &i.job_id == j)),
            );
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
    }
    // A failure a newer invitation of the same guest replaced stays as it
    // is; one whose guest left the list has no one to go to.
    let replaced = guest_list::superseded(store, owner, &event_id, &candidates).await?;
    candidates.retain(|i| !replaced.contains_key(&i.invitation_id));
    let mut renewals = renewals(store, owner, &event_id, &candidates).await?;
    let candidates: Vec<(Invitation, Renewal)> = candidates
        .into_iter()
        .filter_map(|inv| {
            let (renewal, _) = renewals.remove(&inv.invitation_id)?;
            Some((inv, renewal))
        })
        .collect();
    let at = now();
    let moved = futures::stream::iter(candidates.into_iter().map(|(inv, renewal)| {
        let at = at.clone();
        async move {
            let attempt = inv.attempt + 1;
            // One that changed meanwhile (a late delivery receipt) is left alone.
            match requeue(store, &inv, renewal.clone(), &at).await {
                Ok(true) => Ok(Some(Invitation {
                    attempt,
                    status: Status::Queued,
                    guest: renewal.guest,
                    template: renewal.template.or(inv.template.clone()),
                    ..inv
                })),
                Ok(false) => Ok(None),
                Err(e) => Err(e),
            }
        }
    }))
    .buffer_unordered(RETRY_PARALLELISM)
    .collect::<Vec<Result<Option<Invitation>, _>>>()
    .await;
    // What moved is enqueued even when another move failed: an answer
    // before the enqueue would leave them queued with no message.
    let mut queued = Vec::new();
    let mut first_error = None;
    for result in moved {
        match result {
            Ok(Some(inv)) => queued.push(inv),
            Ok(None) => {}
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    send::enqueue(queue, &queued).await;
    if let Some(e) = first_error {
        tracing::error!(%event_id, retried = queued.len(), "some failed invitations could not be re-queued");
        return Err(e);
    }
    tracing::info!(%event_id, retried = queued.len(), "failed invitations re-queued");
    Ok(queued.into_iter().map(|i| i.invitation_id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemoryQueue, MemoryStore};
    use crate::app::fixtures::{OWNER, invited};
    use crate::ports::ErrorInfo;

    /// `n` guests invited; the first `failed` of them failed.
    async fn given(n: u32, failed: usize) -> (MemoryStore, MemoryQueue, Vec<Invitation>) {
        let (store, queue, invitations) = invited(n).await;
        let error = ErrorInfo {
            code: "30008".into(),
            message: "Delivery failed".into(),
        };
        for inv in &invitations[..failed] {
            lifecycle::force(
                &store,
                inv,
                Status::Failed,
                &now(),
                None,
                Some(error.clone()),
            )
            .await
            .unwrap();
        }
        (store, queue, invitations)
    }

    #[tokio::test]
    async fn given_a_failed_invitation_then_it_is_queued_again_as_a_new_attempt() {
        let (store, queue, invitations) = given(1, 1).await;
        let id = &invitations[0].invitation_id;
        let before = queue.messages().len();
        assert_eq!(retry(&store, &queue, OWNER, id).await.unwrap().attempt, 2);
        let now = store.get_invitation(id).await.unwrap().unwrap();
        assert_eq!((now.status, now.attempt), (Status::Queued, 2));
        assert_eq!(queue.messages().len(), before + 1);
        assert_eq!(queue.messages().last().unwrap().attempt, 2);
    }

    #[tokio::test]
    async fn given_a_template_and_a_number_fixed_after_a_failure_then_retry_renders_from_them_and_says_so()
     {
        use crate::domain::guest::GuestEntry;
        use crate::domain::render::builtin_default;
        let (store, queue, invitations) = given(2, 2).await;
        let (first, second) = (&invitations[0], &invitations[1]);
        // The organizer fixes the template (a version 2) and the first guest's number.
        let v1 = builtin_default(OWNER, &now());
        assert_eq!(first.template, Some(v1.reference()));
        assert!(store.put_template(&v1, None).await.unwrap());
        let v2 = crate::domain::MessageTemplate {
            version: 2,
            ..v1.clone()
        };
        assert!(store.put_template(&v2, Some(1)).await.unwrap());
        let edit = GuestEntry {
            guest_id: None,
            name: first.guest.name.clone(),
            phone: crate::domain::PhoneNumber::parse("+5511988880001").unwrap(),
            rsvp_token: None,
        };
        guest_list::edit(
            &store,
            OWNER,
            &first.event_id,
            first.guest.guest_id.clone(),
            edit,
        )
        .await
        .unwrap();
        let retried = retry(&store, &queue, OWNER, &first.invitation_id)
            .await
            .unwrap();
        let now = store
            .get_invitation(&first.invitation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(now.guest.phone.as_str(), "+5511988880001");
        assert_eq!(now.template, retried.template);
        assert_eq!(retried.template, Some(v2.reference()));
        assert_eq!(retried.changed, ["template", "phone"]);
        assert!(retried.words().contains("phone"), "{}", retried.words());
        // A guest removed from the list is not retried.
        guest_list::remove(&store, OWNER, &second.event_id, &second.guest.guest_id)
            .await
            .unwrap();
        let gone = retry(&store, &queue, OWNER, &second.invitation_id).await;
        assert!(
            matches!(gone, Err(AppError::Conflict(ref m)) if m.contains("removed")),
            "{gone:?}"
        );
    }

    #[tokio::test]
    async fn given_an_invitation_on_its_way_or_anothers_then_retry_refuses() {
        let (store, queue, invitations) = given(1, 0).await;
        let id = &invitations[0].invitation_id;
        assert!(matches!(
            retry(&store, &queue, OWNER, id).await,
            Err(AppError::Conflict(_))
        ));
        assert!(matches!(
            retry(&store, &queue, "someone-else", id).await,
            Err(AppError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn given_a_job_with_failures_then_retry_failed_queues_each_once() {
        let (store, queue, invitations) = given(3, 2).await;
        let input = RetryFailedRequest {
            job_id: Some(invitations[0].job_id.to_string()),
            event_id: None,
        };
        let mut retried = retry_failed(&store, &queue, OWNER, input).await.unwrap();
        retried.sort();
        let mut expected: Vec<_> = invitations[..2]
            .iter()
            .map(|i| i.invitation_id.clone())
            .collect();
        expected.sort();
        assert_eq!(retried, expected);
        // Nothing failed is left: a second run retries nothing.
        let again = RetryFailedRequest {
            job_id: None,
            event_id: Some(invitations[0].event_id.to_string()),
        };
        assert!(
            retry_failed(&store, &queue, OWNER, again)
                .await
                .unwrap()
                .is_empty()
        );
        let both = RetryFailedRequest {
            job_id: Some("j".into()),
            event_id: Some("e".into()),
        };
        let Err(AppError::Invalid(e)) = retry_failed(&store, &queue, OWNER, both).await else {
            panic!("refused")
        };
        assert_eq!(e.field, "job_id");
    }
}
