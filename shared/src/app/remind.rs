//! Reminders to guests invited but without an answer: at an event's
//! reminder times (a scheduled run finds them due) or when the organizer
//! asks ("remind now", once a day). Each reminder time sends as one job
//! whose id the time names, through the send pipeline (its limits and
//! opt-outs), so running it again sends nothing more; an answer given
//! before a reminder goes out cancels it (the sender skips it).

use super::AppError;
use super::guest_list::everyone;
use super::send::{self, NewJob, Plan, SendStore};
use super::{idempotency, templates};
use crate::domain::reminder::{self, is_reminder, reminder_job};
use crate::domain::render::REMINDER_TEMPLATE_ID;
use crate::domain::{Event, EventId, JobId, Status, TemplateId, parse_timestamp, timestamp};
use crate::ports::{IdempotencyStore, ReminderStore, RsvpStore, SendQueue};
use std::collections::HashSet;
use time::{Duration, OffsetDateTime};

/// What reminding reads and writes (a reminder time's run holds its
/// idempotency key, so two runs at once cannot both write it).
pub trait RemindStore: SendStore + RsvpStore + IdempotencyStore {}
impl<T: SendStore + RsvpStore + IdempotencyStore + ?Sized> RemindStore for T {}

/// A guest reminded this recently is not reminded again by another
/// reminder time ("remind now" in the morning, a scheduled one at 10:00).
const RECENTLY_REMINDED: Duration = Duration::hours(20);

/// The event's latest replies a reminder run reads, to leave out guests
/// who wrote.
const REPLIES_READ: usize = 10_000;

/// How far back a scheduled run looks for reminder times it has not run.
const CATCH_UP: Duration = Duration::days(2);

/// What one reminder time did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminded {
    pub job_id: JobId,
    /// Guests reminded by this run (0 when an earlier run of the same time did it).
    pub reminded: usize,
    /// An earlier run of the same reminder time had already sent it.
    pub already: bool,
    /// Guests left out because they wrote since their invitation (their
    /// reply waits for the organizer).
    pub wrote: usize,
}

/// Reminds the event's guests who were reached by an invitation and have
/// not answered, once for `key` (a reminder time).
pub async fn remind(
    store: &dyn RemindStore,
    queue: &dyn SendQueue,
    event: &Event,
    key: &str,
    now: OffsetDateTime,
) -> Result<Reminded, AppError> {
    let job_id = reminder_job(&event.owner, &event.event_id, key);
    let already = Reminded {
        job_id: job_id.clone(),
        reminded: 0,
        already: true,
        wrote: 0,
    };
    if store.get_job(&job_id).await?.is_some() {
        return Ok(already);
    }
    // One run of a reminder time at a time: a second one finds it running
    // (and does nothing) or done (and does nothing); one that failed let go.
    let claim = idempotency::Key::parse(&format!("remind:{job_id}"))?;
    let ran = std::sync::atomic::AtomicUsize::new(usize::MAX);
    let wrote = std::sync::atomic::AtomicUsize::new(0);
    let outcome = idempotency::once(
        store,
        &event.owner,
        &claim,
        job_id.as_str().as_bytes(),
        || async {
            let (reminded, left) = send_reminders(store, queue, event, &job_id, now).await?;
            ran.store(reminded, std::sync::atomic::Ordering::SeqCst);
            wrote.store(left, std::sync::atomic::Ordering::SeqCst);
            if reminded == 0 {
                // Nobody to remind: the time stays unused (the key is let
                // go), so a press later today, once guests were reached,
                // still reminds them.
                return Err(Run::Nobody);
            }
            Ok(serde_json::json!({ "reminded": reminded }))
        },
    )
    .await;
    let wrote = wrote.load(std::sync::atomic::Ordering::SeqCst);
    match outcome {
        Ok(_) => match ran.load(std::sync::atomic::Ordering::SeqCst) {
            usize::MAX => Ok(already),
            reminded => Ok(Reminded {
                job_id,
                reminded,
                already: false,
                wrote,
            }),
        },
        Err(Run::Nobody) => Ok(Reminded {
            job_id,
            reminded: 0,
            already: false,
            wrote,
        }),
        // Another run holds it: this one did nothing, and says so (a
        // scheduled run keeps the reminder time for its next run).
        Err(Run::Failed(other)) => Err(other),
    }
}

