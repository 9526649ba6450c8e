//! What the functions log is safe to keep: an end-to-end run through Twilio
//! failures, retries, timeouts, opt-outs and forged webhooks, captured in
//! the functions' own JSON format, holds no Account SID, no auth token and
//! no phone number in full.

use e2e::logs::capture;
use e2e::{FROM, TestStack, guest};
use serde_json::json;
use shared::app::reconcile::Thresholds;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);
const FINE: &str = "+5511999993001";
const INVALID: &str = "+5511999993002";
const UNSUBSCRIBED: &str = "+5511999993003";
const NOT_ON_WHATSAPP: &str = "+5511999993004";
const UNDELIVERED: &str = "+5511999993005";
const TIMES_OUT: &str = "+5511999993006";
const STOPS: &str = "+5511999993007";
const MEXICO: &str = "+525512349876";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_a_run_with_failures_hold_no_secret_and_no_full_number() {
    let logs = capture();
    let t = TestStack::start_with(|sim, options| {
        for (phone, code) in [
            (INVALID, 21211),
            (UNSUBSCRIBED, 21610),
            (NOT_ON_WHATSAPP, 63024),
        ] {
            sim.knobs.fail_numbers.insert(phone.into(), code);
        }
        sim.knobs
            .undelivered_numbers
            .insert(UNDELIVERED.into(), 30008);
        sim.knobs.error_5xx_ratio = 0.3;
        sim.knobs.duplicate_callbacks = true;
        options.reconcile_every = Duration::from_millis(500);
        options.reconcile_thresholds = Thresholds {
            queued: Duration::from_secs(5),
            sending: Duration::from_secs(2),
            sent: Duration::from_secs(60),
        };
    })
    .await;
    t.create_event("gala").await;

    // A send that meets Twilio's refusals, 5xx answers and an undelivered message.
    let guests = [
        FINE,
        INVALID,
        UNSUBSCRIBED,
        NOT_ON_WHATSAPP,
        UNDELIVERED,
        MEXICO,
    ];
    let bulk = t
        .send_bulk(
            "gala",
            guests
                .iter()
                .enumerate()
                .map(|(i, phone)| guest(&format!("g{i}"), "Guest", phone))
                .collect(),
        )
        .await;
    let job_id = bulk["job_id"].as_str().unwrap().to_owned();
    t.wait_for_job(&job_id, WAIT, |j| j["done"] == true).await;
    let (status, _) = t.retry_failed(&job_id).await;
    assert_eq!(status, 202);

    // A send whose answer never comes: the client times out, and
    // reconciliation settles it once Twilio answers again.
    t.sim
        .state()
        .patch_knobs(
            json!({"timeout_ratio": 1.0, "timeout_hang_ms": 10_500, "error_5xx_ratio": 0.0}),
        )
        .unwrap();
    let late = t
        .send_invitation("gala", guest("late", "Late", TIMES_OUT))
        .await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    t.sim
        .state()
        .patch_knobs(json!({"timeout_ratio": 0.0}))
        .unwrap();
    t.wait_for_invitation("gala", &late, WAIT, |i| i["status"] == "read")
        .await;

    // A guest's STOP and START; a forged call; requests with bad numbers.
    for word in ["STOP", "START"] {
        assert_eq!(t.inbound_message(STOPS, word).await.0, 200);
    }
    let forged = t
        .http
        .post(&t.stack.webhook_url)
        .header("X-Twilio-Signature", "forged")
        .form(&[
            ("From", format!("whatsapp:{STOPS}")),
            ("Body", "STOP".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let (status, _) = t
        .request(
            "POST",
            "/api/whatsapp/send-invitation",
            Some(json!({"event_id": "gala", "guest": guest("x", "X", "+55119999930089999")})),
        )
        .await;
    assert_eq!(status, 400);
    t.wait_for_job(&job_id, WAIT, |j| j["done"] == true).await;

    let text = logs.text();
    // The capture works: the run's events are in it, numbers masked.
    assert!(text.contains("status applied"), "{text}");
    assert!(text.contains("guest's opt-out recorded"), "{text}");
    assert!(text.contains("rejected webhook call"), "{text}");
    let masked = shared::domain::PhoneNumber::parse(FINE).unwrap().masked();
    assert!(text.contains(&masked), "{text}");
    let mut leaks = Vec::new();
    let sid = regex::Regex::new(r"AC[0-9a-fA-F]{32}").unwrap();
    let full_number = regex::Regex::new(r"\+[1-9][0-9]{7,14}").unwrap();
    for line in text.lines() {
        let secret = sid.is_match(line) || line.contains(&t.auth_token);
        let numbers = guests.iter().chain([&TIMES_OUT, &STOPS, &FROM]);
        let number = full_number.is_match(line)
            || numbers
                .into_iter()
                .any(|n| line.contains(n.trim_start_matches('+')));
        if secret || number {
            leaks.push(line);
        }
    }
    assert!(
        leaks.is_empty(),
        "{} lines leak:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}
