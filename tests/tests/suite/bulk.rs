//! Bulk sending, idempotency, retry, and each failure mode, end to end.

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsMessage;
use e2e::{TestStack, assert_counts_exact, guest, guests, sqs_batch, sqs_record};
use serde_json::json;
use shared::ports::{Messenger, OutboundMessage, ProviderError};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn finished(job: &serde_json::Value) -> bool {
    job["done"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_sends_each_guest_once_and_counts_exactly() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let mut list = guests(25);
    list.insert(3, guest("bad-phone", "X", "12345"));
    list.insert(7, json!({"guest_id": "no-name", "phone": "+5511988880000"}));
    list.push(guest("g0", "Guest 0 again", "+5511900000000")); // same guest twice
    list.push(guest("other-id", "Same phone", "+5511900000001")); // same phone as g1
    let body = t.send_bulk("gala", list).await;
    assert_eq!(body["accepted"], 25, "{body}");
    let rejected: Vec<(u64, &str)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(rejected, [(3, "guests[3].phone"), (7, "guests[7].name")]);
    assert_eq!(body["duplicates"].as_array().unwrap().len(), 2);

    let job_id = body["job_id"].as_str().unwrap();
    let job = t
        .wait_for_job(job_id, WAIT, |j| j["counts"]["read"] == 25)
        .await;
    assert!(finished(&job));
    assert_counts_exact(&job);
    let messages = t.sim_messages();
    assert_eq!(messages.len(), 25, "one message per accepted guest");
    let recipients: HashSet<&str> = messages.iter().map(|m| m.params["To"].as_str()).collect();
    assert_eq!(recipients.len(), 25, "no guest messaged twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_returns_the_first_answer_and_queues_nothing() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let request = json!({"event_id": "gala", "guests": guests(5)});
    let (status, first) = t.send_bulk_with_key("order-42", &request).await;
    assert_eq!(status, 202, "{first}");
    let job_id = first["job_id"].as_str().unwrap().to_owned();
    t.wait_for_job(&job_id, WAIT, finished).await;

    let (status, again) = t.send_bulk_with_key("order-42", &request).await;
    assert_eq!((status, again), (202, first));
    let different = json!({"event_id": "gala", "guests": guests(6)});
    let (status, _) = t.send_bulk_with_key("order-42", &different).await;
    assert_eq!(status, 409, "same key, different request");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.sim_messages().len(), 5, "the repeat sent nothing");
    assert_eq!(
        t.invitations("gala").await.len(),
        5,
        "the repeat wrote nothing"
    );
}

/// The same SQS message delivered twice sends one WhatsApp message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_is_not_sent_twice() {
    let t = TestStack::start_with(|_, options| options.max_concurrency = 0).await; // no poller: the test is the event source
    t.create_event("gala").await;
    let id = t
        .send_invitation("gala", guest("g1", "Ana", "+5511999990000"))
        .await;
    let deps = t.sender_deps(Arc::new(t.twilio_client()));
    let record = sqs_record(&format!(r#"{{"invitation_id":"{id}","attempt":1}}"#), 1);
    let first = sender::handle(&deps, sqs_batch(vec![record.clone()])).await;
    assert!(first.batch_item_failures.is_empty());
    let mut again = record;
    again
        .attributes
        .insert("ApproximateReceiveCount".into(), "2".into());
    let second = sender::handle(&deps, sqs_batch(vec![again])).await;
    assert!(
        second.batch_item_failures.is_empty(),
        "a redelivery is acknowledged, not retried"
    );
    t.wait_for_invitation("gala", &id, WAIT, |i| i["status"] == "read")
        .await;
    assert_eq!(t.sim_messages().len(), 1);
}

/// Sends through Twilio, then dies before the sender can record the SID.
struct CrashAfterSend(shared::adapters::twilio::TwilioClient);

#[async_trait]
impl Messenger for CrashAfterSend {
    async fn send(&self, message: &OutboundMessage) -> Result<String, ProviderError> {
        self.0.send(message).await?;
        panic!("process crashed after Twilio accepted the message");
    }

    async fn sent_to(
        &self,
        to: &shared::domain::PhoneNumber,
        since: &str,
    ) -> Result<Vec<shared::ports::ProviderMessage>, ProviderError> {
        self.0.sent_to(to, since).await
    }

    async fn fetch(
        &self,
        sid: &str,
    ) -> Result<Option<shared::ports::ProviderMessage>, ProviderError> {
        self.0.fetch(sid).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_twilio_accepted_never_sends_again() {
    let t = TestStack::start_with(|sim, options| {
        options.max_concurrency = 0;
        // Callbacks late enough that the redelivery comes first.
        sim.knobs.callback_delay_ms = 1500;
    })
    .await;
    t.create_event("gala").await;
    let id = t
        .send_invitation("gala", guest("g1", "Ana", "+5511999990000"))
        .await;
    let body = format!(r#"{{"invitation_id":"{id}","attempt":1}}"#);
    let crashing = Arc::new(t.sender_deps(Arc::new(CrashAfterSend(t.twilio_client()))));
    let rec = sqs_record(&body, 1);
    let crashed =
        tokio::spawn(async move { sender::handle(&crashing, sqs_batch(vec![rec])).await }).await;
    assert!(crashed.is_err(), "the first sender died");
    assert_eq!(t.sim_messages().len(), 1);

    // SQS redelivers after the visibility timeout; a healthy sender finds it mid-send.
    let healthy = t.sender_deps(Arc::new(t.twilio_client()));
    let response = sender::handle(&healthy, sqs_batch(vec![sqs_record(&body, 2)])).await;
    assert!(response.batch_item_failures.is_empty());
    let flagged = t.invitation("gala", &id).await;
    assert_eq!(
        (flagged["status"].as_str(), flagged["flag"].as_str()),
        (Some("sending"), Some("send_unconfirmed")),
        "{flagged}"
    );
    assert_eq!(t.sim_messages().len(), 1, "no automatic second send");

    // Twilio's callbacks settle it.
    let inv = t
        .wait_for_invitation("gala", &id, WAIT, |i| i["status"] == "read")
        .await;
    assert_eq!(inv["message_sid"], t.sim_messages()[0].sid.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_retried_then_sent_once() {
    // Twilio answers 429 (20429) past one message a second: nothing was
    // processed, so the sender backs off and tries again.
    let t = TestStack::start_with(|sim, _| sim.knobs.rate_limit_per_second = 1).await;
    t.create_event("gala").await;
    let job = t.send_bulk("gala", guests(4)).await;
    let job_id = job["job_id"].as_str().unwrap();
    let done = t
        .wait_for_job(job_id, WAIT, |j| j["counts"]["read"] == 4)
        .await;
    assert_counts_exact(&done);
    let messages = t.sim_messages();
    assert_eq!(messages.len(), 4, "each guest sent exactly once");
    let stats = t.sim.state().stats();
    assert!(stats.rate_limited >= 1, "{stats:?}");
    let recipients: HashSet<&str> = messages.iter().map(|m| m.params["To"].as_str()).collect();
    assert_eq!(recipients.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_answer_is_lost_is_never_repeated_and_its_callbacks_settle_it() {
    // Twilio creates every message, but its answer never reaches the sender
    // (a 500 after the work was done, as when the answer is lost).
    let t = TestStack::start_with(|sim, _| {
        sim.knobs.lost_answer_ratio = 1.0;
        sim.knobs.timeout_hang_ms = 0;
        sim.knobs.callback_delay_ms = 300;
    })
    .await;
    t.create_event("gala").await;
    let job = t.send_bulk("gala", guests(3)).await;
    let job_id = job["job_id"].as_str().unwrap();
    let done = t
        .wait_for_job(job_id, WAIT, |j| j["counts"]["read"] == 3)
        .await;
    assert_counts_exact(&done);
    let messages = t.sim_messages();
    assert_eq!(messages.len(), 3, "one message per guest: {messages:?}");
    for inv in t.invitations("gala").await {
        let sid = inv["message_sid"].as_str().unwrap();
        assert!(messages.iter().any(|m| m.sid == sid), "{inv}");
        assert!(
            inv["flag"].is_null(),
            "the callback answered the question: {inv}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_flags_the_send_instead_of_repeating_it() {
    // A 503 may have been processed: the invitation stays claimed and
    // flagged, nothing is resent automatically, and the organizer's retry
    // sends it once.
    let t = TestStack::start_with(|sim, _| sim.knobs.error_5xx_ratio = 1.0).await;
    t.create_event("gala").await;
    let id = t
        .send_invitation("gala", guest("g1", "Ana", "+5511999990000"))
        .await;
    let flagged = t
        .wait_for_invitation("gala", &id, WAIT, |i| i["flag"] == "send_unconfirmed")
        .await;
    assert_eq!(flagged["status"], "sending", "{flagged}");
    // Long enough for any redelivery or retry to have happened.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = t.sim.state().stats();
    assert_eq!(stats.server_errors, 1, "tried once, not again: {stats:?}");
    t.sim
        .state()
        .patch_knobs(json!({"error_5xx_ratio": 0.0}))
        .unwrap();
    let (status, body) = t
        .request("POST", &format!("/api/whatsapp/retry/{id}"), None)
        .await;
    assert_eq!(status, 202, "{body}");
    let read = t
        .wait_for_invitation("gala", &id, WAIT, |i| i["status"] == "read")
        .await;
    assert_eq!(read["attempt"], 2, "{read}");
    assert_eq!(t.sim_messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_fail_with_their_code_and_retry_starts_a_new_attempt() {
    let t = TestStack::start_with(|sim, _| {
        sim.knobs
            .fail_numbers
            .insert("+5511900000001".into(), 21211);
        sim.knobs
            .undelivered_numbers
            .insert("+5511900000002".into(), 63024);
    })
    .await;
    t.create_event("gala").await;
    let job = t.send_bulk("gala", guests(4)).await;
    let job_id = job["job_id"].as_str().unwrap().to_owned();
    // "Done" can precede the last read receipt (delivered is final enough).
    let done = t
        .wait_for_job(&job_id, WAIT, |j| finished(j) && j["counts"]["read"] == 2)
        .await;
    assert_eq!(
        (
            done["counts"]["read"].as_i64(),
            done["counts"]["failed"].as_i64(),
            done["counts"]["undelivered"].as_i64()
        ),
        (Some(2), Some(1), Some(1)),
        "{done}"
    );
    assert_counts_exact(&done);
    let invs = t.invitations("gala").await;
    let failed = invs.iter().find(|i| i["guest_id"] == "g1").unwrap();
    assert_eq!(
        (failed["status"].as_str(), failed["error_code"].as_str()),
        (Some("failed"), Some("21211")),
        "{failed}"
    );
    assert!(
        failed["error_message"]
            .as_str()
            .unwrap()
            .contains("not valid"),
        "reason in words: {failed}"
    );
    assert_eq!(
        t.sim.state().stats().rejected,
        1,
        "a permanent error is not retried"
    );
    let undelivered = invs.iter().find(|i| i["guest_id"] == "g2").unwrap();
    assert_eq!(undelivered["error_code"], "63024");

    // Retrying a read invitation is refused; a failed one becomes attempt 2.
    let read = invs.iter().find(|i| i["guest_id"] == "g0").unwrap();
    let (status, _) = t.retry(&read["invitation_id"]).await;
    assert_eq!(status, 409);
    t.sim
        .state()
        .patch_knobs(json!({"fail_numbers": {}, "undelivered_numbers": {}}))
        .unwrap();
    let failed_id = failed["invitation_id"].as_str().unwrap();
    let (status, body) = t
        .request("POST", &format!("/api/whatsapp/retry/{failed_id}"), None)
        .await;
    assert_eq!((status, body["attempt"].as_u64()), (202, Some(2)), "{body}");
    // And "retry all failed" takes the undelivered one.
    let (status, body) = t.retry_failed(&job_id).await;
    assert_eq!((status, body["retried"].as_u64()), (202, Some(1)), "{body}");
    let done = t
        .wait_for_job(&job_id, WAIT, |j| j["counts"]["read"] == 4)
        .await;
    assert_counts_exact(&done);
    let retried = t.invitation("gala", failed_id).await;
    assert_eq!(
        (retried["attempt"].as_u64(), retried["error_code"].as_str()),
        (Some(2), None),
        "{retried}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_and_duplicated_callbacks_end_right() {
    let t = TestStack::start_with(|sim, _| {
        sim.knobs.reorder_callbacks = true;
        sim.knobs.duplicate_callbacks = true;
    })
    .await;
    t.create_event("gala").await;
    let job = t.send_bulk("gala", guests(10)).await;
    let job_id = job["job_id"].as_str().unwrap();
    let done = t
        .wait_for_job(job_id, WAIT, |j| j["counts"]["read"] == 10)
        .await;
    // Let the last duplicates land, then check nothing moved.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let done_later = t.job(job_id).await;
    assert_eq!(done["counts"], done_later["counts"]);
    assert_counts_exact(&done_later);
    for inv in t.invitations("gala").await {
        assert_eq!(inv["status"], "read", "{inv}");
        assert!(
            inv["timestamps"]["delivered"].is_string(),
            "late delivered time kept: {inv}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_reaches_the_dead_letter_queue_and_the_batch_goes_on() {
    let t = TestStack::start_with(|_, options| options.max_concurrency = 0).await;
    t.create_event("gala").await;
    let id = t
        .send_invitation("gala", guest("g1", "Ana", "+5511999990000"))
        .await;
    let deps = t.sender_deps(Arc::new(t.twilio_client()));
    let batch = vec![
        sqs_record("not json at all", 1),
        sqs_record(&format!(r#"{{"invitation_id":"{id}","attempt":1}}"#), 1),
        sqs_record(r#"{"invitation_id":"inv_doesnotexist","attempt":1}"#, 1),
    ];
    let response = sender::handle(&deps, sqs_batch(batch)).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "poison is moved, not retried: {:?}",
        response.batch_item_failures
    );
    assert_eq!(t.queue_depth(&t.stack.dead_letter_queue_url).await, 2);
    t.wait_for_invitation("gala", &id, WAIT, |i| i["status"] == "read")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_claims_only_what_it_can_send_before_its_deadline() {
    let t = TestStack::start_with(|_, options| options.max_concurrency = 0).await;
    t.create_event("gala").await;
    t.send_bulk("gala", guests(3)).await;
    let ids: Vec<String> = t
        .all_invitations("gala")
        .await
        .iter()
        .map(|i| i["invitation_id"].as_str().unwrap().to_owned())
        .collect();
    let mut deps = t.sender_deps(Arc::new(t.twilio_client()));
    // One send a second: the second slot is a second away.
    deps.pacer = sender::Pacer::new(1, 1).unwrap();
    let records: Vec<SqsMessage> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut r = sqs_record(&format!(r#"{{"invitation_id":"{id}","attempt":1}}"#), 1);
            r.message_id = Some(format!("m{i}"));
            r
        })
        .collect();
    // Time for the first send only.
    let deadline = tokio::time::Instant::now() + sender::SEND_BUDGET + Duration::from_millis(500);
    let response = sender::handle_until(&deps, sqs_batch(records), deadline).await;
    let returned: HashSet<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(returned.len(), 2, "two records go back: {returned:?}");
    assert_eq!(t.sim_messages().len(), 1, "one sent");
    let queued = t
        .all_invitations("gala")
        .await
        .into_iter()
        .filter(|i| i["status"] == "queued" && i["timestamps"].get("sending").is_none())
        .count();
    assert_eq!(queued, 2, "the others were never claimed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_filtered_listing_reads_pages_not_single_items() {
    let t = TestStack::start_with(|_, options| options.max_concurrency = 0).await;
    t.create_event("gala").await;
    t.send_bulk("gala", guests(150)).await;
    let queries = || {
        t.aws
            .summary()
            .requests
            .get("dynamodb:Query")
            .copied()
            .unwrap_or(0)
    };
    let before = queries();
    // Nothing failed: the filter matches none of the 150.
    let (status, page) = t
        .request(
            "GET",
            "/api/whatsapp/invitations/gala?status=failed&limit=1",
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    assert!(page["next_cursor"].is_null());
    assert_eq!(queries() - before, 1, "one read of a page, not 150 of one");
    // Paging through matches gives each once.
    let mut seen = HashSet::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = t
            .request(
                "GET",
                &format!("/api/whatsapp/invitations/gala?status=queued&limit=40{cursor}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            assert!(seen.insert(item["invitation_id"].as_str().unwrap().to_owned()));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 150);
}
