//! `make bench`: one bulk send through the local stack, measured.
//!
//! Options (all optional): --guests N (10000), --rate R messages/second for
//! the sender fleet and the simulator's cap (the deployed default, 80), --latency-ms L of the
//! simulator (50), --concurrency C sender instances (the deployed default),
//! --faults on (off: the run goes through the fault layer with
//! `Faults::harsh()`, Twilio losing some answers and callbacks, and
//! reconciliation every 10 s), --partitions off (on: write units by
//! partition key are counted, each write read back from the emulator, and
//! the five hottest partitions and items in transactions printed per
//! message sent, with each partition's busiest second), --until admitted
//! (done: stop once a large send is admitted behind its answer, and report
//! the answer's and the admission's time; imported: import the guests into
//! the event's list instead, then again unchanged, then edit one, and
//! report each time, the guests function's requests and the memory the
//! import took), --out FILE (bench-results.json).
//!
//! `--store memory` measures the sender's pacing alone: the sender fleet
//! (`--concurrency` instances of the real handler, each with its own pacer,
//! one batch of 10 at a time as the SQS event source gives them) drains the
//! invitations from the in-memory store and sends them over HTTP to the
//! simulator; nothing else runs. The local emulators cannot sustain the
//! requests 80 messages a second make (see docs/benchmark.md), so this is how the
//! pacing at 80 and 400 is measured.

use e2e::faults::{Faults, Policy};
use e2e::{TestStack, guests};
use serde_json::{Value, json};
use shared::app::reconcile::Thresholds;
use shared::edge::deployment::QUEUE;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

struct Options {
    guests: usize,
    rate: u32,
    latency_ms: u64,
    concurrency: u32,
    faults: bool,
    partitions: bool,
    /// "stack" (the local stack) or "memory" (the sender alone).
    store: String,
    /// Measure the guest list's import alone (`imported`), or stop once the
    /// send is admitted (`admitted`) or every message is settled (`done`).
    until: String,
    out: String,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        guests: 10_000,
        rate: QUEUE.send_rate_per_second,
        latency_ms: 50,
        concurrency: QUEUE.max_concurrency,
        faults: false,
        partitions: true,
        store: "stack".into(),
        until: "done".into(),
        out: "bench-results.json".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair
            .get(1)
            .ok_or_else(|| format!("{} needs a value", pair[0]))?;
        let bad = |_| format!("{} {value}: not a number", pair[0]);
        match pair[0].as_str() {
            "--guests" => o.guests = value.parse().map_err(bad)?,
            "--rate" => o.rate = value.parse().map_err(bad)?,
            "--latency-ms" => o.latency_ms = value.parse().map_err(bad)?,
            "--concurrency" => o.concurrency = value.parse().map_err(bad)?,
            "--out" => o.out = value.clone(),
            "--store" => {
                o.store = match value.as_str() {
                    "stack" | "memory" => value.clone(),
                    _ => return Err(format!("--store {value}: stack or memory")),
                }
            }
            "--until" => {
                o.until = match value.as_str() {
                    "imported" | "admitted" | "done" => value.clone(),
                    _ => return Err(format!("--until {value}: imported, admitted or done")),
                }
            }
            "--faults" => {
                o.faults = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("--faults {value}: on or off")),
                }
            }
            "--partitions" => {
                o.partitions = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("--partitions {value}: on or off")),
                }
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

/// Peak resident memory of a process, in MiB.
fn peak_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn millis(rfc3339: &str) -> Option<i128> {
    OffsetDateTime::parse(rfc3339, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() / 1_000_000)
}

