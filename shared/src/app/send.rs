//! The send pipeline, used by send-invitation and send-bulk alike: find the
//! event, choose the template version, write the invitations (`queued`, or
//! `skipped` for opted-out guests) with each guest's pointer to theirs,
//! leaving out guests an earlier invitation still holds unless the send
//! resends, then the job, and enqueue one message per queued invitation.
//! Retry and reconciliation re-enqueue through [`enqueue`].

use super::{AppError, templates};
use crate::domain::guest::holds;
use crate::domain::reason::MARKETING_TO_US;
use crate::domain::{
    Event, EventId, FieldError, Guest, Invitation, InvitationId, Job, JobId, MessageTemplate,
    OptOut, Status, TemplateId, now,
};
use crate::ports::{
    Admission, EventStore, GuestStore, InvitationStore, JobStore, OptOutStore, SendMessage,
    SendQueue, TemplateStore,
};
use std::collections::HashMap;

/// What the pipeline reads and writes.
pub trait SendStore:
    EventStore + TemplateStore + OptOutStore + JobStore + InvitationStore + GuestStore
{
}
impl<T: EventStore + TemplateStore + OptOutStore + JobStore + InvitationStore + GuestStore + ?Sized>
    SendStore for T
{
}

/// A send that was written and queued.
#[derive(Debug)]
pub struct Sent {
    pub job: Job,
    /// The guests invited, in the order given; opted-out guests' are `skipped`.
    pub invitations: Vec<Invitation>,
    /// The guests not invited because an earlier invitation holds them.
    pub left_out: Vec<LeftOut>,
    pub template: MessageTemplate,
}

/// A guest a send left out: their latest invitation for the event is on its
/// way or arrived, and the send did not say it resends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// Their place among the guests given.
    pub position: usize,
    pub held_by: Invitation,
}

/// The positions of the guests given that a send invited (those not left out).
pub fn invited_positions(guests: usize, left_out: &[LeftOut]) -> Vec<usize> {
    let out: std::collections::HashSet<usize> = left_out.iter().map(|l| l.position).collect();
    (0..guests).filter(|p| !out.contains(p)).collect()
}

/// What a send is of: the organizer's event (its owner sends) and the
/// template version chosen for it.
#[derive(Debug)]
pub struct Plan {
    pub event: Event,
    pub template: MessageTemplate,
}

/// Finds the event and chooses the template (the request's, else the
/// event's default, else `default`).
pub async fn plan(
    store: &dyn SendStore,
    owner: &str,
    event_id: &EventId,
    requested: Option<&TemplateId>,
) -> Result<Plan, AppError> {
    let event = event_named(store, owner, event_id).await?;
    let template = templates::choose(store, owner, requested, &event).await?;
    Ok(Plan { event, template })
}

/// The event a request's `event_id` names; an unknown one is that field's error.
pub async fn event_named(
    store: &dyn EventStore,
    owner: &str,
    event_id: &EventId,
) -> Result<Event, AppError> {
    store.get_event(owner, event_id).await?.ok_or_else(|| {
        AppError::invalid(
            "event_id",
            format!("no event '{event_id}'; create it first"),
        )
    })
}

/// The list wins: each guest of a send the event's list has goes as
/// listed (name, number, RSVP link). A request that gives a listed guest
/// another name or number is refused, naming the field (`{prefix(i)}phone`
/// for the `i`th guest): a stale copy (a tab open since an edit) would
/// otherwise undo the edit and message the old number.
pub async fn as_listed(
    store: &dyn GuestStore,
    owner: &str,
    event_id: &EventId,
    guests: Vec<Guest>,
    prefix: impl Fn(usize) -> String,
) -> Result<Vec<Guest>, AppError> {
    let listed = listed_guests(store, owner, event_id, &guests).await?;
    guests
        .into_iter()
        .enumerate()
        .map(|(i, guest)| match listed.get(&guest.guest_id) {
            None => Ok(guest),
            Some(on_list) => {
                let differs = if !guest.phone.same_user(&on_list.phone) {
                    Some(("phone", on_list.phone.as_str()))
                } else if guest.name != on_list.name {
                    Some(("name", on_list.name.as_str()))
                } else {
                    None
                };
                match differs {
                    None => Ok(on_list.clone()),
                    Some((field, listed_as)) => Err(AppError::Stale(FieldError::new(
                        format!("{}{field}", prefix(i)),
                        format!(
                            "guest {} is listed with {field} '{listed_as}'; send the guest as listed (reload the list), or edit the guest first",
                            guest.guest_id
                        ),
                    ))),
                }
            }
        })
        .collect()
}

