//! `Idempotency-Key` under failure: a failed or dead first try, a large
//! answer, two tries at once. The client's retry with the same key always
//! ends in one job, each guest messaged once.

use e2e::faults::Outage;
use e2e::{TestStack, guest, guests};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn recipients(t: &TestStack) -> (usize, usize) {
    let messages = t.sim_messages();
    let distinct: HashSet<String> = messages.iter().map(|m| m.params["To"].clone()).collect();
    (messages.len(), distinct.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_failed_part_way_is_finished_by_its_retry_with_the_same_key() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let body = json!({"event_id": "gala", "guests": guests(30)});
    // The invitations are written, then the job item cannot be.
    t.aws.set_outage(Some(Outage {
        action: "dynamodb:PutItem",
        item_prefix: "JOB#".into(),
    }));
    let (status, first) = t.send_bulk_with_key("order-1", &body).await;
    assert_eq!(status, 500, "{first}");
    t.aws.set_outage(None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        t.sim_messages().len(),
        0,
        "nothing went out for the failed try"
    );

    let (status, answer) = t.send_bulk_with_key("order-1", &body).await;
    assert_eq!(status, 202, "the key was released: {answer}");
    let job_id = answer["job_id"].as_str().unwrap();
    t.wait_for_job(job_id, WAIT, |j| j["counts"]["read"] == 30)
        .await;
    assert_eq!(
        t.all_invitations("gala").await.len(),
        30,
        "rewritten, not added"
    );
    assert_eq!(recipients(&t), (30, 30), "each guest messaged once");
    let (status, again) = t.send_bulk_with_key("order-1", &body).await;
    assert_eq!((status, &again), (202, &answer), "a repeat gets the answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_identical_requests_at_once_make_one_job() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let body = json!({"event_id": "gala", "guests": guests(40)});
    let (a, b) = tokio::join!(
        t.send_bulk_with_key("order-2", &body),
        t.send_bulk_with_key("order-2", &body)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert!(
        statuses == [202, 202] || statuses == [202, 409],
        "{a:?} {b:?}"
    );
    for (status, answer) in [&a, &b] {
        if *status == 409 {
            assert_eq!(answer["error"]["code"], "in_progress", "{answer}");
        }
    }
    let job_id = [&a, &b].iter().find(|(s, _)| *s == 202).unwrap().1["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.wait_for_job(&job_id, WAIT, |j| j["counts"]["read"] == 40)
        .await;
    assert_eq!(t.all_invitations("gala").await.len(), 40);
    assert_eq!(recipients(&t), (40, 40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_larger_than_an_item_is_kept_and_given_again() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    // 4,000 rejected guests: their reasons pass DynamoDB's 400 KB item limit.
    let mut list: Vec<Value> = (0..4000)
        .map(|i| guest(&format!("bad{i}"), &format!("Guest {i}"), "12345"))
        .collect();
    list.push(guest("ok", "Ana", "+5511999990001"));
    let body = json!({"event_id": "gala", "guests": list});
    let (status, answer) = t.send_bulk_with_key("order-3", &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["rejected"].as_array().unwrap().len(), 4000);
    assert!(answer.to_string().len() > 400_000, "the answer is large");
    let (status, again) = t.send_bulk_with_key("order-3", &body).await;
    assert_eq!(status, 202);
    assert_eq!(again, answer);
    t.wait_for_job(answer["job_id"].as_str().unwrap(), WAIT, |j| {
        j["counts"]["read"] == 1
    })
    .await;
    assert_eq!(recipients(&t), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_send_whose_first_try_failed_is_admitted_once_and_a_second_send_invites_nobody_again()
 {
    // No sender: a queued invitation holds its guest as a sent one does,
    // and admission, not sending, is what this is about.
    let t = TestStack::start_with(|_, options| options.max_concurrency = 0).await;
    t.create_event("gala").await;
    let n = shared::domain::admission::INLINE_GUESTS + 10;
    let body = json!({"event_id": "gala", "guests": guests(n)});
    // The chunks are written, then the job item cannot be.
    t.aws.set_outage(Some(Outage {
        action: "dynamodb:PutItem",
        item_prefix: "JOB#".into(),
    }));
    let (status, first) = t.send_bulk_with_key("large-1", &body).await;
    assert_eq!(status, 500, "{first}");
    t.aws.set_outage(None);

    let (status, answer) = t.send_bulk_with_key("large-1", &body).await;
    assert_eq!(status, 202, "the key was released: {answer}");
    assert_eq!(
        (answer["admitting"].as_bool(), answer["accepted"].as_u64()),
        (Some(true), Some(n as u64))
    );
    let job_id = answer["job_id"].as_str().unwrap();
    let (status, again) = t.send_bulk_with_key("large-1", &body).await;
    assert_eq!((status, &again), (202, &answer), "a repeat gets the answer");
    let job = t
        .wait_for_job(job_id, Duration::from_secs(240), |j| {
            j["admission"]["state"] == "admitted"
        })
        .await;
    assert_eq!(job["counts"]["queued"], n as u64, "{job}");
    assert_eq!(job["total"], n as u64, "{job}");
    assert_eq!(job["admission"]["left_out"], 0, "{job}");

    // The same guests again, as another request: each is held by their
    // invitation, so none is invited twice.
    let (status, other) = t.send_bulk_with_key("large-2", &body).await;
    assert_eq!(status, 202, "{other}");
    let other = t
        .wait_for_job(other["job_id"].as_str().unwrap(), WAIT, |j| {
            j["admission"]["state"] == "admitted"
        })
        .await;
    assert_eq!(
        (
            other["total"].as_u64(),
            other["admission"]["left_out"].as_u64()
        ),
        (Some(0), Some(n as u64)),
        "{other}"
    );
    assert_eq!(other["done"], true, "{other}");
    assert_eq!(t.all_invitations("gala").await.len(), n);
    assert_eq!(
        t.queue_depth(&t.stack.queue_url).await,
        n as u64,
        "one message per guest"
    );
}
