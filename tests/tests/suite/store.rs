//! The DynamoDB store over the real SDK against moto: round trips and the
//! conditional status rules, with the job's counters checked after each step.

use e2e::TestStack;
use shared::adapters::dynamo::DynamoStore;
use shared::app::lifecycle::{self, Outcome, StatusReport};
use shared::domain::{
    Event, EventId, EventInput, Guest, GuestId, Invitation, Job, JobId, PhoneNumber, RsvpToken,
    Status,
};
use shared::ports::{ErrorInfo, EventStore, InvitationStore, JobStore, ListQuery};

const OWNER: &str = "org-1";

fn event() -> Event {
    EventInput {
        name: Some("Gala".into()),
        starts_at: Some("2027-05-01T17:00:00-03:00".into()),
        venue: Some("Hall".into()),
        host: Some("Ana".into()),
        rsvp_base_url: Some("https://rsvp.example.com/r/".into()),
        ..Default::default()
    }
    .parse(
        EventId::parse("gala").unwrap(),
        OWNER,
        &shared::domain::now(),
    )
    .unwrap()
}

fn invitation(job: &Job, n: u32) -> Invitation {
    let guest = Guest {
        guest_id: GuestId::parse(&format!("g{n}")).unwrap(),
        name: format!("Guest {n}"),
        phone: PhoneNumber::parse(&format!("+55119999{n:05}")).unwrap(),
        rsvp_token: RsvpToken::generate(),
    };
    Invitation::new_queued(
        job.event_id.clone(),
        job.job_id.clone(),
        OWNER,
        guest,
        None,
        &shared::domain::now(),
    )
}

async fn setup(n: u32) -> (TestStack, DynamoStore, Job, Vec<Invitation>) {
    let t = TestStack::start().await;
    let store = DynamoStore::new(t.stack.dynamodb.clone(), &t.stack.names.table);
    store.put_event(&event()).await.unwrap();
    let job = Job::new(
        JobId::generate(),
        EventId::parse("gala").unwrap(),
        OWNER,
        u64::from(n),
        &shared::domain::now(),
    );
    let invitations: Vec<Invitation> = (0..n).map(|i| invitation(&job, i)).collect();
    store.create_job(&job, &invitations).await.unwrap();
    (t, store, job, invitations)
}

fn report(inv: &Invitation, attempt: u32, status: Status) -> StatusReport {
    StatusReport {
        invitation_id: inv.invitation_id.clone(),
        job_id: None,
        attempt,
        status,
        at: shared::domain::now(),
        message_sid: Some("SM1".into()),
        error: None,
    }
}