/// The listed guests among `guests`, by id.
async fn listed_guests(
    store: &dyn GuestStore,
    owner: &str,
    event_id: &EventId,
    guests: &[Guest],
) -> Result<HashMap<crate::domain::GuestId, Guest>, AppError> {
    let ids: Vec<_> = guests.iter().map(|g| g.guest_id.clone()).collect();
    listed_by_id(store, owner, event_id, &ids).await
}

/// The event's listed guests with these ids, by id (those not listed left out).
pub(crate) async fn listed_by_id(
    store: &dyn GuestStore,
    owner: &str,
    event_id: &EventId,
    ids: &[crate::domain::GuestId],
) -> Result<HashMap<crate::domain::GuestId, Guest>, AppError> {
    Ok(store
        .get_guests(owner, event_id, ids)
        .await?
        .into_iter()
        .map(|g| (g.guest.guest_id.clone(), g.guest))
        .collect())
}

/// The job a send creates.
#[derive(Debug, Clone)]
pub enum NewJob {
    /// A job of its own (no idempotency key).
    Fresh,
    /// The job an idempotency key names: a repeat of a request that failed
    /// part-way finds what it wrote and finishes it.
    Resumable(JobId),
}

/// Sends the event's invitation to each guest (at least one; the caller
/// has parsed and de-duplicated them) as one job. Without `resend`, a guest
/// whose latest invitation for the event is on its way or arrived is left
/// out (and the job is written even if every guest is).
pub async fn send(
    store: &dyn SendStore,
    queue: &dyn SendQueue,
    plan: Plan,
    guests: Vec<Guest>,
    job: NewJob,
    resend: bool,
) -> Result<Sent, AppError> {
    let Plan { event, template } = plan;
    let (owner, event_id) = (event.owner.as_str(), &event.event_id);
    let now = now();
    let (job_id, may_exist) = match job {
        NewJob::Fresh => (JobId::generate(), false),
        NewJob::Resumable(job_id) => {
            if let Some(sent) = resume(store, queue, &job_id, &guests, &template).await? {
                return Ok(sent);
            }
            (job_id, true)
        }
    };
    let admitted = admit_guests(
        store,
        Admit {
            owner,
            event_id,
            template: &template,
            job_id: &job_id,
            resend,
            may_exist,
        },
        guests,
        &now,
    )
    .await?;
    let job = Job::of(job_id, event_id.clone(), owner, &admitted.invitations, &now);
    create_and_enqueue(store, queue, &job, &admitted.invitations).await?;
    Ok(Sent {
        job,
        invitations: admitted.invitations,
        left_out: admitted.left_out,
        template,
    })
}

/// What a send admits its guests into.
#[derive(Debug, Clone, Copy)]
pub struct Admit<'a> {
    pub owner: &'a str,
    pub event_id: &'a EventId,
    pub template: &'a MessageTemplate,
    pub job_id: &'a JobId,
    pub resend: bool,
    /// An earlier try of the same job may have written some of these
    /// invitations (a repeated request, a redelivered chunk): those are
    /// taken as written, never written again.
    pub may_exist: bool,
}

/// The guests a send admitted, and those it left out.
#[derive(Debug)]
pub struct Admitted {
    /// In the order given: queued, or skipped with the reason.
    pub invitations: Vec<Invitation>,
    pub left_out: Vec<LeftOut>,
}

