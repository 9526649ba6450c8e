//! The daily budget (WhatsApp's limit on unique recipients in a moving
//! window) over the real SDK against moto, under the fault layer's
//! conflicts, throttling and lost answers: concurrent senders never count
//! more recipients than the limit, a redelivery takes no second place, a
//! place given back is free again, and the window frees the rest.

use e2e::TestStack;
use e2e::faults::{Faults, Policy};
use futures::future::join_all;
use shared::adapters::dynamo::DynamoStore;
use shared::domain::PhoneNumber;
use shared::domain::budget::BudgetRules;
use shared::ports::{BudgetClaim, BudgetStore, BudgetTake};
use std::sync::Arc;

const LIMIT: u32 = 10;
const WINDOW: i64 = 30;

fn sender() -> &'static str {
    shared::domain::budget::STACK_SENDER
}

fn recipient(i: usize) -> PhoneNumber {
    PhoneNumber::parse(&format!("+55119999960{i:02}")).unwrap()
}

/// Recipient `i` as invitation `i`'s attempt `attempt` would claim them.
fn claim(i: usize, attempt: u32) -> BudgetClaim {
    BudgetClaim {
        recipient: recipient(i),
        holder: format!("inv{i}#{attempt}"),
    }
}

/// Places taken at `now` are held a window.
fn rules(now: i64) -> BudgetRules {
    BudgetRules {
        limit: LIMIT,
        window_seconds: WINDOW,
        until: now + WINDOW,
    }
}