async fn counts(store: &DynamoStore, job: &Job) -> Vec<(Status, i64)> {
    let job = store.get_job(&job.job_id).await.unwrap().unwrap();
    let sum: i64 = job.counts.values().sum();
    assert_eq!(
        sum, job.total as i64,
        "every invitation counted exactly once: {job:?}"
    );
    job.counts.into_iter().filter(|(_, n)| *n != 0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips() {
    let (_t, store, job, invitations) = setup(60).await;
    let stored = store
        .get_event(OWNER, &EventId::parse("gala").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Event {
            updated_at: String::new(),
            ..stored
        },
        Event {
            updated_at: String::new(),
            ..event()
        }
    );
    assert!(
        store
            .get_event("someone-else", &EventId::parse("gala").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.get_job(&job.job_id).await.unwrap(), Some(job.clone()));
    for inv in &invitations[..3] {
        assert_eq!(
            store
                .get_invitation(&inv.invitation_id)
                .await
                .unwrap()
                .as_ref(),
            Some(inv)
        );
    }
    // Pages of 25 with a cursor cover all 60 exactly once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let q = ListQuery {
            owner: OWNER.into(),
            event_id: job.event_id.clone(),
            status: None,
            limit: 25,
            cursor,
        };
        let page = store.list_invitations(&q).await.unwrap();
        assert!(page.items.len() <= 25);
        seen.extend(page.items.into_iter().map(|i| i.invitation_id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    seen.sort();
    let mut expected: Vec<_> = invitations
        .iter()
        .map(|i| i.invitation_id.clone())
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_moves_only_forward_and_counters_stay_exact() {
    let (_t, store, job, invitations) = setup(2).await;
    let inv = &invitations[0];
    assert!(
        lifecycle::force(
            &store,
            inv,
            Status::Sending,
            &shared::domain::now(),
            None,
            None
        )
        .await
        .unwrap()
    );
    // A second claim of the same invitation loses: it is no longer queued.
    assert!(
        !lifecycle::force(
            &store,
            inv,
            Status::Sending,
            &shared::domain::now(),
            None,
            None
        )
        .await
        .unwrap()
    );

    let applied = lifecycle::apply_report(&store, &report(inv, 1, Status::Delivered))
        .await
        .unwrap();
    assert_eq!(
        applied,
        Outcome::Applied {
            from: Status::Sending
        }
    );
    // Out of order: "sent" after "delivered" moves nothing but fills in its time.
    let late = lifecycle::apply_report(&store, &report(inv, 1, Status::Sent))
        .await
        .unwrap();
    assert_eq!(
        late,
        Outcome::NotForward {
            current: Status::Delivered
        }
    );
    // Duplicate.
    let dup = lifecycle::apply_report(&store, &report(inv, 1, Status::Delivered))
        .await
        .unwrap();
    assert_eq!(
        dup,
        Outcome::NotForward {
            current: Status::Delivered
        }
    );
    // A failure after delivery is late noise.
    let mut failed = report(inv, 1, Status::Failed);
    failed.error = Some(ErrorInfo {
        code: "30008".into(),
        message: "x".into(),
    });
    assert_eq!(
        lifecycle::apply_report(&store, &failed).await.unwrap(),
        Outcome::NotForward {
            current: Status::Delivered
        }
    );
    assert_eq!(
        lifecycle::apply_report(&store, &report(inv, 1, Status::Read))
            .await
            .unwrap(),
        Outcome::Applied {
            from: Status::Delivered
        }
    );
    let stored = store
        .get_invitation(&inv.invitation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, Status::Read);
    assert!(
        stored.timestamps.contains_key(&Status::Sent),
        "late sent time kept"
    );
    assert_eq!(stored.error_code, None);
    assert_eq!(
        counts(&store, &job).await,
        vec![(Status::Queued, 1), (Status::Read, 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_for_an_older_attempt_never_touch_the_current_one() {
    let (_t, store, job, invitations) = setup(1).await;
    let inv = &invitations[0];
    lifecycle::force(
        &store,
        inv,
        Status::Sending,
        &shared::domain::now(),
        None,
        None,
    )
    .await
    .unwrap();
    let mut failed = report(inv, 1, Status::Failed);
    failed.error = Some(ErrorInfo {
        code: "63024".into(),
        message: "bad recipient".into(),
    });
    lifecycle::apply_report(&store, &failed).await.unwrap();
    let current = store
        .get_invitation(&inv.invitation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (current.status, current.error_code.as_deref()),
        (Status::Failed, Some("63024"))
    );

    // Retry: attempt 2 starts over.
    assert!(
        lifecycle::force(
            &store,
            &current,
            Status::Queued,
            &shared::domain::now(),
            Some(2),
            None
        )
        .await
        .unwrap()
    );
    let retried = store
        .get_invitation(&inv.invitation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (retried.status, retried.attempt, retried.error_code.clone()),
        (Status::Queued, 2, None)
    );
    assert_eq!(
        retried.timestamps.keys().copied().collect::<Vec<_>>(),
        vec![Status::Queued]
    );

    // Attempt 1's late callbacks are ignored.
    let outcome = lifecycle::apply_report(&store, &report(inv, 1, Status::Delivered))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::OtherAttempt { current: 2 });
    assert_eq!(
        store
            .get_invitation(&inv.invitation_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Queued
    );
    assert_eq!(counts(&store, &job).await, vec![(Status::Queued, 1)]);

    lifecycle::force(
        &store,
        &retried,
        Status::Sending,
        &shared::domain::now(),
        None,
        None,
    )
    .await
    .unwrap();
    lifecycle::apply_report(&store, &report(inv, 2, Status::Read))
        .await
        .unwrap();
    assert_eq!(counts(&store, &job).await, vec![(Status::Read, 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callbacks_count_each_invitation_once() {
    let (_t, store, job, invitations) = setup(20).await;
    for inv in &invitations {
        lifecycle::force(
            &store,
            inv,
            Status::Sending,
            &shared::domain::now(),
            None,
            None,
        )
        .await
        .unwrap();
    }
    // Every status for every invitation, all at once, twice.
    let mut reports = Vec::new();
    for inv in &invitations {
        for status in [
            Status::Sent,
            Status::Delivered,
            Status::Read,
            Status::Sent,
            Status::Read,
        ] {
            reports.push(report(inv, 1, status));
        }
    }
    let results =
        futures::future::join_all(reports.iter().map(|r| lifecycle::apply_report(&store, r))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(counts(&store, &job).await, vec![(Status::Read, 20)]);
}

/// Reconciliation looks at an invitation with the time its run started; a
/// callback that moved the invitation since wins, and a look that does
/// land moves the row among the event's changes (a page shows its time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_look_from_a_run_older_than_the_last_move_changes_nothing() {
    use shared::ports::{Annotation, GuestStore};
    let (_t, store, _job, invitations) = setup(1).await;
    let inv = &invitations[0];
    let run_started = shared::domain::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let moved_at = shared::domain::now();
    assert!(
        lifecycle::force(&store, inv, Status::Sending, &moved_at, None, None)
            .await
            .unwrap()
    );
    let look = |at: &str| Annotation {
        touched_at: Some(at.to_owned()),
        ..Default::default()
    };
    assert!(
        !store
            .annotate(&inv.invitation_id, 1, &look(&run_started))
            .await
            .unwrap()
    );
    let now = store
        .get_invitation(&inv.invitation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.status, now.updated_at), (Status::Sending, moved_at));

    let since = store.changes_from_now();
    let later = shared::domain::now();
    assert!(
        store
            .annotate(&inv.invitation_id, 1, &look(&later))
            .await
            .unwrap()
    );
    let changes = store
        .guest_changes(OWNER, &inv.event_id, Some(&since), 10)
        .await
        .unwrap();
    assert_eq!(changes.changed, std::slice::from_ref(&inv.guest.guest_id));
}
