//! GIVEN invitations stuck in flight, WHEN reconciliation runs, THEN
//! what each becomes, and with which of the provider's messages.
use super::*;
use crate::app::fixtures::{OWNER, guest, with_event};
use crate::app::lifecycle::force;
use crate::domain::{PhoneNumber, now};
use crate::ports::{ErrorInfo, OutboundMessage, ProviderError};
use async_trait::async_trait;
use std::sync::Mutex;

/// What the provider has: messages by recipient and id.
#[derive(Default)]
struct Provider {
    messages: Mutex<Vec<(PhoneNumber, ProviderMessage)>>,
}

impl Provider {
    fn has(&self, to: &PhoneNumber, sid: &str, status: Status, body: Option<String>) {
        self.messages.lock().unwrap().push((
            to.clone(),
            ProviderMessage {
                sid: sid.into(),
                status: Some(status),
                error: None::<ErrorInfo>,
                body,
                over_daily_limit: false,
                created_at: now(),
            },
        ));
    }
}

/// The text the sender sends for the invitation.
async fn body(store: &dyn ReconcileStore, inv: &Invitation) -> Option<String> {
    match deliver::content_of(store, &BatchLookups::new(), inv, PAGE)
        .await
        .unwrap()
    {
        Some(MessageContent::Body(text)) => Some(text),
        _ => None,
    }
}

#[async_trait]
impl Messenger for Provider {
    async fn send(&self, _: &OutboundMessage) -> Result<String, ProviderError> {
        unreachable!("reconciliation never sends")
    }
    async fn sent_to(
        &self,
        to: &PhoneNumber,
        _since: &str,
    ) -> Result<Vec<ProviderMessage>, ProviderError> {
        let all = self.messages.lock().unwrap();
        // Newest first, as the port says.
        Ok(all
            .iter()
            .rev()
            .filter(|(t, _)| t == to)
            .map(|(_, m)| m.clone())
            .collect())
    }
    async fn fetch(&self, sid: &str) -> Result<Option<ProviderMessage>, ProviderError> {
        let all = self.messages.lock().unwrap();
        Ok(all
            .iter()
            .find(|(_, m)| m.sid == sid)
            .map(|(_, m)| m.clone()))
    }
}

const PAGE: &str = "https://api.example.com/r/";

const NONE: Thresholds = Thresholds {
    queued: Duration::ZERO,
    sending: Duration::ZERO,
    sent: Duration::ZERO,
};

const PROFILE: SenderProfile = SenderProfile {
    rate_per_second: 80,
    daily_limit: crate::domain::budget::DailyLimit::Unlimited,
    window_seconds: crate::domain::budget::DAY_SECONDS,
};

/// Four invitations of one job, one per guest, all `queued`.
async fn job_of_four() -> (
    crate::adapters::memory::MemoryStore,
    crate::adapters::memory::MemoryQueue,
    Vec<Invitation>,
) {
    crate::app::fixtures::queued_job(4, &now()).await
}

async fn claim(store: &dyn InvitationStore, inv: &Invitation) -> Invitation {
    assert!(
        force(store, inv, Status::Sending, &now(), None, None)
            .await
            .unwrap()
    );
    store
        .get_invitation(&inv.invitation_id)
        .await
        .unwrap()
        .unwrap()
}

async fn status(store: &dyn InvitationStore, inv: &Invitation) -> Status {
    store
        .get_invitation(&inv.invitation_id)
        .await
        .unwrap()
        .unwrap()
        .status
}

#[tokio::test]
async fn a_send_twilio_refused_for_the_daily_limit_waits_instead_of_failing() {
    let (store, queue, invs) = job_of_four().await;
    let provider = Provider::default();
    let claimed = claim(&store, &invs[0]).await;
    let own = body(&store, &claimed).await;
    provider.messages.lock().unwrap().push((
        claimed.guest.phone.clone(),
        ProviderMessage {
            sid: "SM1".into(),
            status: Some(Status::Failed),
            error: Some(ErrorInfo {
                code: "63018".into(),
                message: "over the limit".into(),
            }),
            body: own,
            over_daily_limit: true,
            created_at: now(),
        },
    ));
    let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later)
        .await
        .unwrap();
    let inv = store
        .get_invitation(&claimed.invitation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((inv.status, inv.attempt), (Status::Waiting, 2));
}

