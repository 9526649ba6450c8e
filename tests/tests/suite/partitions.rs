//! No DynamoDB partition past its share: a send's writes, counted by the
//! fault layer per partition key of the table and of every index (a
//! transactional write 2 units, an index write that moves the item 2),
//! stay within 2.5 write units per message sent, so 400 messages a second
//! stay under the 1,000 a second one partition takes; and no item is in
//! more than 0.025 transactions per message (10 a second at 400), past
//! which DynamoDB's transactions on it conflict.

use e2e::{TestStack, guests};
use std::time::Duration;

// Enough that an invitation's own five or so transactions stay under the
// bound per message: the bound is for items messages share.
const GUESTS: usize = 240;
const MOST_UNITS_PER_MESSAGE: f64 = 2.5;
const MOST_TRANSACTIONS_PER_MESSAGE: f64 = 0.025;

#[tokio::test]
async fn a_send_writes_no_partition_past_its_share_and_no_item_past_its_transactions() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    t.aws.measure_partitions();
    let body = t.send_bulk("gala", guests(GUESTS)).await;
    let job_id = body["job_id"].as_str().unwrap().to_owned();
    let job = t
        .wait_for_job(&job_id, Duration::from_secs(240), |j| {
            j["counts"]["read"] == GUESTS
        })
        .await;
    e2e::assert_counts_exact(&job);
    // The listing and the changes a page follows read what was written.
    let invitations = t.all_invitations("gala").await;
    assert_eq!(invitations.len(), GUESTS);
    let messages = t.sim_messages().len();
    assert_eq!(messages, GUESTS, "one message a guest");

    let hottest = t.aws.hottest_partitions(5, messages).unwrap();
    println!("hottest partitions, write units per message: {hottest:#?}");
    let (partition, units) = &hottest.partitions[0];
    assert!(
        *units <= MOST_UNITS_PER_MESSAGE,
        "{partition} took {units:.2} write units a message: {hottest:#?}"
    );
    let (item, transactions) = &hottest.items_in_transactions[0];
    assert!(
        *transactions <= MOST_TRANSACTIONS_PER_MESSAGE,
        "{item} was in {transactions:.3} transactions a message: {hottest:#?}"
    );
}
