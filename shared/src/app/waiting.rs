//! Invitations waiting for WhatsApp's daily limit go out when its moving
//! window frees places: as many as are free, oldest first, without the
//! organizer doing anything. Run with reconciliation (on its schedule).

use super::{lifecycle, send};
use crate::domain::budget::{DailyLimit, STACK_SENDER, SenderProfile, holder};
use crate::domain::reason::MARKETING_HELD_BACK;
use crate::domain::{Invitation, InvitationId, Status, timestamp};
use crate::ports::{BudgetClaim, BudgetStore, InvitationStore, SendQueue, StoreError};
use futures::StreamExt;
use time::OffsetDateTime;

/// What releasing reads and moves.
pub trait WaitingStore: InvitationStore + BudgetStore {}
impl<T: InvitationStore + BudgetStore + ?Sized> WaitingStore for T {}

/// Invitations queued again per run at most: a day's tier of 2,000 frees
/// within one run; larger tiers rarely wait at all.
pub const MAX_RELEASE: usize = 5_000;

/// Store writes in flight at once.
const PARALLELISM: usize = 8;

/// Queues again the oldest waiting invitations, one per free place of the
/// budget (all of them when the limit was lifted). Returns how many. An
/// enqueue that fails leaves them queued, for reconciliation to enqueue.
pub async fn release(
    store: &dyn WaitingStore,
    queue: &dyn SendQueue,
    profile: &SenderProfile,
    now: OffsetDateTime,
) -> Result<usize, StoreError> {
    let at = timestamp(now);
    // The budget's ring is read only when someone waits.
    if store
        .in_flight_since(Status::Waiting, &at, 1)
        .await?
        .is_empty()
    {
        return Ok(0);
    }
    let free = match profile.daily_limit {
        DailyLimit::Unlimited => MAX_RELEASE,
        DailyLimit::Limited(limit) => store.budget_state(STACK_SENDER).await?.free_now(
            limit,
            profile.window_seconds,
            now.unix_timestamp(),
        ) as usize,
    }
    .min(MAX_RELEASE);
    if free == 0 {
        return Ok(0);
    }
    let waiting = store.in_flight_since(Status::Waiting, &at, free).await?;
    // Boxed: a lazy map here trips the spawned task's lifetime inference.
    let moves: Vec<std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>>> = waiting
        .iter()
        .map(|inv| Box::pin(queue_again(store, inv, &at)) as _)
        .collect();
    let moved: Vec<Result<Option<Invitation>, StoreError>> = futures::stream::iter(moves)
        .buffer_unordered(PARALLELISM)
        .collect()
        .await;
    let mut queued = Vec::new();
    for result in moved {
        match result {
            Ok(Some(inv)) => queued.push(inv),
            // Another run or a retry moved it meanwhile.
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "could not queue a waiting invitation again; the next run tries");
            }
        }
    }
    send::enqueue(queue, &queued).await;
    if !queued.is_empty() {
        tracing::info!(
            released = queued.len(),
            free_places = free,
            "the daily limit's window freed places; waiting invitations queued again"
        );
    }
    Ok(queued.len())
}

/// Waiting to queued; Some(the invitation as queued) when it moved.
async fn queue_again(
    store: &dyn WaitingStore,
    inv: &Invitation,
    at: &str,
) -> Result<Option<Invitation>, StoreError> {
    let moved = lifecycle::force(store, inv, Status::Queued, at, None, None).await?;
    Ok(moved.then(|| Invitation {
        status: Status::Queued,
        ..inv.clone()
    }))
}

/// Tries of a move that another writer keeps beating.
const MAX_RACES: usize = 8;

/// The provider refused `attempt` for the daily limit (in the send's
/// answer or a failed report): its count is ahead of the budget's. The
/// refused message's place is given back (the provider did not count it),
/// the places held now become the limit the budget keeps
/// ([`crate::domain::budget::Ledger::learn`]), and the invitation waits
/// again, not failed, under a new attempt so that late callbacks of the
/// refused message change nothing. Ok(false) when the invitation had moved on.
pub async fn refused_for_limit(
    store: &dyn WaitingStore,
    invitation_id: &InvitationId,
    attempt: u32,
    profile: &SenderProfile,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let at = timestamp(now);
    let epoch = now.unix_timestamp();
    for _ in 0..MAX_RACES {
        let Some(inv) = store.get_invitation(invitation_id).await? else {
            return Ok(false);
        };
        // A late or repeated report of a refusal already handled changes
        // nothing, and teaches nothing.
        let refusable = matches!(inv.status, Status::Sending | Status::Sent);
        if inv.attempt != attempt || !refusable {
            return Ok(false);
        }
        // Before the move: a failure here leaves the report to be applied again.
        let mut learned = None;
        if let DailyLimit::Limited(limit) = profile.daily_limit {
            let claim = BudgetClaim {
                recipient: inv.guest.phone.clone(),
                holder: holder(inv.invitation_id.as_str(), attempt),
            };
            store.release_budget(STACK_SENDER, &claim, epoch).await?;
            let window = profile.window_seconds;
            learned = Some(
                store
                    .learn_budget(STACK_SENDER, limit, window, epoch)
                    .await?,
            );
        }
        if lifecycle::force(store, &inv, Status::Waiting, &at, Some(attempt + 1), None).await? {
            tracing::warn!(%invitation_id, attempt, ?learned, "the provider refused the send for the daily limit; the budget keeps to the places it holds, and the invitation waits");
            return Ok(true);
        }
    }
    Err(StoreError::Backend(format!(
        "invitation {invitation_id} kept changing; gave up after {MAX_RACES} tries"
    )))
}

