//! The daily budget (WhatsApp's limit on unique recipients in a moving
//! window) over the real SDK against moto, under the fault layer's
//! conflicts, throttling and lost answers: concurrent senders never count
//! more recipients than the limit, and the window frees places in order.

use e2e::TestStack;
use e2e::faults::{Faults, Policy};
use futures::future::join_all;
use shared::adapters::dynamo::DynamoStore;
use shared::domain::PhoneNumber;
use shared::ports::{BudgetStore, BudgetTake};
use std::sync::Arc;

const LIMIT: u32 = 10;
const WINDOW: i64 = 30;

fn sender() -> &'static str {
    shared::domain::budget::STACK_SENDER
}

fn recipient(i: usize) -> PhoneNumber {
    PhoneNumber::parse(&format!("+55119999960{i:02}")).unwrap()
}

async fn take_all(store: &Arc<DynamoStore>, who: &[usize], now: i64) -> Vec<BudgetTake> {
    join_all(who.iter().map(|&i| {
        let store = store.clone();
        async move {
            store
                .take_budget(sender(), &recipient(i), LIMIT, WINDOW, now)
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
    let first = take_all(&store, &everyone, now).await;
    // A lost answer can make a sender's own take read back as "already
    // counted": either way the recipient holds a place.
    let holding: Vec<usize> = everyone
        .iter()
        .copied()
        .filter(|&i| {
            first[i]
                != BudgetTake::Exhausted {
                    until: now + WINDOW,
                }
        })
        .collect();
    assert_eq!(holding.len(), LIMIT as usize, "{first:?}");
    assert!(
        first.iter().all(
            |r| matches!(r, BudgetTake::Counted | BudgetTake::AlreadyCounted)
                || *r
                    == BudgetTake::Exhausted {
                        until: now + WINDOW
                    }
        ),
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

    // At the same instant (another batch naming them) they count once.
    let again = take_all(&store, &holding, now).await;
    assert!(
        again.iter().all(|r| *r == BudgetTake::AlreadyCounted),
        "{again:?}"
    );
    // Later in the window a second message counts a guest on past their
    // first place: it needs a place of its own, and none is free.
    let later = take_all(&store, &holding[..2], now + WINDOW - 1).await;
    assert!(
        later.iter().all(|r| *r
            == BudgetTake::Exhausted {
                until: now + WINDOW
            }),
        "{later:?}"
    );

    // Once the window has passed, the next ten are counted, and only ten.
    let waiting: Vec<usize> = everyone
        .iter()
        .copied()
        .filter(|i| !holding.contains(i))
        .collect();
    let second = take_all(&store, &waiting, now + WINDOW).await;
    let counted = second
        .iter()
        .filter(|r| !matches!(r, BudgetTake::Exhausted { .. }))
        .count();
    assert_eq!(counted, LIMIT as usize, "{second:?}");
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
    let batches: Vec<Vec<PhoneNumber>> = (0..8)
        .map(|b| (0..6).map(|i| recipient((b * 4 + i) % 30)).collect())
        .collect();
    let mut first = batches[0].clone();
    first.push(PhoneNumber::parse("+5511999996000").unwrap());
    first.push(PhoneNumber::parse("+551199996000").unwrap());
    let mut all = vec![first];
    all.extend(batches[1..].iter().cloned());
    let answers = join_all(all.iter().enumerate().map(|(b, batch)| {
        let store = instances[b % 2].clone();
        async move {
            store
                .take_budgets(sender(), batch, LIMIT, WINDOW, now)
                .await
                .expect("a batch take answers under faults")
        }
    }))
    .await;
    // Everyone who may be messaged holds one of the ten places.
    let mut holding = std::collections::BTreeSet::new();
    for (batch, takes) in all.iter().zip(&answers) {
        assert_eq!(takes.len(), batch.len());
        for (phone, take) in batch.iter().zip(takes) {
            if !matches!(take, BudgetTake::Exhausted { .. }) {
                holding.insert(phone.whatsapp_identity());
            }
        }
    }
    assert_eq!(holding.len(), LIMIT as usize, "{answers:?}");
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
    assert_eq!(state.held(LIMIT, now), LIMIT);
}