fn percentile(sorted: &[i128], p: f64) -> i128 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The sender fleet alone against the simulator, the store in memory.
async fn pacing_only(o: &Options) -> Result<Value, Box<dyn std::error::Error>> {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    use shared::adapters::memory::{MemoryQueue, MemoryStore};
    use shared::adapters::twilio::{TwilioClient, TwilioCredentials};
    use shared::domain::budget::{DAY_SECONDS, DailyLimit, SenderProfile};
    use shared::domain::{EventId, EventInput, GuestInput, Invitation, Job, JobId, now};
    use shared::ports::{EventStore, JobStore, SendMessage};
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    let mut sim_config = twilio_sim::SimConfig::default();
    sim_config.knobs.latency_ms = o.latency_ms;
    sim_config.knobs.rate_limit_per_second = o.rate;
    // Nothing listens for callbacks here.
    sim_config.knobs.lost_callback_ratio = 1.0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = twilio_sim::spawn(listener, sim_config.clone()).await?;

    let store = Arc::new(MemoryStore::new());
    let owner = "bench";
    let event = EventInput {
        name: Some("Bench".into()),
        starts_at: Some("2027-05-01T17:00:00-03:00".into()),
        venue: Some("Hall".into()),
        host: Some("Host".into()),
        rsvp_base_url: Some("https://rsvp.example.com/r/".into()),
        ..Default::default()
    }
    .parse(EventId::parse("bench")?, owner, &now())?;
    store.put_event(&event).await?;
    let job_id = JobId::generate();
    let invitations: Vec<Invitation> = (0..o.guests)
        .map(|i| {
            let guest = GuestInput {
                guest_id: Some(format!("g{i}")),
                name: Some(format!("Guest {i}")),
                phone: Some(format!("+5511{:09}", 900_000_000 + i)),
                rsvp_token: None,
            }
            .parse("")
            .expect("a valid guest");
            Invitation::new_queued(
                event.event_id.clone(),
                job_id.clone(),
                owner,
                guest,
                None,
                &now(),
            )
        })
        .collect();
    let job = Job::of(job_id, event.event_id.clone(), owner, &invitations, &now());
    store.create_job(&job, &invitations).await?;
    let batches: VecDeque<Vec<SendMessage>> = invitations
        .chunks(QUEUE.batch_size as usize)
        .map(|chunk| {
            chunk
                .iter()
                .map(|i| SendMessage {
                    invitation_id: i.invitation_id.clone(),
                    attempt: i.attempt,
                })
                .collect()
        })
        .collect();
    let batches = Arc::new(Mutex::new(batches));
    let messenger = Arc::new(
        TwilioClient::new(
            &sim.base_url(),
            TwilioCredentials {
                account_sid: sim_config.account_sid.clone(),
                auth_token: sim_config.auth_token.clone().into(),
                from: shared::domain::PhoneNumber::parse("+14155238886")?,
            },
            TwilioClient::TIMEOUT,
        )
        .with_status_callback("http://127.0.0.1:9/"),
    );
    let started = Instant::now();
    let mut fleet = Vec::new();
    for _ in 0..o.concurrency {
        let deps = sender::Deps {
            store: store.clone(),
            messenger: messenger.clone(),
            queue: Arc::new(MemoryQueue::new()),
            rsvp_page_url: "http://127.0.0.1:9/r/".into(),
            pacer: shared::edge::config::pacer(o.rate, o.concurrency)?,
            profile: SenderProfile {
                rate_per_second: o.rate,
                daily_limit: DailyLimit::Unlimited,
                window_seconds: DAY_SECONDS,
            },
            max_receive_count: QUEUE.max_receive_count,
            backoff: shared::edge::deployment::SEND_BACKOFF,
        };
        let batches = batches.clone();
        // One instance: a batch at a time, as Lambda gives them.
        fleet.push(tokio::spawn(async move {
            loop {
                let Some(batch) = batches.lock().expect("batches").pop_front() else {
                    return;
                };
                let mut event = SqsEvent::default();
                event.records = batch
                    .iter()
                    .map(|m| {
                        let mut record = SqsMessage::default();
                        record.message_id = Some(m.invitation_id.to_string());
                        record.body = Some(serde_json::to_string(m).expect("a message"));
                        record
                            .attributes
                            .insert("ApproximateReceiveCount".into(), "1".into());
                        record
                    })
                    .collect();
                sender::handle(&deps, event).await;
            }
        }));
    }
    for instance in fleet {
        instance.await?;
    }
    let drained_seconds = started.elapsed().as_secs_f64();
    let messages = sim.state().messages();
    let stats = sim.state().stats();
    let first = messages.iter().map(|m| m.received_at_ms).min().unwrap_or(0);
    let last = messages.iter().map(|m| m.received_at_ms).max().unwrap_or(0);
    let span = last.saturating_sub(first) as f64 / 1000.0;
    let achieved = if span > 0.0 {
        messages.len().saturating_sub(1) as f64 / span
    } else {
        0.0
    };
    Ok(json!({
        "store": "memory",
        "guests": o.guests,
        "configured_rate_per_second": o.rate,
        "simulator_latency_ms": o.latency_ms,
        "sender_instances": o.concurrency,
        "drained_seconds": drained_seconds,
        "messages_sent": messages.len(),
        "achieved_messages_per_second": achieved,
        "achieved_share_of_rate": achieved / f64::from(o.rate.max(1)),
        "highest_one_second_send_count": stats.max_per_second,
        "rate_limited_429": stats.rate_limited,
        "peak_memory_mib": {"simulator+sender+bench": peak_mib(std::process::id())},
    }))
}