/// How a reminder time's run ended short of sending.
enum Run {
    /// It found nobody to remind.
    Nobody,
    Failed(AppError),
}

impl From<AppError> for Run {
    fn from(err: AppError) -> Self {
        Run::Failed(err)
    }
}

/// Sends the reminder of `job_id` to the guests it is for; how many.
async fn send_reminders(
    store: &dyn RemindStore,
    queue: &dyn SendQueue,
    event: &Event,
    job_id: &JobId,
    now: OffsetDateTime,
) -> Result<(usize, usize), AppError> {
    let (owner, event_id) = (event.owner.as_str(), &event.event_id);
    let silent: Vec<_> = everyone(store, owner, event_id)
        .await?
        .into_iter()
        .filter(|g| g.rsvp.is_none() && g.invitation_id.is_some())
        .collect();
    let latest: Vec<_> = silent
        .iter()
        .filter_map(|g| g.invitation_id.clone())
        .collect();
    let recent = timestamp(now - RECENTLY_REMINDED);
    // A guest who wrote since their invitation is left for the organizer
    // to read (and answer for them), not reminded.
    let mut wrote: std::collections::HashMap<_, String> = std::collections::HashMap::new();
    for reply in store.replies(owner, event_id, REPLIES_READ).await? {
        let at = wrote.entry(reply.guest_id).or_default();
        if reply.at > *at {
            *at = reply.at;
        }
    }
    let mut left_for_the_organizer = 0;
    let reached: HashSet<_> = store
        .get_invitations(&latest)
        .await?
        .into_iter()
        .filter(|i| {
            let sent_at = i.timestamps.get(&Status::Queued).unwrap_or(&i.updated_at);
            let silent = wrote.get(&i.guest.guest_id).is_none_or(|at| at < sent_at);
            left_for_the_organizer += usize::from(!silent && i.status.has_reached());
            silent
        })
        // This reminder's own invitation (an earlier try that failed part
        // way wrote it) is taken back into the job, whatever its status.
        .filter(|i| i.job_id == *job_id || i.status.has_reached())
        .filter(|i| {
            i.job_id == *job_id || {
                let sent_at = i.timestamps.get(&Status::Queued).unwrap_or(&i.updated_at);
                !(is_reminder(&i.job_id) && *sent_at > recent)
            }
        })
        .map(|i| i.guest.guest_id)
        .collect();
    // Opted-out guests are left out here (rather than sent a skipped reminder).
    let phones: Vec<_> = silent.iter().map(|g| g.guest.phone.clone()).collect();
    let views = store.opt_out_views(owner, &phones).await?;
    let guests: Vec<_> = silent
        .into_iter()
        .zip(views)
        .filter(|(g, view)| {
            reached.contains(&g.guest.guest_id) && !view.effective().is_some_and(|r| r.opted_out)
        })
        .map(|(g, _)| g.guest)
        .collect();
    if guests.is_empty() {
        return Ok((0, left_for_the_organizer));
    }
    let fallback = TemplateId::parse(REMINDER_TEMPLATE_ID).expect("a valid id");
    let id = event.reminder_template_id.as_ref().unwrap_or(&fallback);
    let template = templates::current(store, owner, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("template {id}")))?;
    let plan = Plan {
        event: event.clone(),
        template,
    };
    let sent = send::send(
        store,
        queue,
        plan,
        guests,
        NewJob::Resumable(job_id.clone()),
        true,
    )
    .await?;
    Ok((sent.invitations.len(), left_for_the_organizer))
}

