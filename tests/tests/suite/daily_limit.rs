//! WhatsApp's daily limit on unique recipients, end to end with a
//! 30-second "day": a send larger than the limit goes out window by
//! window, the rest waiting (not failed), and the job says when it will
//! finish. The simulator enforces the same limit (63018). The window test
//! runs at full pace (the fault layer's retries slow the pipeline below a
//! 30-second window's limit, so nothing would wait); Twilio's refusals run
//! under the fault layer, and the budget's exactness under concurrency is
//! `budget.rs`'s.

use e2e::faults::{Faults, Policy};
use e2e::{TestStack, assert_counts_exact, guests, quick_reconciliation};
use serde_json::{Value, json};
use shared::domain::budget::DailyLimit;
use std::time::Duration;

const LIMIT: u32 = 100;
const WINDOW: i64 = 30;
const GUESTS: usize = 240;

/// A stack whose sender profile allows `stack_limit` unique recipients per
/// `WINDOW` seconds, in front of a simulator allowing `sim_limit`.
async fn stack(faults: Faults, stack_limit: u32, sim_limit: u64) -> TestStack {
    stack_with_window(faults, stack_limit, sim_limit, WINDOW).await
}

async fn stack_with_window(
    faults: Faults,
    stack_limit: u32,
    sim_limit: u64,
    window: i64,
) -> TestStack {
    TestStack::start_under(faults, Policy::from_template(), |sim, options| {
        sim.knobs.daily_limit = Some(sim_limit);
        sim.knobs.daily_window_seconds = window as u64;
        options.profile.daily_limit = DailyLimit::Limited(stack_limit);
        options.profile.window_seconds = window;
        // Waiting invitations are released by reconciliation's run, which
        // also enqueues what the faults kept from the queue.
        quick_reconciliation(options, Duration::from_secs(10), Duration::from_secs(30));
    })
    .await
}

fn seconds_between(from: &Value, to: &Value) -> i64 {
    let parse = |v: &Value| shared::domain::parse_timestamp(v.as_str().unwrap()).unwrap();
    (parse(to) - parse(from)).whole_seconds()
}

/// Every message the simulator accepted and did not refuse for the limit,
/// by arrival (milliseconds).
fn arrivals(t: &TestStack) -> Vec<(u64, String)> {
    let mut sent: Vec<(u64, String)> = t
        .sim_messages()
        .into_iter()
        .filter(|m| m.error_code != Some(63018))
        .map(|m| (m.received_at_ms, m.params["To"].clone()))
        .collect();
    sent.sort();
    sent
}