/// The guests function on a list of `n`: an import, the same again (nothing
/// changes), and a one-guest edit, each timed; its DynamoDB requests; and
/// how much the process's peak memory grew over the import (the
/// function's share of it, with the emulators in other processes).
async fn import_only(t: &TestStack, n: usize) -> Result<Value, Box<dyn std::error::Error>> {
    let list = guests(n);
    let path = "/api/whatsapp/guests/bench";
    let peak_before = peak_mib(std::process::id());
    let dynamodb = || t.aws.summary().requests_of("guests", "dynamodb");
    let mut timed = Vec::new();
    for what in ["import", "import_unchanged"] {
        let requests = dynamodb();
        let started = Instant::now();
        let (status, body) = t
            .request("POST", path, Some(json!({ "guests": list })))
            .await;
        let seconds = started.elapsed().as_secs_f64();
        if status != 200 {
            return Err(format!("{what} answered {status}: {body}").into());
        }
        println!(
            "{what}: {seconds:.2} s, {} DynamoDB requests",
            dynamodb() - requests
        );
        timed.push((what, seconds, dynamodb() - requests));
    }
    let requests = dynamodb();
    let started = Instant::now();
    let mut edited = list[0].clone();
    edited["name"] = json!("Edited Guest");
    let id = edited["guest_id"].as_str().ok_or("a guest id")?.to_owned();
    let (status, body) = t
        .request("PUT", &format!("{path}/{id}"), Some(edited))
        .await;
    if status != 200 {
        return Err(format!("the edit answered {status}: {body}").into());
    }
    let edit_seconds = started.elapsed().as_secs_f64();
    println!(
        "one-guest edit: {edit_seconds:.2} s, {} DynamoDB requests",
        dynamodb() - requests
    );
    let peak_after = peak_mib(std::process::id());
    Ok(json!({
        "guests": n,
        "import_seconds": timed[0].1,
        "import_dynamodb_requests": timed[0].2,
        "import_unchanged_seconds": timed[1].1,
        "import_unchanged_dynamodb_requests": timed[1].2,
        "edit_one_seconds": edit_seconds,
        "edit_one_dynamodb_requests": dynamodb() - requests,
        "peak_memory_mib": {"before_import": peak_before, "after": peak_after},
        "guests_function_requests": t
            .aws
            .summary()
            .requests_by_function
            .into_iter()
            .filter(|(key, _)| key.starts_with("guests "))
            .collect::<std::collections::BTreeMap<_, _>>(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = options()?;
    if o.store == "memory" {
        println!(
            "bench (sender pacing, store in memory): {} guests, {} msg/s (simulator capped at the same), {} ms latency, {} sender instances",
            o.guests, o.rate, o.latency_ms, o.concurrency
        );
        let report = pacing_only(&o).await?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        std::fs::write(&o.out, serde_json::to_string_pretty(&report)?)?;
        println!("written to {}", o.out);
        return Ok(());
    }
    println!(
        "bench: {} guests, {} msg/s (simulator capped at the same), {} ms latency, {} sender instances",
        o.guests, o.rate, o.latency_ms, o.concurrency
    );
    let faults = if o.faults {
        Faults::harsh()
    } else {
        Faults::none()
    };
    let t = TestStack::start_under(faults, Policy::from_template(), |sim, stack| {
        sim.knobs.latency_ms = o.latency_ms;
        sim.knobs.rate_limit_per_second = o.rate;
        sim.knobs.callback_delay_ms = 50;
        stack.profile.rate_per_second = o.rate;
        stack.max_concurrency = o.concurrency;
        if o.faults {
            // Twilio creates the message and the answer is lost; callbacks
            // that never come; reconciliation settles what is left.
            sim.knobs.lost_answer_ratio = 0.01;
            sim.knobs.timeout_hang_ms = 500;
            sim.knobs.lost_callback_ratio = 0.05;
            stack.reconcile_every = Duration::from_secs(10);
            stack.reconcile_thresholds = Thresholds {
                queued: Duration::from_secs(120),
                sending: Duration::from_secs(30),
                sent: Duration::from_secs(10),
            };
        }
    })
    .await;
    t.create_event("bench").await;
    if o.until == "imported" {
        let report = import_only(&t, o.guests).await?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        std::fs::write(&o.out, serde_json::to_string_pretty(&report)?)?;
        println!("written to {}", o.out);
        return Ok(());
    }
    // The pipeline's requests: not the job status the benchmark itself
    // polls every 1.5 s, as the dashboard does (four reads each: the job and
    // its counter shards).
    let requests = |service| {
        let aws = t.aws.summary();
        aws.requests_to(service) - aws.requests_of("status", service)
    };
    let before = [requests("dynamodb"), requests("sqs")];
    if o.partitions {
        t.aws.measure_partitions();
    }

    let started = Instant::now();
    let body = t.send_bulk("bench", guests(o.guests)).await;
    let request_seconds = started.elapsed().as_secs_f64();
    println!("send-bulk answered 202 in {request_seconds:.2} s");
    let job_id = body["job_id"].as_str().ok_or("no job id")?.to_owned();
    // A large send is admitted behind its answer, a chunk at a time.
    let mut job = t.job(&job_id).await;
    while job["admission"]["state"] == "admitting" {
        tokio::time::sleep(Duration::from_millis(250)).await;
        job = t.job(&job_id).await;
    }
    let admitted_seconds = started.elapsed().as_secs_f64();
    println!(
        "admitted in {admitted_seconds:.2} s ({:.0} guests a second)",
        o.guests as f64 / admitted_seconds
    );
    if o.until == "admitted" {
        let hottest = t.aws.hottest_partitions(5, o.guests);
        let report = json!({
            "guests": o.guests,
            "send_bulk_request_seconds": request_seconds,
            "admitted_seconds": admitted_seconds,
            "admitted_guests_per_second": o.guests as f64 / admitted_seconds,
            "admission": job["admission"],
            "hottest_partitions_per_guest": hottest,
            "faults_injected": t.aws.summary().injected,
            "aws_requests_by_action": t.aws.summary().requests,
            "aws_requests_by_function": t.aws.summary().requests_by_function,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        std::fs::write(&o.out, serde_json::to_string_pretty(&report)?)?;
        println!("written to {}", o.out);
        return Ok(());
    }

    let budget = Duration::from_secs(o.guests as u64 / u64::from(o.rate.max(1)) * 3 + 120);
    let mut last_report = Instant::now();
    loop {
        let job = t.job(&job_id).await;
        if job["done"] == true || started.elapsed() > budget {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!("  progress: {}", job["counts"]);
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // Let the last callbacks land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let job = t.job(&job_id).await;
    let drained_seconds = started.elapsed().as_secs_f64();

    let mut invitations = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let (_, page) = t
            .request(
                "GET",
                &format!("/api/whatsapp/invitations/bench?limit=200{query}"),
                None,
            )
            .await;
        invitations.extend(page["items"].as_array().cloned().unwrap_or_default());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let requests = [
        requests("dynamodb") - before[0],
        requests("sqs") - before[1],
    ];

    let messages = t.sim_messages();
    let stats = t.sim.state().stats();
    let received: HashMap<&str, i128> = messages
        .iter()
        .map(|m| (m.sid.as_str(), i128::from(m.received_at_ms)))
        .collect();
    let mut latencies: Vec<i128> = invitations
        .iter()
        .filter_map(|i| {
            Some(
                received.get(i["message_sid"].as_str()?)?
                    - millis(i["timestamps"]["queued"].as_str()?)?,
            )
        })
        .collect();
    latencies.sort_unstable();
    let first = messages.iter().map(|m| m.received_at_ms).min().unwrap_or(0);
    let last = messages.iter().map(|m| m.received_at_ms).max().unwrap_or(0);
    let send_span = (last.saturating_sub(first)) as f64 / 1000.0;
    let achieved = if send_span > 0.0 {
        (messages.len().saturating_sub(1)) as f64 / send_span
    } else {
        0.0
    };
    let recipients: HashSet<&str> = messages.iter().map(|m| m.params["To"].as_str()).collect();
    let duplicates = messages.len() - recipients.len();
    let in_flight = ["queued", "sending", "sent"];
    let stranded = invitations
        .iter()
        .filter(|i| in_flight.contains(&i["status"].as_str().unwrap_or_default()))
        .count()
        + o.guests.saturating_sub(invitations.len());
    // The job's counters against the invitations themselves.
    let counters_match = e2e::job_counts(&job) == e2e::status_counts(&invitations);
    let aws = t.aws.summary();
    let hottest = t.aws.hottest_partitions(5, messages.len());
    if let Some(hottest) = &hottest {
        println!("hottest partitions, write units per message sent:");
        for (partition, units) in &hottest.partitions {
            println!("  {units:6.2}  {partition}");
        }
        println!("items in the most transactions, per message sent:");
        for (item, n) in &hottest.items_in_transactions {
            println!("  {n:6.3}  {item}");
        }
        println!("partitions' busiest seconds, write units:");
        for (partition, units) in &hottest.busiest_seconds {
            println!("  {units:6.0}  {partition}");
        }
    }
    let per_invitation = |n: u64| n as f64 / o.guests.max(1) as f64;
    let mut memory = serde_json::Map::new();
    for (name, pid) in t.emulator_pids() {
        memory.insert(name.into(), json!(peak_mib(pid)));
    }
    memory.insert(
        "stack+simulator+bench".into(),
        json!(peak_mib(std::process::id())),
    );

    let report: Value = json!({
        "guests": o.guests,
        "configured_rate_per_second": o.rate,
        "simulator_latency_ms": o.latency_ms,
        "sender_instances": o.concurrency,
        "send_bulk_request_seconds": request_seconds,
        "admitted_seconds": admitted_seconds,
        "drained_seconds": drained_seconds,
        "aws_requests_per_invitation": {"dynamodb": per_invitation(requests[0]), "sqs": per_invitation(requests[1])},
        "achieved_messages_per_second": achieved,
        "achieved_share_of_rate": achieved / f64::from(o.rate.max(1)),
        "highest_one_second_send_count": stats.max_per_second,
        "rate_limited_429": stats.rate_limited,
        "queue_to_twilio_ms": {"p50": percentile(&latencies, 0.5) as i64, "p99": percentile(&latencies, 0.99) as i64},
        "faults": if o.faults { json!(faults) } else { Value::Null },
        "faults_injected": aws.injected,
        "highest_writes_per_second_to_one_item": aws.hottest_item,
        "hottest_partitions_per_message": hottest,
        "messages_sent": messages.len(),
        "duplicates_sent": duplicates,
        "invitations_stranded": stranded,
        "counters_match_invitations": counters_match,
        "job_counts": job["counts"],
        "peak_memory_mib": memory,
        "aws_requests_by_action": aws.requests,
        "aws_requests_by_function": aws.requests_by_function,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    std::fs::write(&o.out, serde_json::to_string_pretty(&report)?)?;
    println!("written to {}", o.out);
    Ok(())
}