#[tokio::test]
async fn each_stale_state_is_settled_its_own_way() {
    let (store, queue, invs) = job_of_four().await;
    let provider = Provider::default();
    // 0: queued with no message. 1: claimed, the provider has its message
    // (delivered). 2: claimed, nothing reached the provider. 3: sent, the
    // provider says read.
    let claimed_sent = claim(&store, &invs[1]).await;
    let own = body(&store, &claimed_sent).await;
    provider.has(&claimed_sent.guest.phone, "SM1", Status::Delivered, own);
    let claimed_lost = claim(&store, &invs[2]).await;
    let sent = claim(&store, &invs[3]).await;
    assert!(
        force(&store, &sent, Status::Sent, &now(), None, None)
            .await
            .unwrap()
    );
    let note = Annotation {
        message_sid: Some("SM3".into()),
        ..Default::default()
    };
    store.annotate(&sent.invitation_id, 1, &note).await.unwrap();
    provider.has(&sent.guest.phone, "SM3", Status::Read, None);

    let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let report = run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later)
        .await
        .unwrap();
    assert_eq!(
        (
            report.requeued,
            report.settled,
            report.released,
            report.unchanged,
            report.errors
        ),
        (1, 2, 1, 0, 0),
        "{report:?}"
    );
    assert_eq!(status(&store, &invs[0]).await, Status::Queued);
    assert_eq!(status(&store, &invs[1]).await, Status::Delivered);
    assert_eq!(
        status(&store, &claimed_lost).await,
        Status::Queued,
        "released"
    );
    assert_eq!(status(&store, &invs[3]).await, Status::Read);
    let queued: HashSet<_> = queue
        .messages()
        .into_iter()
        .map(|m| m.invitation_id)
        .collect();
    let expected: HashSet<_> = [&invs[0], &invs[2]].map(|i| i.invitation_id.clone()).into();
    assert_eq!(
        queued, expected,
        "the queued one and the released one are enqueued"
    );
    let job = store.get_job(&invs[0].job_id).await.unwrap().unwrap();
    assert_eq!(
        (
            job.count(Status::Queued),
            job.count(Status::Delivered),
            job.count(Status::Read)
        ),
        (2, 1, 1),
        "counters follow"
    );
}

#[tokio::test]
async fn nothing_younger_than_its_threshold_is_touched() {
    let (store, queue, invs) = job_of_four().await;
    claim(&store, &invs[0]).await;
    let report = run(
        &store,
        &queue,
        &Provider::default(),
        Thresholds::DEPLOYED,
        &PROFILE,
        PAGE,
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert_eq!(report, Report::default());
    assert!(queue.messages().is_empty());
}

#[tokio::test]
async fn invitations_whose_job_was_never_written_are_left_alone() {
    let (store, queue, event) = with_event().await;
    let orphan = Invitation::new_queued(
        event.event_id.clone(),
        JobId::generate(),
        OWNER,
        guest(1),
        None,
        &now(),
    );
    // Written as a failed request leaves them: invitations, no job item.
    crate::app::fixtures::written(&store, &orphan).await;
    store.forget_job(&orphan.job_id);
    let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let report = run(
        &store,
        &queue,
        &Provider::default(),
        NONE,
        &PROFILE,
        PAGE,
        later,
    )
    .await
    .unwrap();
    assert_eq!((report.orphaned, report.requeued), (1, 0));
    assert!(queue.messages().is_empty());
}

/// An invitation claimed (no message id) a second ago.
async fn claimed_one() -> (
    crate::adapters::memory::MemoryStore,
    crate::adapters::memory::MemoryQueue,
    Invitation,
) {
    let (store, queue, invs) = job_of_four().await;
    let claimed = claim(&store, &invs[0]).await;
    (store, queue, claimed)
}

async fn now_of(store: &dyn InvitationStore, inv: &Invitation) -> Invitation {
    store
        .get_invitation(&inv.invitation_id)
        .await
        .unwrap()
        .unwrap()
}

fn later() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::seconds(1)
}

#[tokio::test]
async fn given_another_message_to_the_same_number_then_the_claim_is_not_settled_with_it() {
    let (store, queue, claimed) = claimed_one().await;
    let provider = Provider::default();
    // Since the claim the guest got another organizer's invitation (or a
    // confirmation), and it was read: it is not this invitation's.
    let other = Some("Another event: see you there".to_owned());
    provider.has(&claimed.guest.phone, "SM9", Status::Read, other);
    let report = run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
        .await
        .unwrap();
    assert_eq!((report.settled, report.released), (0, 1), "{report:?}");
    let inv = now_of(&store, &claimed).await;
    // Released as a new attempt, and enqueued as such.
    assert_eq!((inv.status, inv.attempt), (Status::Queued, 2));
    assert_eq!(inv.message_sid, None);
    let sent = queue.messages();
    assert_eq!(sent.last().map(|m| m.attempt), Some(2));
}

#[tokio::test]
async fn given_a_message_another_invitation_recorded_then_it_is_not_adopted() {
    let (store, queue, invs) = job_of_four().await;
    let claimed = claim(&store, &invs[0]).await;
    let own = body(&store, &claimed).await;
    // The same guest's earlier invitation holds SM1 as its own.
    let (_, _, earlier) = crate::app::fixtures::queued_job(1, &now()).await;
    let mut holder = earlier[0].clone();
    holder.guest = claimed.guest.clone();
    holder.invitation_id = crate::domain::InvitationId::generate();
    crate::app::fixtures::written(&store, &holder).await;
    let note = Annotation {
        message_sid: Some("SM1".into()),
        ..Default::default()
    };
    store
        .annotate(&holder.invitation_id, holder.attempt, &note)
        .await
        .unwrap();
    let provider = Provider::default();
    provider.has(&claimed.guest.phone, "SM1", Status::Delivered, own);
    run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
        .await
        .unwrap();
    let inv = now_of(&store, &claimed).await;
    assert_ne!(inv.message_sid.as_deref(), Some("SM1"));
    assert_ne!(inv.status, Status::Delivered);
}