/// The most unique recipients in any `WINDOW`-second span of arrivals.
fn most_in_a_window(sent: &[(u64, String)]) -> usize {
    sent.iter()
        .map(|(start, _)| {
            sent.iter()
                .filter(|(at, _)| *at >= *start && *at < start + WINDOW as u64 * 1000)
                .map(|(_, to)| to)
                .collect::<std::collections::HashSet<_>>()
                .len()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_over_the_daily_limit_goes_out_window_by_window_and_none_fails() {
    let t = stack(Faults::none(), LIMIT, u64::from(LIMIT)).await;
    t.create_event("gala").await;
    let body = t.send_bulk("gala", guests(GUESTS)).await;
    assert_eq!(body["accepted"], GUESTS, "{body}");
    let job_id = body["job_id"].as_str().unwrap();

    // The job says it waits, for what, how many, and when it will finish
    // (as soon as the sender passes 100 in the window: it sends faster).
    let waiting = t
        .wait_for_job(job_id, Duration::from_secs(120), |j| {
            j["waiting"]["count"].as_u64() >= Some(10) || j["done"] == true
        })
        .await;
    assert_eq!(
        waiting["waiting"]["reason"], "wait_for_daily_limit",
        "{waiting}"
    );
    assert_eq!(waiting["waiting"]["daily_unique_recipients"], LIMIT);
    assert!(
        waiting["waiting"]["words"]
            .as_str()
            .unwrap()
            .contains("by itself")
    );
    assert!(waiting["waiting"]["next_at"].is_string(), "{waiting}");
    assert_eq!(
        waiting["counts"]["waiting"], waiting["waiting"]["count"],
        "{waiting}"
    );
    // 240 under 100 a window take three windows: two full ones and part of a third.
    let finish = seconds_between(&waiting["created_at"], &waiting["expected_finish"]);
    assert!(
        (2 * WINDOW..4 * WINDOW).contains(&finish),
        "expected to finish {finish} s after the send: {waiting}"
    );
    let (code, sender) = t.request("GET", "/api/whatsapp/sender", None).await;
    assert_eq!(code, 200, "{sender}");
    assert_eq!(sender["daily_unique_recipients"], LIMIT);
    assert_eq!(sender["window_seconds"], WINDOW);
    assert_eq!(sender["rate_per_second"], 50);

    let done = t
        .wait_for_job(job_id, Duration::from_secs(400), |j| j["done"] == true)
        .await;
    assert_counts_exact(&done);
    let reached =
        done["counts"]["delivered"].as_i64().unwrap() + done["counts"]["read"].as_i64().unwrap();
    assert_eq!(
        reached, GUESTS as i64,
        "every guest reached, none failed: {done}"
    );
    assert_eq!(done["counts"]["failed"], 0, "{done}");
    assert_eq!(done["expected_finish"], Value::Null);

    // Window by window: the 251st only once the first window ended, and
    // none over the limit in any window.
    let sent = arrivals(&t);
    assert_eq!(sent.len(), GUESTS, "one message per guest");
    let first = sent[0].0;
    let window_ms = WINDOW as u64 * 1000;
    assert!(sent[LIMIT as usize].0 >= first + window_ms);
    assert!(most_in_a_window(&sent) <= LIMIT as usize);
    let stats = t.sim.state().stats();
    assert!(stats.max_daily_recipients <= u64::from(LIMIT), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_twilio_allows_fewer_than_configured_the_budget_learns_its_count_and_nothing_fails() {
    // The portfolio reached fewer users than the operator configured (or
    // another system sends from it): told 250, Twilio allows 12, and
    // answers as it does (201, then a failed callback with 63018).
    let t = stack(Faults::harsh(), 250, 12).await;
    t.create_event("gala").await;
    let body = t.send_bulk("gala", guests(36)).await;
    let job_id = body["job_id"].as_str().unwrap();
    // Once every refusal has come back, the sender profile says what
    // Twilio allows: the twelve it accepted.
    let mut seen = Vec::new();
    for _ in 0..120 {
        let (_, sender) = t.request("GET", "/api/whatsapp/sender", None).await;
        if let Some(limit) = sender["learned_limit"].as_u64() {
            seen.push(limit);
            if limit <= 12 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(seen.last(), Some(&12), "learned limits seen: {seen:?}");
    let done = t
        .wait_for_job(job_id, Duration::from_secs(400), |j| j["done"] == true)
        .await;
    assert_counts_exact(&done);
    assert_eq!(done["counts"]["failed"], 0, "{done}");
    let reached =
        done["counts"]["delivered"].as_i64().unwrap() + done["counts"]["read"].as_i64().unwrap();
    assert_eq!(reached, 36, "{done}");
    // The first batch overshoots before any refusal arrives (24 at most);
    // after that, a handful a window as the learned limit grows back.
    let stats = t.sim.state().stats();
    eprintln!("Twilio refused {} sends for the limit", stats.daily_limited);
    assert!(stats.daily_limited > 0, "Twilio refused some: {stats:?}");
    assert!(
        stats.daily_limited <= 24 + 3 * u64::from(shared::domain::budget::LEARNED_STEP_MIN),
        "refused {} times: {stats:?}",
        stats.daily_limited
    );
    // A refused invitation went out again under a new attempt.
    let invitations = t.all_invitations("gala").await;
    assert!(
        invitations.iter().any(|i| i["attempt"].as_u64() > Some(1)),
        "refused invitations waited and went out again"
    );
    assert_eq!(arrivals(&t).len(), 36, "one accepted message per guest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_faults_the_budget_holds_a_place_only_for_each_guest_messaged() {
    // A window longer than the test: nothing frees, so every place held
    // is one taken for this send.
    let limit = 100;
    let t = stack_with_window(Faults::harsh(), limit, 1_000, 3_600).await;
    t.create_event("gala").await;
    let body = t.send_bulk("gala", guests(150)).await;
    let job_id = body["job_id"].as_str().unwrap();
    let settled = t
        .wait_for_job(job_id, Duration::from_secs(300), |j| {
            j["counts"]["waiting"] == 50
                && j["counts"]["queued"] == 0
                && j["counts"]["sending"] == 0
        })
        .await;
    assert_eq!(settled["counts"]["failed"], 0, "{settled}");
    // The whole limit reached guests: none lost to records that took a
    // place and were not sent (out of time, a lost claim, a redelivery).
    let messaged: std::collections::HashSet<String> =
        arrivals(&t).into_iter().map(|(_, to)| to).collect();
    assert_eq!(messaged.len(), limit as usize, "{settled}");
    assert_eq!(arrivals(&t).len(), limit as usize, "one message per guest");
    let (code, sender) = t.request("GET", "/api/whatsapp/sender", None).await;
    assert_eq!(code, 200, "{sender}");
    assert_eq!(sender["counted_in_window"], limit, "{sender}");
    assert_eq!(sender["free_now"], 0, "{sender}");
    assert_eq!(sender["learned_limit"], Value::Null, "{sender}");
    let report = t.aws.summary();
    assert!(
        report.injected.values().sum::<u64>() > 0,
        "the fault layer injected faults: {report:?}"
    );
}

/// Every item in the stack's table.
async fn items_in_table(t: &TestStack) -> i32 {
    t.stack
        .dynamodb
        .scan()
        .table_name(&t.stack.names.table)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .expect("a scan")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_answers_what_the_send_would_do_and_writes_nothing() {
    let t = stack(Faults::none(), LIMIT, u64::from(LIMIT)).await;
    t.create_event("gala").await;
    let (code, template) = t
        .request(
            "POST",
            "/api/whatsapp/templates",
            Some(
                json!({"template_id": "invite", "content_sid": "HX00000000000000000000000000000001",
                        "category": "marketing", "content_variables": {"1": "{guest_first_name}"}}),
            ),
        )
        .await;
    assert_eq!(code, 201, "{template}");
    // 598 in Brazil, 2 in the US (a Marketing template does not reach them),
    // one Brazilian the organizer opted out, and one bad number.
    let mut everyone = guests(GUESTS - 2);
    everyone.push(e2e::guest("us1", "Ann", "+14155550101"));
    everyone.push(e2e::guest("us2", "Bob", "+14155550102"));
    everyone.push(e2e::guest("bad", "Cy", "12345"));
    let opted_out = everyone[7]["phone"].as_str().unwrap().to_owned();
    let (code, _) = t
        .request("PUT", &format!("/api/whatsapp/opt-outs/{opted_out}"), None)
        .await;
    assert_eq!(code, 200);
    let items_before = items_in_table(&t).await;
    let queued_before = t.queue_depth(&t.stack.queue_url).await;

    let (code, dry) = t
        .request(
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": "gala", "template_id": "invite", "guests": everyone, "dry_run": true})),
        )
        .await;
    assert_eq!(code, 200, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["accepted"], GUESTS, "{dry}");
    assert_eq!(dry["queued"], GUESTS - 3, "{dry}");
    assert_eq!(
        dry["rejected"][0]["field"],
        format!("guests[{GUESTS}].phone")
    );
    let skipped: Vec<(&str, &str)> = dry["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["guest_id"].as_str().unwrap(), s["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("g7", "opted_out_by_you"),
            ("us1", "marketing_to_us"),
            ("us2", "marketing_to_us")
        ]
    );
    // 237 to send under 100 a window: 137 would wait; three windows.
    assert_eq!(dry["would_wait"], GUESTS - 3 - LIMIT as usize, "{dry}");
    assert_eq!(dry["daily_unique_recipients"], LIMIT);
    let now = shared::domain::now();
    let finish = seconds_between(&json!(now), &dry["expected_finish"]);
    assert!(
        (2 * WINDOW..4 * WINDOW).contains(&finish),
        "{finish} s: {dry}"
    );
    // Twilio's fee and WhatsApp's Marketing rate for Brazil, 237 times.
    let cost = &dry["cost"];
    assert_eq!(cost["currency"], "USD");
    assert_eq!(cost["messages"], GUESTS - 3);
    assert_eq!(cost["by_country"][0]["calling_code"], 55);
    assert_eq!(cost["by_country"][0]["whatsapp_per_message"], 0.0625);
    let total = cost["total"].as_f64().unwrap();
    assert!(
        (total - (GUESTS - 3) as f64 * (0.005 + 0.0625)).abs() < 0.01,
        "{cost}"
    );

    // Nothing written, nothing queued, nothing sent.
    assert_eq!(items_in_table(&t).await, items_before);
    assert_eq!(t.queue_depth(&t.stack.queue_url).await, queued_before);
    assert!(t.all_invitations("gala").await.is_empty());
    assert!(t.sim_messages().is_empty());

    // The same request without dry_run sends as it said.
    let (code, sent) = t
        .request(
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": "gala", "template_id": "invite", "guests": everyone})),
        )
        .await;
    assert_eq!(code, 202, "{sent}");
    assert_eq!(
        sent["admitting"], false,
        "a send this size is answered whole"
    );
    assert_eq!(sent["queued"], dry["queued"]);
    assert_eq!(sent["skipped"], dry["skipped"]);
}