/// Writes each guest's invitation in the job with their pointer to it
/// (queued, or skipped for a guest who opted out or whom WhatsApp would
/// not deliver the template to), leaving out guests an earlier invitation
/// holds unless the send resends.
pub async fn admit_guests(
    store: &dyn SendStore,
    admit: Admit<'_>,
    guests: Vec<Guest>,
    now: &str,
) -> Result<Admitted, AppError> {
    let Admit {
        owner,
        event_id,
        template,
        job_id,
        ..
    } = admit;
    // Before anything can be sent: the organizer may learn of these
    // guests' own opt-outs from now on (a skipped invitation says so).
    // As listed now: an edit since the request was checked (a large send
    // is admitted behind its answer) wins.
    let mut listed = listed_guests(store, owner, event_id, &guests).await?;
    let guests: Vec<Guest> = guests
        .into_iter()
        .map(|g| listed.remove(&g.guest_id).unwrap_or(g))
        .collect();
    let phones: Vec<_> = guests.iter().map(|g| g.phone.clone()).collect();
    store.note_invited(owner, &phones).await?;
    let mut written: HashMap<InvitationId, Invitation> = if admit.may_exist {
        let ids: Vec<InvitationId> = guests
            .iter()
            .map(|g| InvitationId::for_guest(job_id, &g.guest_id))
            .collect();
        store
            .get_invitations(&ids)
            .await?
            .into_iter()
            .map(|i| (i.invitation_id.clone(), i))
            .collect()
    } else {
        HashMap::new()
    };
    let mut invited: Vec<(usize, Invitation)> = Vec::with_capacity(guests.len());
    let (mut positions, mut fresh) = (Vec::new(), Vec::new());
    for (position, guest) in guests.into_iter().enumerate() {
        match written.remove(&InvitationId::for_guest(job_id, &guest.guest_id)) {
            Some(inv) => invited.push((position, inv)),
            None => {
                positions.push(position);
                fresh.push(Invitation::new_queued(
                    event_id.clone(),
                    job_id.clone(),
                    owner,
                    guest,
                    Some(template.reference()),
                    now,
                ));
            }
        }
    }
    let mut left_out = Vec::new();
    if !fresh.is_empty() {
        // A guest who opted out, or whom WhatsApp would not deliver the
        // template to, is recorded, counted and shown as skipped, never queued.
        let fresh = skip_undeliverable(store, owner, template, fresh, now).await?;
        // Each invitation is written with its guest's pointer to it, on the
        // condition that no other send moved the pointer meanwhile.
        let admissions = store.admit(&fresh, admit.resend).await?;
        for ((position, inv), admission) in positions.into_iter().zip(fresh).zip(admissions) {
            match admission {
                Admission::Admitted => invited.push((position, inv)),
                Admission::AlreadyInvited(held_by) => left_out.push(LeftOut {
                    position,
                    held_by: *held_by,
                }),
            }
        }
    }
    invited.sort_by_key(|(position, _)| *position);
    Ok(Admitted {
        invitations: invited.into_iter().map(|(_, inv)| inv).collect(),
        left_out,
    })
}

/// Each guest's latest invitation for the event, where it still holds them.
async fn holding(
    store: &dyn SendStore,
    owner: &str,
    event_id: &crate::domain::EventId,
    guests: &[Guest],
) -> Result<HashMap<crate::domain::GuestId, Invitation>, AppError> {
    let ids: Vec<_> = guests.iter().map(|g| g.guest_id.clone()).collect();
    let listed = store.get_guests(owner, event_id, &ids).await?;
    let latest: Vec<InvitationId> = listed
        .iter()
        .filter_map(|g| g.invitation_id.clone())
        .collect();
    let phones: HashMap<_, _> = listed
        .into_iter()
        .map(|g| (g.guest.guest_id, g.guest.phone))
        .collect();
    Ok(store
        .get_invitations(&latest)
        .await?
        .into_iter()
        .filter(|i| phones.get(&i.guest.guest_id).is_some_and(|p| holds(i, p)))
        .map(|i| (i.guest.guest_id.clone(), i))
        .collect())
}