#[tokio::test]
async fn given_an_earlier_attempts_message_with_its_text_then_the_newest_is_its_own() {
    let (store, queue, claimed) = claimed_one().await;
    let own = body(&store, &claimed).await;
    let provider = Provider::default();
    // An earlier attempt's message (refused), then this attempt's.
    provider.has(&claimed.guest.phone, "SM1", Status::Failed, own.clone());
    provider.has(&claimed.guest.phone, "SM2", Status::Read, own);
    let report = run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
        .await
        .unwrap();
    assert_eq!((report.settled, report.released), (1, 0));
    let inv = now_of(&store, &claimed).await;
    assert_eq!(inv.status, Status::Read);
    assert_eq!(inv.message_sid.as_deref(), Some("SM2"));
}

#[tokio::test]
async fn given_its_own_message_then_the_claim_is_settled_with_it_once() {
    let (store, queue, claimed) = claimed_one().await;
    let own = body(&store, &claimed).await;
    let provider = Provider::default();
    provider.has(&claimed.guest.phone, "SM7", Status::Delivered, own);
    provider.has(
        &claimed.guest.phone,
        "SM8",
        Status::Read,
        Some("Thanks!".into()),
    );
    run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
        .await
        .unwrap();
    let inv = now_of(&store, &claimed).await;
    assert_eq!(inv.status, Status::Delivered);
    assert_eq!(inv.message_sid.as_deref(), Some("SM7"));
}

#[tokio::test]
async fn a_stale_release_frees_no_fresh_claim() {
    let (store, _queue, claimed) = claimed_one().await;
    // One run releases the claim (a new attempt) and the sender claims it again.
    assert_eq!(
        lifecycle::release(&store, &claimed, &now()).await.unwrap(),
        Some(2)
    );
    let queued = now_of(&store, &claimed).await;
    let fresh = claim(&store, &queued).await;
    assert_eq!((fresh.status, fresh.attempt), (Status::Sending, 2));
    // A second run, which read the first claim, releases it late: nothing moves.
    assert_eq!(
        lifecycle::release(&store, &claimed, &now()).await.unwrap(),
        None
    );
    let inv = now_of(&store, &claimed).await;
    assert_eq!((inv.status, inv.attempt), (Status::Sending, 2));
}

#[tokio::test]
async fn one_run_at_a_time() {
    let (store, queue, claimed) = claimed_one().await;
    // Another run holds the lease.
    let held = KeyClaim {
        request_hash: LEASE_KEY.into(),
        token: "other".into(),
        now: OffsetDateTime::now_utc().unix_timestamp(),
        lease_until: OffsetDateTime::now_utc().unix_timestamp() + LEASE_SECONDS,
    };
    let claimed_lease = store
        .claim_idempotency_key(LEASE_OWNER, LEASE_KEY, &held)
        .await
        .unwrap();
    assert_eq!(claimed_lease, IdempotencyClaim::New);
    let provider = Provider::default();
    let report = run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
        .await
        .unwrap();
    assert_eq!(report, Report::default());
    assert_eq!(now_of(&store, &claimed).await.status, Status::Sending);
    // Once it ended, the next run does the work.
    store
        .release_idempotency_key(LEASE_OWNER, LEASE_KEY)
        .await
        .unwrap();
    let report = run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
        .await
        .unwrap();
    assert_eq!(report.released, 1);
}

#[tokio::test]
async fn given_a_template_the_provider_renders_then_a_message_there_flags_instead_of_settling() {
    let (store, queue, invs) = job_of_four().await;
    let input: crate::domain::TemplateInput = serde_json::from_value(serde_json::json!({
        "template_id": "ct",
        "name": "Content",
        "content_sid": "HX0123456789abcdef0123456789abcdef",
        "content_variables": {"1": "{guest_name}"},
        "category": "utility",
    }))
    .unwrap();
    let template = crate::app::templates::library::create(&store, OWNER, input)
        .await
        .unwrap();
    // Written with the Content template (as a send that chose it would).
    let mut inv = invs[0].clone();
    inv.invitation_id = crate::domain::InvitationId::generate();
    inv.template = Some(crate::domain::TemplateRef {
        template_id: template.template_id.clone(),
        version: template.version,
    });
    crate::app::fixtures::written(&store, &inv).await;
    let claimed = claim(&store, &inv).await;
    let provider = Provider::default();
    provider.has(
        &claimed.guest.phone,
        "SM1",
        Status::Read,
        Some("Hi Guest 1".into()),
    );
    run(&store, &queue, &provider, NONE, &PROFILE, PAGE, later())
        .await
        .unwrap();
    let now = now_of(&store, &claimed).await;
    assert_eq!((now.status, now.attempt), (Status::Sending, 1));
    assert_eq!(now.flag.as_deref(), Some(SEND_UNCONFIRMED));
    assert_eq!(now.message_sid, None);
}
