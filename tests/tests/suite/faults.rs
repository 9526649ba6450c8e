//! The product's promises under the faults AWS and Twilio produce (the fault
//! layer, `e2e::faults`): one message per guest, exact counters, nothing
//! stranded, every job finished.

use e2e::faults::{Faults, Policy};
use e2e::{TestStack, assert_counts_exact, guests, quick_reconciliation};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// Each guest got exactly one message; answers how many guests got one.
fn one_message_per_guest(t: &TestStack) -> usize {
    let mut per_guest: HashMap<String, usize> = HashMap::new();
    for m in t.sim_messages() {
        *per_guest.entry(m.params["To"].clone()).or_default() += 1;
    }
    let twice: Vec<_> = per_guest.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "guests messaged more than once: {twice:?}"
    );
    per_guest.len()
}

/// The job's counters against the invitations themselves, once a last
/// callback on its way has landed: the job read before and after the
/// invitations must agree, so a change between the reads is not taken for
/// a miscount.
async fn counters_match_invitations(t: &TestStack, event_id: &str, job_id: &str) {
    let start = std::time::Instant::now();
    loop {
        let before = e2e::job_counts(&t.job(job_id).await);
        let counted = e2e::status_counts(&t.all_invitations(event_id).await);
        let after = e2e::job_counts(&t.job(job_id).await);
        if before == after || start.elapsed() > Duration::from_secs(60) {
            assert_eq!(after, counted, "job counters against the invitations");
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_of_600_under_aws_faults_sends_each_once_and_counts_exactly() {
    let t = TestStack::start_under(Faults::harsh(), Policy::from_template(), |_, options| {
        quick_reconciliation(options, Duration::from_secs(60), Duration::from_secs(30));
    })
    .await;
    // Three chunks admitted behind the answer (more than 250 guests).
    const GUESTS: usize = 600;
    t.create_event("gala").await;
    let body = t.send_bulk("gala", guests(GUESTS)).await;
    assert_eq!(body["accepted"], GUESTS, "{body}");
    // Answered first; its chunks are admitted behind the answer, under the
    // same faults (a chunk tried again counts its guests once).
    assert_eq!(body["admitting"], true, "{body}");
    let job_id = body["job_id"].as_str().unwrap();
    // Every guest reached. A read receipt whose recording failed through
    // every retry stays lost (Twilio does not send a callback twice, and
    // delivered is settled), so a few may end delivered.
    let reached = |j: &Value| {
        j["counts"]["read"].as_u64().unwrap_or(0) + j["counts"]["delivered"].as_u64().unwrap_or(0)
    };
    let job = t
        .wait_for_job(job_id, Duration::from_secs(600), |j| {
            j["done"] == true && reached(j) == GUESTS as u64
        })
        .await;
    assert!(
        job["counts"]["read"].as_u64().unwrap_or(0) >= GUESTS as u64 - 6,
        "nearly every read receipt recorded: {job}"
    );
    assert_counts_exact(&job);
    assert_eq!(job["total"], GUESTS, "{job}");
    assert_eq!(job["admission"]["state"], "admitted", "{job}");
    assert_eq!(one_message_per_guest(&t), GUESTS);
    counters_match_invitations(&t, "gala", job_id).await;

    let aws = t.aws.summary();
    for fault in [
        "transaction_conflict",
        "throttling",
        "unprocessed_items",
        "failed_batch_entries",
        "lost_answer",
    ] {
        assert!(
            aws.injected.get(fault).copied().unwrap_or(0) > 0,
            "{fault} was injected: {:?}",
            aws.injected
        );
    }
    let (item, writes) = aws.hottest_item.expect("items were written");
    assert!(
        writes <= 10,
        "{item} was written {writes} times in one second"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_sqs_did_not_take_are_found_and_sent() {
    // Every batch send keeps one entry and fails the rest, so most
    // messages never reach the queue on the first try, nor after retries.
    let faults = Faults {
        failed_batch_entries: 1.0,
        ..Faults::none()
    };
    let t = TestStack::start_under(faults, Policy::from_template(), |_, options| {
        quick_reconciliation(options, Duration::from_secs(3), Duration::from_secs(30));
    })
    .await;
    t.create_event("gala").await;
    let body = t.send_bulk("gala", guests(40)).await;
    let job_id = body["job_id"].as_str().unwrap();
    let job = t
        .wait_for_job(job_id, Duration::from_secs(120), |j| {
            j["counts"]["read"] == 40
        })
        .await;
    assert_eq!(job["done"], true);
    assert_eq!(one_message_per_guest(&t), 40);
    assert!(t.aws.summary().injected["failed_batch_entries"] > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_a_large_send_sqs_did_not_take_are_found_and_admitted() {
    // Every batch send keeps one entry and fails the rest: of a large
    // send's two chunk messages, one never reaches the admissions queue.
    let faults = Faults {
        failed_batch_entries: 1.0,
        ..Faults::none()
    };
    let t = TestStack::start_under(faults, Policy::from_template(), |_, options| {
        quick_reconciliation(options, Duration::from_secs(3), Duration::from_secs(30));
    })
    .await;
    t.create_event("gala").await;
    // A Marketing template reaches no US number: admitted and skipped,
    // nothing sent, so only the admissions queue is at stake.
    t.create_marketing_template("promo").await;
    let n = shared::domain::admission::INLINE_GUESTS + 1;
    let us = e2e::us_guests(n);
    let (status, body) = t
        .request(
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": "gala", "template_id": "promo", "guests": us})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let job = t
        .wait_for_job(
            body["job_id"].as_str().unwrap(),
            Duration::from_secs(60),
            |j| j["admission"]["state"] == "admitted",
        )
        .await;
    assert_eq!(job["done"], true, "{job}");
    assert_eq!(
        (job["total"].as_u64(), job["counts"]["skipped"].as_u64()),
        (Some(n as u64), Some(n as u64)),
        "{job}"
    );
    assert_counts_exact(&job);
    assert!(t.sim_messages().is_empty());
    assert!(t.aws.summary().injected["failed_batch_entries"] > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_that_never_come_are_settled_from_twilios_record() {
    let t = TestStack::start_with(|sim, options| {
        sim.knobs.lost_callback_ratio = 1.0;
        quick_reconciliation(options, Duration::from_secs(60), Duration::from_secs(2));
    })
    .await;
    t.create_event("gala").await;
    let body = t.send_bulk("gala", guests(5)).await;
    let job_id = body["job_id"].as_str().unwrap();
    let job = t
        .wait_for_job(job_id, Duration::from_secs(60), |j| {
            j["counts"]["read"] == 5
        })
        .await;
    assert_eq!(job["done"], true);
    assert_eq!(one_message_per_guest(&t), 5);
    assert!(
        t.sim_messages().iter().all(|m| m.callbacks.is_empty()),
        "no callback reached the webhook"
    );
    for inv in t.all_invitations("gala").await {
        assert!(
            inv["message_sid"]
                .as_str()
                .is_some_and(|s| s.starts_with("SM")),
            "{inv}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_enqueues_what_it_moved_even_when_another_move_fails() {
    const A: &str = "+5511999990001";
    const B: &str = "+5511999990002";
    let t = TestStack::start_with(|sim, _| {
        sim.knobs.fail_numbers.insert(A.into(), 63024);
        sim.knobs.fail_numbers.insert(B.into(), 63024);
    })
    .await;
    t.create_event("gala").await;
    let body = t
        .send_bulk(
            "gala",
            vec![e2e::guest("a", "Ana", A), e2e::guest("b", "Bia", B)],
        )
        .await;
    let job_id = body["job_id"].as_str().unwrap();
    t.wait_for_job(job_id, Duration::from_secs(30), |j| {
        j["counts"]["failed"] == 2
    })
    .await;
    t.sim
        .state()
        .patch_knobs(serde_json::json!({"fail_numbers": {}}))
        .unwrap();
    let invitations = t.all_invitations("gala").await;
    let id_of = |guest: &str| {
        invitations.iter().find(|i| i["guest_id"] == guest).unwrap()["invitation_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Ana's move to a new attempt fails; Bia's goes through.
    t.aws.set_outage(Some(e2e::faults::Outage {
        action: "dynamodb:TransactWriteItems",
        item_prefix: format!("INV#{}", id_of("a")),
    }));
    let (status, answer) = t.retry_failed(job_id).await;
    assert_eq!(status, 500, "{answer}");
    t.aws.set_outage(None);
    // Bia's new attempt was enqueued before the error was answered: it goes
    // out now, not when reconciliation would find it.
    t.wait_for_invitation("gala", &id_of("b"), Duration::from_secs(15), |i| {
        i["status"] == "read" && i["attempt"] == 2
    })
    .await;
}