/// How long a marketing message WhatsApp held back (63049) for a guest
/// outside the US waits before its next try, by the attempt it held back:
/// Twilio's advice is to retry later with progressively larger delays.
/// Past the last, the invitation fails; in the US it fails at once (Meta
/// delivers no marketing there at all).
pub const HELD_BACK_DELAYS: [time::Duration; 3] = [
    time::Duration::hours(1),
    time::Duration::hours(6),
    time::Duration::hours(24),
];

/// What became of a held-back marketing message's invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldBack {
    /// Waits for its next try, under a new attempt, until `due`.
    Waits { due: String },
    /// Not tried again: a US guest, or tried as often as
    /// [`HELD_BACK_DELAYS`] allows. The caller fails it.
    Final,
    /// The invitation had moved on (another attempt, a repeated report).
    Moved,
}

/// WhatsApp held back `attempt`'s marketing message (63049): outside the
/// US, the invitation waits (not failed) under a new attempt until the
/// delay for that attempt has passed; reconciliation then sends it as the
/// daily limit allows, saying so on the invitation meanwhile.
pub async fn held_back(
    store: &dyn WaitingStore,
    invitation_id: &InvitationId,
    attempt: u32,
    now: OffsetDateTime,
) -> Result<HeldBack, StoreError> {
    let at = timestamp(now);
    for _ in 0..MAX_RACES {
        let Some(inv) = store.get_invitation(invitation_id).await? else {
            return Ok(HeldBack::Moved);
        };
        if inv.attempt != attempt || !matches!(inv.status, Status::Sending | Status::Sent) {
            return Ok(HeldBack::Moved);
        }
        let delay = HELD_BACK_DELAYS.get(attempt.saturating_sub(1) as usize);
        let Some(delay) = delay.filter(|_| !inv.guest.phone.is_us()) else {
            return Ok(HeldBack::Final);
        };
        let due = timestamp(now + *delay);
        let mut t = lifecycle::forced(&inv, Status::Waiting, &at);
        t.new_attempt = Some(attempt + 1);
        t.due_at = Some(due.clone());
        t.error = Some(MARKETING_HELD_BACK.into());
        if store.transition(&t).await? {
            tracing::warn!(%invitation_id, attempt, %due, "WhatsApp held back the marketing message; tried again later");
            return Ok(HeldBack::Waits { due });
        }
    }
    Err(StoreError::Backend(format!(
        "invitation {invitation_id} kept changing; gave up after {MAX_RACES} tries"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::app::fixtures::queued_job;
    use crate::domain::PhoneNumber;
    use crate::domain::budget::BudgetRules;
    use crate::ports::JobStore;

    fn profile(limit: DailyLimit) -> SenderProfile {
        SenderProfile {
            rate_per_second: 80,
            daily_limit: limit,
            window_seconds: 30,
        }
    }

    /// Five invitations parked as waiting, one a second (the first oldest).
    async fn five_waiting() -> (
        MemoryStore,
        crate::adapters::memory::MemoryQueue,
        Vec<Invitation>,
    ) {
        let (store, queue, invitations) = queued_job(5, "2026-01-01T00:00:00.000Z").await;
        for (i, inv) in invitations.iter().enumerate() {
            let at = format!("2026-01-01T00:00:0{i}.000Z");
            assert!(
                lifecycle::force(&store, inv, Status::Waiting, &at, None, None)
                    .await
                    .unwrap()
            );
        }
        (store, queue, invitations)
    }

    fn phone(n: u32) -> PhoneNumber {
        PhoneNumber::parse(&format!("+55119888{n:05}")).unwrap()
    }

    /// Guest `n` takes a place of a 3-place, 30-second budget, held 31 s.
    async fn take(store: &MemoryStore, n: u32, now: i64) {
        let claim = BudgetClaim {
            recipient: phone(n),
            holder: format!("other#{n}"),
        };
        let rules = BudgetRules {
            limit: 3,
            window_seconds: 30,
            until: now + 31,
        };
        let taken = store.take_budget(STACK_SENDER, &claim, &rules, now).await;
        assert_eq!(taken.unwrap(), crate::ports::BudgetTake::Counted);
    }

    #[tokio::test]
    async fn as_many_as_the_window_frees_go_out_again_oldest_first() {
        let (store, queue, invitations) = five_waiting().await;
        let now = OffsetDateTime::now_utc();
        let epoch = now.unix_timestamp();
        // Limit 3: two places held for the window, one free.
        for n in 0..2 {
            take(&store, n, epoch).await;
        }
        let limited = profile(DailyLimit::Limited(3));
        assert_eq!(release(&store, &queue, &limited, now).await.unwrap(), 1);
        let queued: Vec<_> = queue
            .messages()
            .into_iter()
            .map(|m| m.invitation_id)
            .collect();
        assert_eq!(queued, [invitations[0].invitation_id.clone()]);
        let first = store
            .get_invitation(&invitations[0].invitation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.status, Status::Queued);
        // Nothing more frees until the window ends.
        take(&store, 2, epoch).await;
        assert_eq!(release(&store, &queue, &limited, now).await.unwrap(), 0);
        // Then three places: the next three oldest.
        let after = now + time::Duration::seconds(31);
        assert_eq!(release(&store, &queue, &limited, after).await.unwrap(), 3);
        let queued: Vec<_> = queue
            .messages()
            .into_iter()
            .map(|m| m.invitation_id)
            .collect();
        let oldest: Vec<_> = invitations[..4]
            .iter()
            .map(|i| i.invitation_id.clone())
            .collect();
        assert_eq!(queued, oldest);
        let job = store
            .get_job(&invitations[0].job_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (job.count(Status::Queued), job.count(Status::Waiting)),
            (4, 1)
        );
    }

    #[tokio::test]
    async fn a_refusal_gives_back_its_place_keeps_to_what_is_held_and_the_invitation_waits_under_a_new_attempt()
     {
        let (store, queue, invitations) = five_waiting().await;
        let limited = profile(DailyLimit::Limited(100));
        let now = OffsetDateTime::now_utc();
        let epoch = now.unix_timestamp();
        release(&store, &queue, &limited, now).await.unwrap();
        let inv = store
            .get_invitation(&invitations[0].invitation_id)
            .await
            .unwrap()
            .unwrap();
        assert!(
            lifecycle::force(
                &store,
                &inv,
                Status::Sending,
                "2026-01-01T00:01:00.000Z",
                None,
                None
            )
            .await
            .unwrap()
        );
        // It held a place, as did two other guests messaged.
        let rules = BudgetRules {
            limit: 100,
            window_seconds: 30,
            until: epoch + 31,
        };
        let its = BudgetClaim {
            recipient: inv.guest.phone.clone(),
            holder: holder(inv.invitation_id.as_str(), 1),
        };
        store
            .take_budget(STACK_SENDER, &its, &rules, epoch)
            .await
            .unwrap();
        take(&store, 7, epoch).await;
        take(&store, 8, epoch).await;
        let id = &inv.invitation_id;
        // A refusal of another attempt changes nothing and teaches nothing.
        assert!(
            !refused_for_limit(&store, id, 2, &limited, now)
                .await
                .unwrap()
        );
        let state = store.budget_state(STACK_SENDER).await.unwrap();
        assert_eq!(state.learned_limit(100, 30, epoch), None);
        assert!(
            refused_for_limit(&store, id, 1, &limited, now)
                .await
                .unwrap()
        );
        let waiting = store.get_invitation(id).await.unwrap().unwrap();
        assert_eq!((waiting.status, waiting.attempt), (Status::Waiting, 2));
        // Its duplicate finds the new attempt and changes nothing.
        assert!(
            !refused_for_limit(&store, id, 1, &limited, now)
                .await
                .unwrap()
        );
        // The provider did not count the refused one: two places held,
        // and two is all it allows until the holds end.
        let state = store.budget_state(STACK_SENDER).await.unwrap();
        assert_eq!(state.held(epoch), 2);
        assert_eq!(state.learned_limit(100, 30, epoch), Some(2));
        assert_eq!(state.free_now(100, 30, epoch), 0);
        assert_eq!(release(&store, &queue, &limited, now).await.unwrap(), 0);
        let after = now + time::Duration::seconds(31);
        assert_eq!(release(&store, &queue, &limited, after).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_lifted_limit_releases_everyone() {
        let (store, queue, _) = five_waiting().await;
        let unlimited = profile(DailyLimit::Unlimited);
        let now = OffsetDateTime::now_utc();
        assert_eq!(release(&store, &queue, &unlimited, now).await.unwrap(), 5);
        assert_eq!(queue.messages().len(), 5);
    }
}
