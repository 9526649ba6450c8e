//! Each function's role in template.yaml grants exactly what the function
//! does. Every test stack holds each function to its role (the fault layer
//! denies anything else, and the test fails); here one run exercises every
//! function and compares what each did with what its role grants.

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::faults::{Faults, Policy};
use e2e::{TestStack, guest};
use serde_json::json;
use shared::app::reconcile::Thresholds;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const ANA: &str = "+5511999990001";
const BRUNO: &str = "+5511999990002";
const NOT_ON_WHATSAPP: &str = "+5511999990003";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_grants_exactly_what_its_function_does() {
    let t = TestStack::start_with(|sim, options| {
        sim.knobs.fail_numbers.insert(NOT_ON_WHATSAPP.into(), 63024);
        // No callback comes at first: reconciliation reads Twilio's records.
        sim.knobs.lost_callback_ratio = 1.0;
        // One send a second: Twilio answers 429, the sender backs off (its
        // messages wait), and reconciliation finds them queued.
        sim.knobs.rate_limit_per_second = 1;
        options.retry_backoff = sender::Backoff {
            first_seconds: 4,
            cap_seconds: 4,
        };
        options.reconcile_every = Duration::from_millis(500);
        options.reconcile_thresholds = Thresholds {
            queued: Duration::from_secs(2),
            sending: Duration::from_secs(30),
            sent: Duration::from_secs(1),
        };
    })
    .await;
    // Events and templates.
    t.create_event("gala").await;
    assert_eq!(t.request("GET", "/api/whatsapp/events", None).await.0, 200);
    let template = json!({"template_id": "warm", "name": "Warm", "text": "Hi {guest_name}!"});
    let (status, body) = t
        .request("POST", "/api/whatsapp/templates", Some(template))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        t.request("GET", "/api/whatsapp/templates", None).await.0,
        200
    );
    // The guest list: import, list, follow, edit, remove.
    let (status, imported) = t
        .request(
            "POST",
            "/api/whatsapp/guests/gala",
            Some(json!({"guests": [guest("z", "Zoe", "+5511999990026"), guest("y", "Yuri", "+5511999990025")]})),
        )
        .await;
    assert_eq!(status, 200, "{imported}");
    let since = imported["changes"].as_str().unwrap();
    for query in [String::new(), format!("?since={since}")] {
        let (status, body) = t
            .request("GET", &format!("/api/whatsapp/guests/gala{query}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = t
        .request(
            "PUT",
            "/api/whatsapp/guests/gala/z",
            Some(json!({"name": "Zoe", "phone": "+5511999990027"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = t
        .request("DELETE", "/api/whatsapp/guests/gala/y", None)
        .await;
    assert_eq!(status, 204);
    // Sends, their status, a retry and an opt-out.
    let one = t.send_invitation("gala", guest("a", "Ana", ANA)).await;
    t.wait_for_invitation("gala", &one, WAIT, |i| i["status"] == "read")
        .await;
    t.sim
        .state()
        .patch_knobs(json!({"lost_callback_ratio": 0.0}))
        .unwrap();
    // A dry run reads the event's guest list.
    let (status, dry) = t
        .request(
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": "gala", "guests": [guest("z", "Zoe", "+5511999990027")], "dry_run": true})),
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    // Refused (no guests): the key is released for the real request.
    let (status, _) = t
        .send_bulk_with_key("iam-run", &json!({"event_id": "gala", "guests": []}))
        .await;
    assert_eq!(status, 400);
    let (status, answer) = t
        .send_bulk_with_key(
            "iam-run",
            &json!({"event_id": "gala", "guests": [
                guest("b", "Bruno", BRUNO),
                guest("c", "Carla", NOT_ON_WHATSAPP),
                guest("d", "Davi", "+5511999990004"),
                guest("e", "Eva", "+5511999990005"),
                guest("f", "Fabio", "+5511999990006"),
            ]}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let job_id = answer["job_id"].as_str().unwrap();
    t.wait_for_job(job_id, WAIT, |j| j["done"] == true).await;
    let failed = t
        .all_invitations("gala")
        .await
        .into_iter()
        .find(|i| i["status"] == "failed")
        .expect("the guest not on WhatsApp failed");
    let (status, body) = t.retry(&failed["invitation_id"]).await;
    assert_eq!(status, 202, "{body}");
    t.wait_for_job(job_id, WAIT, |j| j["done"] == true).await;
    let (status, body) = t.retry_failed(job_id).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = t
        .request("PUT", &format!("/api/whatsapp/opt-outs/{BRUNO}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    // Ana's messages: opted out and in, an answer typed, a question kept.
    for word in ["STOP", "START", "sim", "Can I bring a friend?"] {
        let (status, _, _) = t.inbound_message(ANA, word).await;
        assert_eq!(status, 200);
    }
    // Answers: the organizer's, the headcount, a guest's history, what guests wrote.
    let (status, body) = t
        .request(
            "PUT",
            "/api/whatsapp/rsvps/gala/z",
            Some(json!({"answer": "no"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for path in [
        "/api/whatsapp/rsvps/gala",
        "/api/whatsapp/rsvps/gala/a",
        "/api/whatsapp/replies/gala",
    ] {
        let (status, body) = t.request("GET", path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // The sender's profile and the API's facts.
    for path in ["/api/whatsapp/sender", "/api/whatsapp/facts"] {
        let (status, body) = t.request("GET", path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // Ana's RSVP page: a link that opens nothing, then her own.
    let item = t
        .stack
        .dynamodb
        .get_item()
        .table_name(&t.stack.names.table)
        .key("pk", AttributeValue::S(format!("INV#{one}")))
        .key("sk", AttributeValue::S("INV".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let secret = item["answer_secret"].as_s().unwrap();
    let page = format!("{}{one}.{secret}", t.stack.rsvp_page_url);
    for (url, form) in [
        (format!("{}nothing", t.stack.rsvp_page_url), None),
        (page.clone(), None),
        (page, Some("answer=maybe")),
    ] {
        let mut req = t.http.request(
            if form.is_some() {
                reqwest::Method::POST
            } else {
                reqwest::Method::GET
            },
            &url,
        );
        if let Some(form) = form {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form);
        }
        assert!(req.send().await.unwrap().status().as_u16() < 500);
    }
    // Reminders: "remind now" (a press whose job cannot be written lets its
    // run go, so the next press does it), and a reminder time come (as the
    // schedule runs it).
    t.aws.set_outage(Some(e2e::faults::Outage {
        action: "dynamodb:PutItem",
        item_prefix: "JOB#".into(),
    }));
    let (status, body) = t.request("POST", "/api/whatsapp/remind/gala", None).await;
    assert_eq!(status, 500, "{body}");
    t.aws.set_outage(None);
    let (status, body) = t.request("POST", "/api/whatsapp/remind/gala", None).await;
    assert_eq!(status, 202, "{body}");
    // Its reminders reach their guests before the scheduled time comes, so
    // that one reminds them again (through the send pipeline, whatever the
    // pace of the simulator).
    let reminder_job = body["job_id"].as_str().unwrap().to_owned();
    t.wait_for_job(&reminder_job, WAIT, |j| j["done"] == true)
        .await;
    let soon = time::OffsetDateTime::now_utc() + time::Duration::minutes(2);
    let mut event = e2e::sample_event();
    event["rsvp_deadline"] = json!(shared::domain::timestamp(soon + time::Duration::days(1)));
    event["reminders"] =
        json!([{"days_before": 1, "at": format!("{:02}:{:02}", soon.hour(), soon.minute())}]);
    let (status, body) = t
        .request("PUT", "/api/whatsapp/events/gala", Some(event))
        .await;
    assert_eq!(status, 200, "{body}");
    let as_scheduled = shared::adapters::dynamo::DynamoStore::new(
        t.dynamodb_as("reconcile").await,
        &t.stack.names.table,
    );
    let queue = shared::adapters::sqs::SqsQueue::new(t.stack.sqs.clone(), &t.stack.queue_url);
    let later = soon + time::Duration::days(1);
    shared::app::remind::run_due(&as_scheduled, &as_scheduled, &queue, later)
        .await
        .unwrap();
    // A message no sender can read goes to the dead-letter queue.
    t.stack
        .sqs
        .send_message()
        .queue_url(&t.stack.queue_url)
        .message_body("not a send request")
        .send()
        .await
        .unwrap();
    let start = std::time::Instant::now();
    while t.queue_depth(&t.stack.dead_letter_queue_url).await == 0 {
        assert!(
            start.elapsed() < WAIT,
            "the poison message was dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A report the table cannot take in time waits in the reports queue,
    // and its consumer applies it: Twilio's 63018 for Ana's message, made
    // refusable again here (out of reconciliation's sight, which reads the
    // in-flight index).
    let attempt = item["attempt"].as_n().unwrap().to_owned();
    t.stack
        .dynamodb
        .update_item()
        .table_name(&t.stack.names.table)
        .key("pk", AttributeValue::S(format!("INV#{one}")))
        .key("sk", AttributeValue::S("INV".into()))
        .update_expression("SET #status = :sent")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":sent", AttributeValue::S("sent".into()))
        .send()
        .await
        .unwrap();
    t.aws.set_slow_dynamodb(Some(Duration::from_secs(2)));
    let url = format!(
        "{}?invitation_id={one}&attempt={attempt}",
        t.stack.webhook_url
    );
    let to = format!("whatsapp:{ANA}");
    let refused = [
        ("MessageStatus", "failed"),
        ("ErrorCode", "63018"),
        ("To", to.as_str()),
        ("MessageSid", "SM00000000000000000000000000000063"),
        ("AccountSid", twilio_sim::DEFAULT_ACCOUNT_SID),
    ];
    assert_eq!(t.post_signed_callback(&url, &refused).await, 200);
    t.aws.set_slow_dynamodb(None);
    t.wait_for_invitation("gala", &one, WAIT, |i| i["status"] == "waiting")
        .await;
    // Its job's status says when the daily limit frees a place.
    let waiting_job = t.invitation("gala", &one).await["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.job(&waiting_job).await;
    // A one-off whose write lands late (DynamoDB slow) stamps its change
    // again, so a page following the event still sees it.
    t.aws.set_slow_dynamodb_of(
        "send-invitation",
        Some(Duration::from_millis(
            shared::adapters::dynamo::keys::CHANGE_LANDS_WITHIN_MS as u64 + 200,
        )),
    );
    t.send_invitation("gala", guest("l", "Lia", "+5511999990077"))
        .await;
    t.aws.set_slow_dynamodb(None);
    // A large send, admitted behind its answer: a Marketing template
    // reaches no US number, so all but one guest are skipped, not sent.
    t.create_marketing_template("promo").await;
    let mut many = e2e::us_guests(shared::domain::admission::INLINE_GUESTS);
    many.push(guest("m", "Mara", "+5511999990088"));
    let (status, large) = t
        .request(
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": "gala", "template_id": "promo", "guests": many})),
        )
        .await;
    assert_eq!(status, 202, "{large}");
    assert_eq!(large["admitting"], true, "{large}");
    // (Mara then waits: Twilio taught the budget its day is used up.)
    t.wait_for_job(large["job_id"].as_str().unwrap(), WAIT, |j| {
        j["admission"]["state"] == "admitted"
    })
    .await;
    // A guest removed while their invitation waits (held back far ahead):
    // the guests function skips it, with its own role.
    {
        use shared::domain::{GuestInput, Invitation, Job, JobId, Status};
        use shared::ports::{GuestStore, InvitationStore, JobStore, Transition};
        let store = shared::adapters::dynamo::DynamoStore::new(
            t.stack.dynamodb.clone(),
            &t.stack.names.table,
        );
        let wes = GuestInput {
            guest_id: Some("w".into()),
            name: Some("Wes".into()),
            phone: Some("+5511999990091".into()),
            rsvp_token: None,
        }
        .parse("")
        .unwrap();
        let (job_id, at) = (JobId::generate(), shared::domain::now());
        let owner = local_stack::DEV_ORGANIZER;
        let event_id = shared::domain::EventId::parse("gala").unwrap();
        let inv = Invitation::new_queued(event_id.clone(), job_id.clone(), owner, wes, None, &at);
        store
            .admit(std::slice::from_ref(&inv), false)
            .await
            .unwrap();
        let job = Job::of(
            job_id.clone(),
            event_id,
            owner,
            std::slice::from_ref(&inv),
            &at,
        );
        store.put_job(&job).await.unwrap();
        let waits = Transition {
            invitation_id: inv.invitation_id.clone(),
            job_id,
            attempt: inv.attempt,
            from: Status::Queued,
            to: Status::Waiting,
            at: at.clone(),
            new_attempt: None,
            message_sid: None,
            error: None,
            clear_flag: false,
            due_at: Some("2099-01-01T00:00:00.000Z".into()),
            renew: None,
        };
        assert!(store.transition(&waits).await.unwrap());
        let (status, _) = t
            .request("DELETE", "/api/whatsapp/guests/gala/w", None)
            .await;
        assert_eq!(status, 204);
        let skipped = store
            .get_invitation(&inv.invitation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(skipped.status, Status::Skipped);
    }
    // A chunk whose message never came is enqueued again by reconciliation.
    let stalled = shared::domain::JobId::generate();
    let event_id = shared::domain::EventId::parse("gala").unwrap();
    let guests = vec![
        shared::domain::GuestInput {
            guest_id: Some("n".into()),
            name: Some("Nina".into()),
            phone: Some("+5511999990089".into()),
            rsvp_token: None,
        }
        .parse("")
        .unwrap(),
    ];
    let at = shared::domain::now();
    let owner = local_stack::DEV_ORGANIZER.to_owned();
    shared::ports::AdmissionStore::put_admission(
        &shared::adapters::dynamo::DynamoStore::new(t.stack.dynamodb.clone(), &t.stack.names.table),
        &shared::domain::Job::admitting(stalled.clone(), event_id.clone(), &owner, 1, &at),
        &shared::domain::admission::AdmissionChunk::split(
            &stalled,
            &owner,
            &event_id,
            &shared::domain::TemplateRef {
                template_id: shared::domain::TemplateId::parse("default").unwrap(),
                version: 1,
            },
            false,
            guests,
            &at,
        ),
    )
    .await
    .unwrap();
    t.wait_for_job(stalled.as_str(), WAIT, |j| {
        j["admission"]["state"] == "admitted"
    })
    .await;
    // Reconciliation has had its runs.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let performed = t.aws.summary().performed;
    let mut differences = BTreeMap::new();
    for (function, granted) in e2e::template::Template::load().grants() {
        let granted: BTreeSet<_> = granted
            .into_iter()
            .filter(|(action, _)| !action.starts_with("logs:"))
            .collect();
        let did = performed.get(&function).cloned().unwrap_or_default();
        let unused: Vec<_> = granted.difference(&did).collect();
        let ungranted: Vec<_> = did.difference(&granted).collect();
        if !unused.is_empty() || !ungranted.is_empty() {
            differences.insert(
                function,
                format!("granted, never used: {unused:?}; used, not granted: {ungranted:?}"),
            );
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_an_action_its_function_uses_fails_like_aws() {
    // send-invitation's opt-out check reads with BatchGetItem.
    let policy = Policy::from_template().without("send-invitation", "dynamodb:BatchGetItem");
    let t = TestStack::start_under(Faults::none(), policy, |_, _| {}).await;
    t.create_event("gala").await;
    let (status, body) = t
        .request(
            "POST",
            "/api/whatsapp/send-invitation",
            Some(json!({"event_id": "gala", "guest": guest("a", "Ana", ANA)})),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        t.aws.take_denied(),
        ["send-invitation: dynamodb:BatchGetItem on table"]
    );
}