/// "Remind now": the organizer's event's guests without an answer, once a day.
pub async fn remind_now(
    store: &dyn RemindStore,
    queue: &dyn SendQueue,
    owner: &str,
    event_id: &EventId,
    now: OffsetDateTime,
) -> Result<Reminded, AppError> {
    let event = send::event_named(store, owner, event_id).await?;
    let key = reminder::remind_now_key(&event, now);
    let done = remind(store, queue, &event, &key, now).await?;
    tracing::info!(%event_id, job_id = %done.job_id, reminded = done.reminded, already = done.already, "remind now");
    Ok(done)
}

/// What a scheduled run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Reminder times run.
    pub runs: usize,
    pub reminded: usize,
    /// Reminder times that failed (tried again by the next run).
    pub errors: usize,
}

/// Runs every reminder time that has come (of the last two days) and not
/// been run. A time an event no longer has is dropped.
pub async fn run_due(
    store: &dyn RemindStore,
    reminders: &dyn ReminderStore,
    queue: &dyn SendQueue,
    now: OffsetDateTime,
) -> Result<Report, AppError> {
    let mut report = Report::default();
    let due = reminders
        .due_reminders(
            &reminder::scheduled_key(now - CATCH_UP),
            &reminder::scheduled_key(now),
        )
        .await?;
    for item in due {
        let event = store.get_event(&item.owner, &item.event_id).await?;
        let still = event.as_ref().is_some_and(|e| {
            e.reminder_instants()
                .into_iter()
                .any(|at| reminder::scheduled_key(at) == item.at)
        });
        if let (true, Some(event)) = (still, event) {
            if parse_timestamp(&item.at).is_none() {
                continue;
            }
            match remind(store, queue, &event, &item.at, now).await {
                Ok(done) => {
                    report.runs += 1;
                    report.reminded += done.reminded;
                    tracing::info!(event_id = %item.event_id, at = %item.at, job_id = %done.job_id, reminded = done.reminded, already = done.already, "reminder time run");
                }
                Err(error) => {
                    report.errors += 1;
                    tracing::error!(event_id = %item.event_id, at = %item.at, %error, "a reminder time failed; the next run tries again");
                    continue;
                }
            }
        }
        reminders.reminder_done(&item).await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::app::fixtures::{OWNER, guest, with_event};
    use crate::app::rsvp;
    use crate::domain::render::builtin_default;
    use crate::domain::rsvp::{Answer, AnswerVia};
    use crate::domain::{Invitation, now};
    use crate::ports::{EventStore, InvitationStore, JobStore, Transition};

    async fn delivered(store: &MemoryStore, inv: &Invitation) {
        for (from, to) in [
            (Status::Queued, Status::Sent),
            (Status::Sent, Status::Delivered),
        ] {
            let moved = store
                .transition(&Transition {
                    invitation_id: inv.invitation_id.clone(),
                    job_id: inv.job_id.clone(),
                    attempt: 1,
                    from,
                    to,
                    at: now(),
                    new_attempt: None,
                    message_sid: Some("SM1".into()),
                    error: None,
                    clear_flag: false,
                    due_at: None,
                    renew: None,
                })
                .await
                .unwrap();
            assert!(moved);
        }
    }

    #[tokio::test]
    async fn a_reminder_time_reminds_the_silent_once_and_an_answer_leaves_a_guest_out() {
        let (store, queue, event) = with_event().await;
        let plan = Plan {
            template: builtin_default(OWNER, &now()),
            event: event.clone(),
        };
        let guests = (1..=4).map(guest).collect();
        let sent = send::send(&store, &queue, plan, guests, NewJob::Fresh, false)
            .await
            .unwrap();
        // Three reached; one answered; one still queued (not reached).
        for inv in &sent.invitations[..3] {
            delivered(&store, inv).await;
        }
        let answered = rsvp::answer(
            &store,
            &sent.invitations[0],
            Answer::Yes,
            0,
            AnswerVia::Button,
        );
        answered.await.unwrap();
        let now = OffsetDateTime::now_utc();
        let first = remind(&store, &queue, &event, "k1", now).await.unwrap();
        assert_eq!((first.reminded, first.already), (2, false));
        let again = remind(&store, &queue, &event, "k1", now).await.unwrap();
        assert_eq!((again.reminded, again.already), (0, true));
        // Another time soon after: those just reminded are not reminded again.
        let soon = remind(&store, &queue, &event, "k2", now).await.unwrap();
        assert_eq!(soon.reminded, 0);
        let reminder = store
            .get_invitations(&[sent.invitations[1].invitation_id.clone()])
            .await
            .unwrap();
        assert_eq!(reminder.len(), 1);
        let job = store.get_job(&first.job_id).await.unwrap().unwrap();
        assert_eq!(job.total, 2);
        assert!(is_reminder(&job.job_id));
    }

    #[tokio::test]
    async fn a_guest_who_wrote_since_their_invitation_is_left_for_the_organizer() {
        let (store, queue, event) = with_event().await;
        let plan = Plan {
            template: builtin_default(OWNER, &now()),
            event: event.clone(),
        };
        let guests = (1..=2).map(guest).collect();
        let sent = send::send(&store, &queue, plan, guests, NewJob::Fresh, false)
            .await
            .unwrap();
        for inv in &sent.invitations {
            delivered(&store, inv).await;
        }
        // Guest 1 wrote "Não sei ainda": no answer, but not silent either.
        let wrote = crate::domain::rsvp::Reply {
            guest_id: sent.invitations[0].guest.guest_id.clone(),
            text: "Não sei ainda".into(),
            at: now(),
            message_sid: "SMreply1".into(),
        };
        store
            .keep_reply(OWNER, &event.event_id, &wrote)
            .await
            .unwrap();
        let done = remind(&store, &queue, &event, "k1", OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!((done.reminded, done.wrote), (1, 1), "only guest 2");
        let job = store.get_job(&done.job_id).await.unwrap().unwrap();
        assert_eq!(job.total, 1);
        let reminded = store
            .get_invitation(&crate::domain::InvitationId::for_guest(
                &done.job_id,
                &sent.invitations[1].guest.guest_id,
            ))
            .await
            .unwrap();
        assert!(reminded.is_some());
    }

    #[tokio::test]
    async fn a_run_that_finds_nobody_to_remind_leaves_its_time_for_a_later_press() {
        let (store, queue, invitations) = crate::app::fixtures::invited(2).await;
        let event = crate::app::fixtures::event();
        let now = OffsetDateTime::now_utc();
        // Nobody reached yet: nobody reminded, and the day is not used.
        let early = remind(&store, &queue, &event, "today", now).await.unwrap();
        assert_eq!((early.reminded, early.already), (0, false));
        assert!(store.get_job(&early.job_id).await.unwrap().is_none());
        for inv in &invitations {
            delivered(&store, inv).await;
        }
        let later = remind(&store, &queue, &event, "today", now).await.unwrap();
        assert_eq!((later.reminded, later.already), (2, false));
        let again = remind(&store, &queue, &event, "today", now).await.unwrap();
        assert_eq!((again.reminded, again.already), (0, true));
    }

    #[tokio::test]
    async fn scheduled_runs_find_due_times_and_drop_times_an_event_no_longer_has() {
        let (store, queue, mut event) = with_event().await;
        let start = OffsetDateTime::now_utc() + Duration::days(3);
        event.starts_at = timestamp(start);
        event.reminders = vec![reminder::ReminderTime {
            days_before: 2,
            at: time::Time::MIDNIGHT,
        }];
        store.put_event(&event).await.unwrap();
        let at = event.reminder_instants()[0];
        let before = run_due(&store, &store, &queue, at - Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!(before.runs, 0);
        let due = run_due(&store, &store, &queue, at + Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!(due.runs, 1);
        let again = run_due(&store, &store, &queue, at + Duration::minutes(2))
            .await
            .unwrap();
        assert_eq!(again.runs, 0, "a time is run once");
    }
}