/// An earlier try of the same request wrote its job (the job item is
/// written last, so all its invitations exist): enqueue again whatever is
/// still queued (the sender's claim turns duplicates away) and answer as
/// the first try would have. None when no earlier try got that far.
async fn resume(
    store: &dyn SendStore,
    queue: &dyn SendQueue,
    job_id: &JobId,
    guests: &[Guest],
    template: &MessageTemplate,
) -> Result<Option<Sent>, AppError> {
    let Some(job) = store.get_job(job_id).await? else {
        return Ok(None);
    };
    let ids: Vec<InvitationId> = guests
        .iter()
        .map(|g| InvitationId::for_guest(job_id, &g.guest_id))
        .collect();
    let mut found: std::collections::HashMap<InvitationId, Invitation> = store
        .get_invitations(&ids)
        .await?
        .into_iter()
        .map(|i| (i.invitation_id.clone(), i))
        .collect();
    let mut invitations = Vec::with_capacity(ids.len());
    let mut missing = Vec::new();
    for (position, id) in ids.iter().enumerate() {
        match found.remove(id) {
            Some(inv) => invitations.push(inv),
            None => missing.push(position),
        }
    }
    // A guest without this job's invitation was left out the first time.
    let (owner, event_id) = (job.owner.as_str(), &job.event_id);
    let mut held = holding(store, owner, event_id, guests).await?;
    let left_out = missing
        .into_iter()
        .filter_map(|position| {
            let held_by = held.remove(&guests[position].guest_id)?;
            Some(LeftOut { position, held_by })
        })
        .collect();
    let queued: Vec<Invitation> = invitations
        .iter()
        .filter(|i| i.status == Status::Queued)
        .cloned()
        .collect();
    enqueue(queue, &queued).await;
    tracing::info!(%job_id, "request repeated after a failure; its job resumed");
    Ok(Some(Sent {
        job,
        invitations,
        left_out,
        template: template.clone(),
    }))
}

/// Writes the job and its invitations, then enqueues one message for each
/// queued one (a skipped invitation is written only, never sent).
async fn create_and_enqueue(
    store: &dyn SendStore,
    queue: &dyn SendQueue,
    job: &Job,
    invitations: &[Invitation],
) -> Result<(), AppError> {
    // The invitations are written already (admitted): the job goes last,
    // so a job that exists has all its invitations.
    store.put_job(job).await?;
    let queued: Vec<Invitation> = invitations
        .iter()
        .filter(|i| i.status == Status::Queued)
        .cloned()
        .collect();
    if queued.is_empty() {
        return Ok(());
    }
    enqueue(queue, &queued).await;
    Ok(())
}

/// Marks skipped the invitations of opted-out guests, and of guests WhatsApp
/// would not deliver the template to, so they are written and counted but
/// never queued.
async fn skip_undeliverable(
    store: &dyn OptOutStore,
    owner: &str,
    template: &MessageTemplate,
    invitations: Vec<Invitation>,
    now: &str,
) -> Result<Vec<Invitation>, AppError> {
    let wanted: Vec<_> = invitations
        .iter()
        .map(|i| (owner.to_owned(), i.guest.phone.clone()))
        .collect();
    let opt_outs = store.opt_outs_for(&wanted).await?;
    Ok(invitations
        .into_iter()
        .map(|inv| {
            // Undeliverable first: a send that could never reach the guest
            // tells nothing of their opt-out.
            let why = if template.deliverable_to(&inv.guest.phone) {
                opt_outs.reason(owner, &inv.guest.phone)
            } else {
                Some(MARKETING_TO_US)
            };
            match why {
                Some(reason) => inv.skipped(reason.code, reason.message, now),
                None => inv,
            }
        })
        .collect())
}

/// What a send would do, written nowhere.
#[derive(Debug)]
pub struct DryRun {
    /// The guests it would invite, in order: queued, or skipped with the reason.
    pub invitations: Vec<Invitation>,
    /// Those it would leave out (without `resend`).
    pub left_out: Vec<LeftOut>,
    /// How many of `invitations` would be a second invitation (with `resend`).
    pub resends: usize,
}

