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
use serde_json::Value;
use shared::domain::budget::DailyLimit;
use std::time::Duration;

const LIMIT: u32 = 250;
const WINDOW: i64 = 30;
const GUESTS: usize = 600;

/// A stack whose sender profile allows `stack_limit` unique recipients per
/// 30 s, in front of a simulator allowing `sim_limit`.
async fn stack(faults: Faults, stack_limit: u32, sim_limit: u64) -> TestStack {
    TestStack::start_under(faults, Policy::from_template(), |sim, options| {
        sim.knobs.daily_limit = Some(sim_limit);
        sim.knobs.daily_window_seconds = WINDOW as u64;
        options.profile.daily_limit = DailyLimit::Limited(stack_limit);
        options.profile.window_seconds = WINDOW;
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
    // (as soon as the sender passes 250 in the window: it sends faster).
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
    // 600 under 250 a window take three windows: two full ones and part of a third.
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
async fn when_twilio_counts_more_than_the_budget_its_63018_pauses_sending_and_nothing_fails() {
    // The portfolio reached fewer users than the operator configured (or
    // another system sends from it): Twilio refuses past 100.
    let t = stack(Faults::harsh(), LIMIT, 100).await;
    t.create_event("gala").await;
    let body = t.send_bulk("gala", guests(150)).await;
    let job_id = body["job_id"].as_str().unwrap();
    let done = t
        .wait_for_job(job_id, Duration::from_secs(300), |j| j["done"] == true)
        .await;
    assert_counts_exact(&done);
    assert_eq!(done["counts"]["failed"], 0, "{done}");
    let reached =
        done["counts"]["delivered"].as_i64().unwrap() + done["counts"]["read"].as_i64().unwrap();
    assert_eq!(reached, 150, "{done}");
    let stats = t.sim.state().stats();
    assert!(stats.daily_limited > 0, "Twilio refused some: {stats:?}");
    // A refused invitation went out again under a new attempt.
    let invitations = t.all_invitations("gala").await;
    assert!(
        invitations.iter().any(|i| i["attempt"].as_u64() > Some(1)),
        "refused invitations waited and went out again"
    );
    assert_eq!(arrivals(&t).len(), 150, "one accepted message per guest");
}