async fn take_all(
    store: &Arc<DynamoStore>,
    who: &[usize],
    attempt: u32,
    now: i64,
) -> Vec<BudgetTake> {
    join_all(who.iter().map(|&i| {
        let store = store.clone();
        async move {
            store
                .take_budget(sender(), &claim(i, attempt), &rules(now), now)
                .await
                .expect("a take answers under faults")
        }
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takes_never_count_more_than_the_limit_under_faults() {
    let t = TestStack::start_under(Faults::harsh(), Policy::from_template(), |_, _| {}).await;
    // As the sender will take it: with its role, through the faults.
    let store = Arc::new(DynamoStore::new(
        t.dynamodb_as("sender").await,
        &t.stack.names.table,
    ));
    let now = 1_000_000;
    let everyone: Vec<usize> = (0..40).collect();
    let first = take_all(&store, &everyone, 1, now).await;
    // A lost answer can make a sender's own take read back as "already
    // counted": either way the recipient holds a place.
    let spent = BudgetTake::Exhausted {
        until: now + WINDOW,
    };
    let holding: Vec<usize> = everyone
        .iter()
        .copied()
        .filter(|&i| first[i] != spent)
        .collect();
    assert_eq!(holding.len(), LIMIT as usize, "{first:?}");
    assert!(
        first
            .iter()
            .all(|r| matches!(r, BudgetTake::Counted | BudgetTake::AlreadyCounted) || *r == spent),
        "{first:?}"
    );
    let report = t.aws.summary();
    assert!(
        report
            .injected
            .get("transaction_conflict")
            .copied()
            .unwrap_or(0)
            > 0,
        "the fault layer cancelled some takes: {report:?}"
    );

    // Their records delivered again: each holds its place already.
    let again = take_all(&store, &holding, 1, now).await;
    assert!(
        again.iter().all(|r| *r == BudgetTake::AlreadyCounted),
        "{again:?}"
    );
    // A later attempt (a retry) messages them again: it needs a place of
    // its own, and none is free.
    let later = take_all(&store, &holding[..2], 2, now + WINDOW - 1).await;
    assert!(later.iter().all(|r| *r == spent), "{later:?}");

    // Two not sent after all give their places back (once): two others
    // take them, and only two.
    for &i in &holding[..2] {
        assert!(
            store
                .release_budget(sender(), &claim(i, 1), now)
                .await
                .unwrap()
        );
        assert!(
            !store
                .release_budget(sender(), &claim(i, 1), now)
                .await
                .unwrap()
        );
    }
    let waiting: Vec<usize> = everyone
        .iter()
        .copied()
        .filter(|i| !holding.contains(i))
        .collect();
    let refill = take_all(&store, &waiting[..5], 1, now + 1).await;
    let counted = refill.iter().filter(|r| **r != spent).count();
    assert_eq!(counted, 2, "{refill:?}");

    // Once the window has passed, ten more are counted, and only ten.
    let second = take_all(&store, &waiting[5..], 1, now + WINDOW + 1).await;
    let counted = second
        .iter()
        .filter(|r| !matches!(r, BudgetTake::Exhausted { .. }))
        .count();
    assert_eq!(counted, LIMIT as usize, "{second:?}");
    // As the profile function reads it for organizers.
    let profile = DynamoStore::new(t.dynamodb_as("profile").await, &t.stack.names.table);
    let state = profile.budget_state(sender()).await.unwrap();
    assert_eq!(state.held(now + WINDOW + 1), LIMIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_take_places_together_and_never_more_than_the_limit_under_faults() {
    let t = TestStack::start_under(Faults::harsh(), Policy::from_template(), |_, _| {}).await;
    // Two sender instances (each its own store), as on Lambda.
    let instances: Vec<Arc<DynamoStore>> = vec![
        Arc::new(DynamoStore::new(
            t.dynamodb_as("sender").await,
            &t.stack.names.table,
        )),
        Arc::new(DynamoStore::new(
            t.dynamodb_as("sender").await,
            &t.stack.names.table,
        )),
    ];
    let now = 2_000_000;
    // Eight batches of six, overlapping; the first also names one guest
    // twice, once in the form WhatsApp reports for Brazil.
    let batches: Vec<Vec<BudgetClaim>> = (0..8)
        .map(|b| {
            (0..6)
                .map(|i| claim((b * 4 + i) % 30, b as u32 + 1))
                .collect()
        })
        .collect();
    let mut first = batches[0].clone();
    for (phone, holder) in [("+5511999996000", "x#1"), ("+551199996000", "y#1")] {
        first.push(BudgetClaim {
            recipient: PhoneNumber::parse(phone).unwrap(),
            holder: holder.into(),
        });
    }
    let mut all = vec![first];
    all.extend(batches[1..].iter().cloned());
    let answers = join_all(all.iter().enumerate().map(|(b, batch)| {
        let store = instances[b % 2].clone();
        async move {
            store
                .take_budgets(sender(), batch, &rules(now), now)
                .await
                .expect("a batch take answers under faults")
        }
    }))
    .await;
    // Every message that may be sent holds one of the ten places (a guest
    // in two batches is two messages, each counted; twice in one batch,
    // one message).
    let mut holding = 0;
    for (batch, takes) in all.iter().zip(&answers) {
        assert_eq!(takes.len(), batch.len());
        let sent: std::collections::BTreeSet<String> = batch
            .iter()
            .zip(takes)
            .filter(|(_, take)| !matches!(take, BudgetTake::Exhausted { .. }))
            .map(|(claim, _)| claim.recipient.whatsapp_identity())
            .collect();
        holding += sent.len();
    }
    assert_eq!(holding, LIMIT as usize, "{answers:?}");
    // The same guest twice in a batch is counted once, with the same answer.
    let twice = &answers[0][6..];
    assert_eq!(
        matches!(twice[0], BudgetTake::Exhausted { .. }),
        matches!(twice[1], BudgetTake::Exhausted { .. }),
        "{twice:?}"
    );
    // As the status function reads it for organizers.
    let status = DynamoStore::new(t.dynamodb_as("status").await, &t.stack.names.table);
    let state = status.budget_state(sender()).await.unwrap();
    assert_eq!(state.held(now), LIMIT);
    assert_eq!(state.free_now(LIMIT, WINDOW, now), 0);
}