/// What a send of `guests` would write, writing nothing: each guest's
/// invitation, queued or skipped with its reason, and who would be left
/// out or sent again. A guest's own STOP shows
/// only for a number the organizer invited before (as the opt-outs route
/// shows it): a dry run tells no organizer of numbers it never invited, and
/// the send itself still skips them.
pub async fn dry_run(
    store: &dyn SendStore,
    plan: &Plan,
    guests: Vec<Guest>,
    resend: bool,
) -> Result<DryRun, AppError> {
    let (owner, event_id) = (plan.event.owner.as_str(), &plan.event.event_id);
    let now = now();
    let job_id = JobId::generate();
    let mut held = holding(store, owner, event_id, &guests).await?;
    let mut left_out = Vec::new();
    let mut resends = 0;
    let guests: Vec<Guest> = guests
        .into_iter()
        .enumerate()
        .filter_map(|(position, guest)| match held.remove(&guest.guest_id) {
            Some(held_by) if !resend => {
                left_out.push(LeftOut { position, held_by });
                None
            }
            Some(_) => {
                resends += 1;
                Some(guest)
            }
            None => Some(guest),
        })
        .collect();
    // Every guest's view in one read, whatever their state: how long it
    // takes tells nothing either.
    let phones: Vec<_> = guests.iter().map(|g| g.phone.clone()).collect();
    let views = store.opt_out_views(owner, &phones).await?;
    let mut invitations = Vec::with_capacity(guests.len());
    for (guest, seen) in guests.into_iter().zip(views) {
        let why = if !plan.template.deliverable_to(&guest.phone) {
            Some(MARKETING_TO_US)
        } else {
            seen.effective().filter(|r| r.opted_out).map(OptOut::reason)
        };
        let inv = Invitation::new_queued(
            event_id.clone(),
            job_id.clone(),
            owner,
            guest,
            Some(plan.template.reference()),
            &now,
        );
        invitations.push(match why {
            Some(reason) => inv.skipped(reason.code, reason.message, &now),
            None => inv,
        });
    }
    Ok(DryRun {
        invitations,
        left_out,
        resends,
    })
}

/// Enqueues the current attempt of each (queued) invitation. Those the
/// queue does not take stay `queued`: reconciliation enqueues
/// queued invitations that no message moved on, so a failure here loses
/// nothing and fails no guest (a message SQS took after all only makes a
/// second one, which the sender's claim turns away).
pub async fn enqueue(queue: &dyn SendQueue, invitations: &[Invitation]) {
    let messages: Vec<SendMessage> = invitations
        .iter()
        .map(|i| SendMessage {
            invitation_id: i.invitation_id.clone(),
            attempt: i.attempt,
        })
        .collect();
    if let Err(err) = queue.enqueue(&messages).await {
        let left = err.not_enqueued(messages.len());
        tracing::warn!(error = %err, not_enqueued = left, "enqueue failed; reconciliation will enqueue them");
    }
}

/// One invitation, as `POST /send-invitation` asks: the guest queued now,
/// or refused with a conflict when an earlier invitation holds them and
/// the request does not resend.
pub async fn send_one(
    store: &dyn SendStore,
    queue: &dyn SendQueue,
    owner: &str,
    input: crate::domain::SendRequest,
) -> Result<(Sent, Invitation), AppError> {
    let event_id = super::required("event_id", input.event_id, EventId::parse)?;
    let guest = input
        .guest
        .ok_or_else(|| AppError::invalid("guest", "is required"))?
        .parse("guest.")?;
    let requested = templates::requested(input.template_id)?;
    let plan = plan(store, owner, &event_id, requested.as_ref()).await?;
    let guests = as_listed(store, owner, &event_id, vec![guest], |_| "guest.".into()).await?;
    let sent = send(store, queue, plan, guests, NewJob::Fresh, input.resend).await?;
    if let Some(left) = sent.left_out.first() {
        // The request is sound; the guest's state refuses it.
        return Err(AppError::Conflict(format!(
            "guest {} {}",
            left.held_by.guest.guest_id,
            crate::domain::guest::already_invited_words(left.held_by.status)
        )));
    }
    let invitation = sent.invitations[0].clone();
    tracing::info!(invitation_id = %invitation.invitation_id, job_id = %sent.job.job_id, to = %invitation.guest.phone, status = %invitation.status, "invitation accepted");
    Ok((sent, invitation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures::{OWNER, guest, with_event};
    use crate::domain::OptOut;
    use crate::domain::reason::OPTED_OUT;
    use crate::ports::OptOutStore;

    fn one(resend: bool) -> crate::domain::SendRequest {
        serde_json::from_value(serde_json::json!({
            "event_id": "gala",
            "guest": {"guest_id": "g1", "name": "Ana", "phone": "+5511999990001"},
            "resend": resend,
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn given_one_guest_then_send_one_queues_them_once_and_a_second_send_conflicts() {
        let (store, queue, _event) = with_event().await;
        let (_, first) = send_one(&store, &queue, OWNER, one(false)).await.unwrap();
        assert_eq!(first.status, Status::Queued);
        assert_eq!(queue.messages().len(), 1);
        let again = send_one(&store, &queue, OWNER, one(false)).await;
        assert!(matches!(again, Err(AppError::Conflict(m)) if m.contains("g1")));
        let (_, resent) = send_one(&store, &queue, OWNER, one(true)).await.unwrap();
        assert_ne!(resent.invitation_id, first.invitation_id);
        assert_eq!(queue.messages().len(), 2);
        let mut no_guest = one(false);
        no_guest.guest = None;
        let Err(AppError::Invalid(e)) = send_one(&store, &queue, OWNER, no_guest).await else {
            panic!("refused")
        };
        assert_eq!(e.field, "guest");
    }

    #[tokio::test]
    async fn a_dry_run_shows_a_guests_stop_only_once_the_organizer_invited_them() {
        let (store, queue, event) = with_event().await;
        let stopped = guest(2);
        store
            .put_opt_out(
                &OptOut::by_guest(stopped.phone.clone(), true, "STOP".into(), &now()),
                None,
            )
            .await
            .unwrap();
        let plan = plan(&store, OWNER, &event.event_id, None).await.unwrap();
        let statuses = |invitations: Vec<Invitation>| -> Vec<Status> {
            invitations.iter().map(|i| i.status).collect()
        };
        // Never invited: the dry run does not tell (the send will skip them).
        let dry = dry_run(&store, &plan, vec![guest(1), stopped.clone()], false)
            .await
            .unwrap();
        assert_eq!(statuses(dry.invitations), [Status::Queued, Status::Queued]);
        assert!(queue.messages().is_empty());
        let sent = send(
            &store,
            &queue,
            plan,
            vec![stopped.clone()],
            NewJob::Fresh,
            false,
        )
        .await
        .unwrap();
        assert_eq!(statuses(sent.invitations), [Status::Skipped]);
        // Invited once: from then on the dry run says so.
        let plan = super::plan(&store, OWNER, &event.event_id, None)
            .await
            .unwrap();
        let dry = dry_run(&store, &plan, vec![stopped], false).await.unwrap();
        assert_eq!(
            dry.invitations[0].error_code.as_deref(),
            Some(OPTED_OUT.code)
        );
    }

    #[tokio::test]
    async fn writes_the_job_and_queues_one_message_per_guest_skipping_opted_out() {
        let (store, queue, event) = with_event().await;
        let opted_out = guest(2);
        store
            .put_opt_out(
                &OptOut::by_guest(opted_out.phone.clone(), true, "STOP".into(), &now()),
                None,
            )
            .await
            .unwrap();
        let plan = plan(&store, OWNER, &event.event_id, None).await.unwrap();
        assert_eq!(plan.template.template_id.as_str(), "default");
        let sent = send(
            &store,
            &queue,
            plan,
            vec![guest(1), opted_out, guest(3)],
            NewJob::Fresh,
            false,
        )
        .await
        .unwrap();
        let statuses: Vec<Status> = sent.invitations.iter().map(|i| i.status).collect();
        assert_eq!(statuses, [Status::Queued, Status::Skipped, Status::Queued]);
        assert_eq!(
            sent.invitations[1].error_code.as_deref(),
            Some(OPTED_OUT.code)
        );
        let queued: Vec<_> = queue
            .messages()
            .into_iter()
            .map(|m| m.invitation_id)
            .collect();
        assert_eq!(
            queued,
            [
                sent.invitations[0].invitation_id.clone(),
                sent.invitations[2].invitation_id.clone()
            ]
        );
        let job = store.get_job(&sent.job.job_id).await.unwrap().unwrap();
        assert_eq!(
            (
                job.total,
                job.count(Status::Queued),
                job.count(Status::Skipped)
            ),
            (3, 2, 1)
        );
        for inv in &sent.invitations {
            assert_eq!(
                store
                    .get_invitation(&inv.invitation_id)
                    .await
                    .unwrap()
                    .as_ref(),
                Some(inv)
            );
        }
    }

    #[tokio::test]
    async fn an_unknown_event_or_template_names_the_field_and_writes_nothing() {
        let (store, _, event) = with_event().await;
        let missing = EventId::parse("nope").unwrap();
        match plan(&store, OWNER, &missing, None).await {
            Err(AppError::Invalid(e)) => assert_eq!(e.field, "event_id"),
            other => panic!("{other:?}"),
        }
        let unknown = TemplateId::parse("nope").unwrap();
        match plan(&store, OWNER, &event.event_id, Some(&unknown)).await {
            Err(AppError::Invalid(e)) => assert_eq!(e.field, "template_id"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_failed_enqueue_leaves_the_invitations_queued_for_reconciliation() {
        let (store, queue, event) = with_event().await;
        queue.set_failing(true);
        let plan = plan(&store, OWNER, &event.event_id, None).await.unwrap();
        let sent = send(
            &store,
            &queue,
            plan,
            vec![guest(1), guest(2)],
            NewJob::Fresh,
            false,
        )
        .await
        .unwrap();
        for inv in &sent.invitations {
            let stored = store.get_invitation(&inv.invitation_id).await.unwrap();
            assert_eq!(stored.map(|i| i.status), Some(Status::Queued));
        }
        let job = store.get_job(&sent.job.job_id).await.unwrap().unwrap();
        assert_eq!(job.count(Status::Queued), 2);
        assert!(!job.is_done(), "reconciliation will send them");
    }

    #[tokio::test]
    async fn a_guest_invited_already_is_left_out_unless_the_send_resends() {
        let (store, queue, event) = with_event().await;
        let plan = || super::plan(&store, OWNER, &event.event_id, None);
        let first = send(
            &store,
            &queue,
            plan().await.unwrap(),
            vec![guest(1), guest(2)],
            NewJob::Fresh,
            false,
        )
        .await
        .unwrap();
        assert!(first.left_out.is_empty());
        // Guest 2's invitation failed: they may be invited again as is.
        let failed = &first.invitations[1];
        store
            .transition(&crate::ports::Transition {
                invitation_id: failed.invitation_id.clone(),
                job_id: failed.job_id.clone(),
                attempt: 1,
                from: Status::Queued,
                to: Status::Failed,
                at: now(),
                new_attempt: None,
                message_sid: None,
                error: None,
                clear_flag: false,
                due_at: None,
                renew: None,
            })
            .await
            .unwrap();
        let guests = vec![guest(3), guest(1), guest(2)];
        let dry = dry_run(&store, &plan().await.unwrap(), guests.clone(), false)
            .await
            .unwrap();
        assert_eq!(dry.invitations.len(), 2);
        assert_eq!(dry.left_out.len(), 1);
        assert_eq!((dry.left_out[0].position, dry.resends), (1, 0));
        let second = send(
            &store,
            &queue,
            plan().await.unwrap(),
            guests.clone(),
            NewJob::Fresh,
            false,
        )
        .await
        .unwrap();
        let invited: Vec<&str> = second
            .invitations
            .iter()
            .map(|i| i.guest.guest_id.as_str())
            .collect();
        assert_eq!(invited, ["g3", "g2"]);
        assert_eq!(second.left_out.len(), 1);
        assert_eq!(second.left_out[0].position, 1);
        assert_eq!(second.left_out[0].held_by, first.invitations[0]);
        assert_eq!(invited_positions(3, &second.left_out), [0, 2]);
        assert_eq!(second.job.total, 2);
        // Saying so sends to every one of them once more.
        let dry = dry_run(&store, &plan().await.unwrap(), guests.clone(), true)
            .await
            .unwrap();
        assert_eq!(
            (dry.invitations.len(), dry.left_out.len(), dry.resends),
            (3, 0, 3)
        );
        let third = send(
            &store,
            &queue,
            plan().await.unwrap(),
            guests,
            NewJob::Fresh,
            true,
        )
        .await
        .unwrap();
        assert_eq!((third.invitations.len(), third.left_out.len()), (3, 0));
        assert_eq!(queue.messages().len(), 2 + 2 + 3);
        // The list points each guest at their latest invitation.
        let listed = store
            .get_guests(OWNER, &event.event_id, &[guest(1).guest_id])
            .await
            .unwrap();
        assert_eq!(
            listed[0].invitation_id,
            Some(third.invitations[1].invitation_id.clone())
        );
    }
}
