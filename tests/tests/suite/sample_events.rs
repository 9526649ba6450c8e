//! Every sample event under `events/` (the ones `sam local invoke -e` takes)
//! goes through its function's handler, against a local stack, so the
//! samples stay true to the handlers. See events/README.md.

use e2e::{FROM, TestStack, twilio_signature};
use lambda_http::{Body, Request, RequestExt};
use secrecy::SecretString;
use serde_json::{Value, json};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::twilio::{TwilioClient, TwilioCredentials};
use shared::domain::admission::AdmissionChunk;
use shared::domain::{
    EventId, Guest, GuestId, Invitation, InvitationId, Job, JobId, PhoneNumber, RsvpToken, Status,
    TemplateId, TemplateRef,
};
use shared::edge::routes::{self, ROUTES};
use shared::ports::{
    AdmissionStore, GuestStore, InvitationStore, JobStore, OptOutStore, SendMessage,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The organizer (JWT `sub`) every API sample is signed in as.
const SAMPLE_ORGANIZER: &str = "5d1b7c8e-3f2a-4b6c-9d0e-1a2b3c4d5e6f";
const SAMPLE_EVENT: &str = "spring-gala-2027";
/// The job and invitations the samples name, written by [`seed`].
const SAMPLE_JOB: &str = "job_sample0001";
/// Queued; the SQS batch sends it and the webhook sample delivers it.
const QUEUED_1: &str = "inv_sample0001";
/// Failed; the retry sample re-queues it.
const FAILED: &str = "inv_sample0002";
/// Queued; the SQS batch's second record.
const QUEUED_2: &str = "inv_sample0003";
/// The secret of the answer token events/rsvp-page-*.json carry.
const SAMPLE_ANSWER_SECRET: &str = "5a3c0e1f2b4d6a8c9e0f1a2b3c4d5e6f";
/// The Twilio auth token events/webhook-status-callback.json is signed with.
const SAMPLE_AUTH_TOKEN: &str = "sample-auth-token-for-events-dir";

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("events")
}

fn read(name: &str) -> String {
    let path = events_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// An API Gateway (HTTP API, payload 2.0) sample as Lambda hands it over.
fn api_request(name: &str) -> (routes::Route, Request) {
    let text = read(name);
    let raw: Value = serde_json::from_str(&text).unwrap();
    let req = lambda_http::request::from_str(&text)
        .unwrap_or_else(|e| panic!("{name} is not an API Gateway v2 event: {e}"));
    // The sample's route and path parameters are those API Gateway would give.
    let method = req.method().as_str().to_owned();
    let path = raw["rawPath"].as_str().unwrap();
    let (route, params) = routes::find(&method, path)
        .unwrap_or_else(|| panic!("{name}: no route for {method} {path}"));
    assert_eq!(
        raw["routeKey"],
        format!("{} {}", route.method, route.path),
        "{name}"
    );
    assert_eq!(raw["requestContext"]["routeKey"], raw["routeKey"], "{name}");
    let given: BTreeMap<String, String> = req
        .path_parameters()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        given,
        params.into_iter().collect::<BTreeMap<_, _>>(),
        "{name}: pathParameters"
    );
    if route.caller == routes::Caller::Guest {
        assert!(
            raw["requestContext"].get("authorizer").is_none(),
            "{name}: a guest's request carries no organizer"
        );
    } else {
        assert_eq!(
            shared::edge::http::organizer(&req).expect("the sample carries a JWT sub"),
            SAMPLE_ORGANIZER,
            "{name}"
        );
    }
    (route, req)
}

fn body_json(response: &lambda_http::Response<Body>) -> Value {
    let bytes: &[u8] = match response.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

struct Handlers {
    store: Arc<DynamoStore>,
    functions: local_stack::api::Functions,
}

impl Handlers {
    fn new(t: &TestStack) -> Self {
        let store = Arc::new(DynamoStore::new(
            t.stack.dynamodb.clone(),
            &t.stack.names.table,
        ));
        let queue = Arc::new(SqsQueue::new(t.stack.sqs.clone(), &t.stack.queue_url));
        let reports = Arc::new(SqsQueue::new(
            t.stack.sqs.clone(),
            &t.stack.reports_queue_url,
        ));
        let functions = local_stack::api::Functions::new(
            |_| store.clone(),
            |_| queue.clone(),
            local_stack::api::ProviderSetup {
                auth_token: SAMPLE_AUTH_TOKEN.to_owned().into(),
                public_url: None,
                reports,
                content: Arc::new(t.twilio_client()),
            },
            Arc::new(SqsQueue::new(
                t.stack.sqs.clone(),
                &t.stack.admissions_queue_url,
            )),
            t.stack.profile,
            Default::default(),
            t.stack.rsvp_page_url.clone(),
        );
        Self { store, functions }
    }

    /// Calls the sample's function, as API Gateway would.
    async fn call(&self, name: &str) -> (u16, Value) {
        let (route, req) = api_request(name);
        self.call_function(route.function, req).await
    }

    async fn call_function(&self, function: &str, req: Request) -> (u16, Value) {
        let response = self.functions.call(function, req).await;
        (response.status().as_u16(), body_json(&response))
    }
}

fn invitation(id: &str, guest: (&str, &str, &str), status: Status, now: &str) -> Invitation {
    let mut inv = Invitation::new_queued(
        EventId::parse(SAMPLE_EVENT).unwrap(),
        JobId::parse(SAMPLE_JOB).unwrap(),
        SAMPLE_ORGANIZER,
        Guest {
            guest_id: GuestId::parse(guest.0).unwrap(),
            name: guest.1.into(),
            phone: PhoneNumber::parse(guest.2).unwrap(),
            rsvp_token: RsvpToken::generate(),
        },
        None,
        now,
    );
    inv.invitation_id = InvitationId::parse(id).unwrap();
    // What events/rsvp-page-*.json's token opens.
    inv.answer_secret = SAMPLE_ANSWER_SECRET.into();
    if status != Status::Queued {
        inv.status = status;
        inv.timestamps.insert(status, now.to_owned());
        inv.error_code = Some("63016".into());
        inv.error_message = Some("outside the 24-hour window and no template".into());
    }
    inv
}

/// The job and invitations the samples name (ids the API would have made up).
async fn seed(store: &DynamoStore) {
    let now = shared::domain::now();
    let invitations = [
        invitation(
            QUEUED_1,
            ("g-ana", "Ana", "+5511999990000"),
            Status::Queued,
            &now,
        ),
        // Dario's: no later send replaces it (his entry in send-bulk.json is
        // rejected), so it may be retried.
        invitation(
            FAILED,
            ("g-dario", "Dario", "+5511999990003"),
            Status::Failed,
            &now,
        ),
        invitation(
            QUEUED_2,
            ("g-carla", "Carla", "+5511999990002"),
            Status::Queued,
            &now,
        ),
    ];
    let mut job = Job::new(
        JobId::parse(SAMPLE_JOB).unwrap(),
        EventId::parse(SAMPLE_EVENT).unwrap(),
        SAMPLE_ORGANIZER,
        3,
        &now,
    );
    job.counts.insert(Status::Queued, 2);
    job.counts.insert(Status::Failed, 1);
    store.create_job(&job, &invitations).await.unwrap();
}

async fn stored(store: &DynamoStore, id: &str) -> Invitation {
    store
        .get_invitation(&InvitationId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{id} is stored"))
}

/// What the local stack's sender would be, but signed in to the simulator
/// directly so this test decides what the batch looks like.
fn sender_deps(t: &TestStack, store: Arc<DynamoStore>) -> sender::Deps {
    let sim = twilio_sim::SimConfig::default();
    let credentials = TwilioCredentials {
        account_sid: sim.account_sid,
        auth_token: SecretString::from(t.auth_token.clone()),
        from: PhoneNumber::parse(FROM).unwrap(),
    };
    sender::Deps {
        store,
        messenger: Arc::new(
            TwilioClient::new(&t.sim.base_url(), credentials, Duration::from_secs(10))
                .with_status_callback(t.stack.webhook_url.clone()),
        ),
        queue: Arc::new(
            SqsQueue::new(t.stack.sqs.clone(), &t.stack.queue_url)
                .with_dead_letter(&t.stack.dead_letter_queue_url),
        ),
        rsvp_page_url: t.stack.rsvp_page_url.clone(),
        pacer: sender::Pacer::new(50, 1).expect("1 instance at 50 per second"),
        profile: t.stack.profile,
        max_receive_count: shared::edge::deployment::QUEUE.max_receive_count,
        backoff: sender::Backoff {
            first_seconds: 1,
            cap_seconds: 2,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_event_goes_through_its_handler() {
    let t = TestStack::start().await;
    // Only the samples' callbacks arrive: the simulator's own are held back.
    t.sim
        .state()
        .patch_knobs(json!({"callback_delay_ms": 3_600_000}))
        .unwrap();
    let h = Handlers::new(&t);
    let mut covered = Vec::new();
    let mut api = async |name: &str, expected: u16| {
        let (status, body) = h.call(name).await;
        assert_eq!(status, expected, "{name}: {body}");
        covered.push(name.to_owned());
        body
    };

    let created = api("events-put.json", 201).await;
    assert_eq!(created["event_id"], SAMPLE_EVENT);
    let event = api("events-get.json", 200).await;
    assert_eq!(event["name"], "Spring Gala");
    let listed = api("events-list.json", 200).await;
    assert!(listed.to_string().contains(SAMPLE_EVENT), "{listed}");

    let imported = api("guests-import.json", 200).await;
    assert_eq!(imported["created"], 3, "{imported}");
    assert_eq!(
        imported["rejected"][0]["field"], "guests[3].phone",
        "{imported}"
    );
    let from_csv = api("guests-import-csv.json", 200).await;
    assert_eq!(
        (&from_csv["created"], &from_csv["updated"]),
        (&json!(2), &json!(1)),
        "{from_csv}"
    );
    let guests = api("guests-list.json", 200).await;
    let names: Vec<&str> = guests["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["Ana Souza", "Bruno", "Carla", "Dario", "Elena"],
        "{guests}"
    );
    let edited = api("guests-put.json", 200).await;
    assert_eq!(edited["name"], "Dario Lima", "{edited}");
    let answered = api("rsvps-put.json", 200).await;
    assert_eq!(answered["rsvp"]["answer"], "yes", "{answered}");
    assert_eq!(answered["rsvp"]["companions"], 1, "{answered}");
    let ana = api("rsvps-get.json", 200).await;
    assert_eq!(ana["history"].as_array().unwrap().len(), 1, "{ana}");
    let silent = api("rsvps-list.json", 200).await;
    assert_eq!(silent["headcount"]["yes"], 1, "{silent}");
    assert_eq!(silent["headcount"]["no_answer"], 4, "{silent}");
    assert!(!silent.to_string().contains("g-ana"), "{silent}");
    let replies = api("replies-list.json", 200).await;
    assert_eq!(replies["items"], json!([]), "{replies}");
    api("guests-delete.json", 204).await;

    let created = api("templates-create.json", 201).await;
    assert_eq!(created["template_id"], "warm-welcome");
    assert_eq!(created["version"], 1);
    let templates = api("templates-list.json", 200).await;
    let ids: Vec<&Value> = templates["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["template_id"])
        .collect();
    assert_eq!(
        ids,
        [&json!("default"), &json!("warm-welcome")],
        "{templates}"
    );
    let first = api("templates-get.json", 200).await;
    assert_eq!(first["version"], 1);
    let preview = api("templates-preview.json", 200).await;
    assert_eq!(
        preview["body"],
        "Hi Ana! Marina would love to see you at Spring Gala on Saturday, 1 May 2027, 17:00, Casa Rosa, Rua Augusta 100, São Paulo.\nRSVP here: https://rsvp.example.com/r/tok-ana-2027"
    );
    let approved = api("templates-put.json", 200).await;
    assert_eq!(approved["version"], 2);
    assert_eq!(
        approved["content_sid"],
        "HX00000000000000000000000000000001"
    );

    let out = api("opt-outs-put.json", 200).await;
    assert_eq!(out["opted_out"], true, "{out}");
    assert_eq!(out["source"], "api");
    let got = api("opt-outs-get.json", 200).await;
    assert_eq!(got, out);
    let many = api("opt-outs-lookup.json", 200).await;
    assert_eq!(many["items"][0]["opted_out"], true, "{many}");
    assert_eq!(many["items"][2]["phone"], "+5511999990010", "{many}");
    assert_eq!(many["rejected"][0]["field"], "phones[3]", "{many}");
    let lifted = api("opt-outs-delete.json", 200).await;
    assert_eq!(lifted["opted_out"], false, "{lifted}");

    seed(&h.store).await;

    // Ana's RSVP page, from her link, and her answer through it.
    api("rsvp-page-get.json", 200).await;
    api("rsvp-page-post.json", 200).await;
    let ana = h
        .store
        .get_guests(
            SAMPLE_ORGANIZER,
            &EventId::parse(SAMPLE_EVENT).unwrap(),
            &[GuestId::parse("g-ana").unwrap()],
        )
        .await
        .unwrap();
    let answer = ana[0].rsvp.as_ref().expect("Ana answered");
    assert_eq!(answer.answer, shared::domain::rsvp::Answer::Maybe);
    assert_eq!(answer.via, shared::domain::rsvp::AnswerVia::Link);

    let queued = api("send-invitation.json", 202).await;
    assert_eq!(queued["status"], "queued");
    let bulk = api("send-bulk.json", 202).await;
    assert_eq!(bulk["accepted"], 2, "{bulk}");
    assert_eq!(bulk["rejected"][0]["index"], 2, "{bulk}");
    assert!(
        bulk["rejected"][0]["field"]
            .as_str()
            .is_some_and(|f| f.ends_with("phone")),
        "{bulk}"
    );

    let reminded = api("remind-now.json", 202).await;
    assert_eq!(
        reminded["reminded"], 0,
        "nobody was reached yet: {reminded}"
    );
    let job = api("status-job.json", 200).await;
    assert_eq!(job["job_id"], SAMPLE_JOB);
    assert_eq!(job["total"], 3);
    assert_eq!(job["counts"]["failed"], 1, "{job}");
    let sender = api("profile-sender.json", 200).await;
    assert_eq!(sender["daily_unique_recipients"], 100_000, "{sender}");
    assert!(sender["counted_in_window"].as_u64() >= Some(1), "{sender}");
    let facts = api("profile-facts.json", 200).await;
    assert_eq!(facts["statuses"][0]["status"], "queued", "{facts}");
    assert_eq!(facts["limits"]["bulk_guests"], 10_000, "{facts}");
    let failed = api("status-invitations.json", 200).await;
    let items = failed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{failed}");
    assert_eq!(items[0]["invitation_id"], FAILED);

    // The SQS batch: both records handed to Twilio, none reported back.
    // They stay `sending` (with Twilio's SID) until a callback says more.
    let batch: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(&read("sender-sqs-batch.json")).expect("an SQS event");
    for (record, id) in batch.records.iter().zip([QUEUED_1, QUEUED_2]) {
        let message: SendMessage =
            serde_json::from_str(record.body.as_deref().unwrap()).expect("a send message");
        assert_eq!(message.invitation_id.as_str(), id);
        assert_eq!(message.attempt, 1);
    }
    let response = sender::handle(&sender_deps(&t, h.store.clone()), batch).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    covered.push("sender-sqs-batch.json".into());

    // The schedule's event starts a reconciliation run (nothing is stale yet).
    let _: serde_json::Value =
        serde_json::from_str(&read("reconcile-schedule.json")).expect("a scheduled event");
    let reconcile = reconcile::Deps {
        store: h.store.clone(),
        queue: Arc::new(SqsQueue::new(t.stack.sqs.clone(), &t.stack.queue_url)),
        admissions: Arc::new(SqsQueue::new(
            t.stack.sqs.clone(),
            &t.stack.admissions_queue_url,
        )),
        messenger: Arc::new(t.twilio_client()),
        thresholds: shared::app::reconcile::Thresholds::DEPLOYED,
        profile: t.stack.profile,
        rsvp_page_url: t.stack.rsvp_page_url.clone(),
    };
    let report = reconcile::handle(&reconcile).await.expect("a run");
    assert_eq!(report, shared::app::reconcile::Report::default());
    covered.push("reconcile-schedule.json".into());
    for id in [QUEUED_1, QUEUED_2] {
        let inv = stored(&h.store, id).await;
        assert_eq!(inv.status, Status::Sending, "{id}");
        assert!(inv.message_sid.is_some(), "{id}");
    }
    let sent_to: Vec<String> = t
        .sim_messages()
        .iter()
        .filter_map(|m| m.params.get("To").cloned())
        .collect();
    assert!(
        sent_to.contains(&"whatsapp:+5511999990000".to_owned()),
        "{sent_to:?}"
    );

    // Twilio's signed callback, with the documented token.
    let text = read("webhook-status-callback.json");
    let callback = || lambda_http::request::from_str(&text).expect("a function URL event");
    let req = callback();
    let url = req.uri().to_string();
    let params: Vec<(String, String)> =
        serde_urlencoded::from_bytes(shared::edge::http::raw_body(&req)).unwrap();
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let expected_signature = twilio_signature(SAMPLE_AUTH_TOKEN, &url, &pairs);
    assert_eq!(
        req.headers()["x-twilio-signature"],
        expected_signature.as_str(),
        "webhook-status-callback.json is signed for {url} with the sample token"
    );
    let webhook_deps = |token: &str| webhook::Deps {
        store: h.store.clone(),
        provider: Arc::new(shared::adapters::twilio::TwilioWebhook::new(
            SecretString::from(token.to_owned()),
            None,
        )),
        reports: Arc::new(SqsQueue::new(
            t.stack.sqs.clone(),
            &t.stack.reports_queue_url,
        )),
        profile: t.stack.profile,
        rsvp_page_url: t.stack.rsvp_page_url.clone(),
    };
    let refused = webhook::handle(&webhook_deps("another-auth-token"), callback()).await;
    assert_eq!(refused.status(), 403, "the signature is checked");
    assert_eq!(stored(&h.store, QUEUED_1).await.status, Status::Sending);
    let accepted = webhook::handle(&webhook_deps(SAMPLE_AUTH_TOKEN), callback()).await;
    assert_eq!(accepted.status(), 200, "{:?}", accepted.body());
    assert_eq!(stored(&h.store, QUEUED_1).await.status, Status::Delivered);
    covered.push("webhook-status-callback.json".into());

    // A report the webhook deferred (the store was slow): its consumer
    // applies it behind the answer.
    let batch: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(&read("delivery-reports-sqs-batch.json")).expect("an SQS event");
    let consumer = delivery_reports::Deps {
        store: h.store.clone(),
        profile: t.stack.profile,
    };
    let response = delivery_reports::handle(&consumer, batch).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stored(&h.store, QUEUED_1).await.status, Status::Read);
    covered.push("delivery-reports-sqs-batch.json".into());

    // A chunk of a large send, as send-bulk writes it behind its answer:
    // its consumer admits the chunk's guests and counts them on the job.
    let large = JobId::parse("job_sample0002").unwrap();
    let event_id = EventId::parse(SAMPLE_EVENT).unwrap();
    let sam = Guest {
        guest_id: GuestId::parse("g-sam").unwrap(),
        name: "Sam".into(),
        phone: PhoneNumber::parse("+5511999990042").unwrap(),
        rsvp_token: RsvpToken::generate(),
    };
    let at = shared::domain::now();
    let chunks = AdmissionChunk::split(
        &large,
        SAMPLE_ORGANIZER,
        &event_id,
        &TemplateRef {
            template_id: TemplateId::parse("default").unwrap(),
            version: 1,
        },
        false,
        vec![sam.clone()],
        &at,
    );
    h.store
        .put_admission(
            &Job::admitting(large.clone(), event_id.clone(), SAMPLE_ORGANIZER, 1, &at),
            &chunks,
        )
        .await
        .unwrap();
    let batch: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(&read("admit-sqs-batch.json")).expect("an SQS event");
    let admitter = admit::Deps {
        store: h.store.clone(),
        queue: Arc::new(SqsQueue::new(t.stack.sqs.clone(), &t.stack.queue_url)),
        guests_per_second: 1_000,
    };
    let response = admit::handle(&admitter, batch).await;
    assert!(response.batch_item_failures.is_empty());
    let job = h.store.get_job(&large).await.unwrap().unwrap();
    assert!(!job.is_admitting());
    assert_eq!((job.total, job.count(Status::Queued)), (1, 1));
    let invited = InvitationId::for_guest(&large, &sam.guest_id);
    assert_eq!(
        stored(&h.store, invited.as_str()).await.status,
        Status::Queued
    );
    covered.push("admit-sqs-batch.json".into());

    // A guest's STOP to the sender, signed with the same sample token.
    let text = read("webhook-inbound-stop.json");
    let inbound = || lambda_http::request::from_str(&text).expect("a function URL event");
    let req = inbound();
    let url = req.uri().to_string();
    let params: Vec<(String, String)> =
        serde_urlencoded::from_bytes(shared::edge::http::raw_body(&req)).unwrap();
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        req.headers()["x-twilio-signature"],
        twilio_signature(SAMPLE_AUTH_TOKEN, &url, &pairs).as_str(),
        "webhook-inbound-stop.json is signed for {url} with the sample token"
    );
    let answer = webhook::handle(&webhook_deps(SAMPLE_AUTH_TOKEN), inbound()).await;
    assert_eq!(answer.status(), 200, "{:?}", answer.body());
    assert_eq!(answer.headers()["content-type"], "text/xml");
    let phone = PhoneNumber::parse("+5511999990009").unwrap();
    let record = h
        .store
        .get_guests_opt_out(&phone)
        .await
        .unwrap()
        .expect("recorded");
    assert!(record.opted_out);
    assert_eq!(record.keyword.as_deref(), Some("STOP"));
    covered.push("webhook-inbound-stop.json".into());

    let mut api = async |name: &str, expected: u16| {
        let (status, body) = h.call(name).await;
        assert_eq!(status, expected, "{name}: {body}");
        covered.push(name.to_owned());
        body
    };
    let retried = api("retry.json", 202).await;
    assert_eq!(retried["invitation_id"], FAILED);
    assert_eq!(retried["attempt"], 2);
    // Nothing of the job is failed any more; the call still succeeds.
    api("retry-failed.json", 202).await;

    // Without the authorizer's claims no handler does anything (API Gateway
    // rejects such requests first; the handlers don't rely on it).
    for name in covered.iter().filter(|n| {
        ![
            "sender",
            "webhook",
            "reconcile",
            "rsvp-page",
            "delivery-reports",
            "admit",
        ]
        .iter()
        .any(|f| n.starts_with(f))
    }) {
        let (route, _) = api_request(name);
        let mut raw: Value = serde_json::from_str(&read(name)).unwrap();
        raw["requestContext"]
            .as_object_mut()
            .unwrap()
            .remove("authorizer");
        let req = lambda_http::request::from_str(&raw.to_string()).unwrap();
        let (status, body) = h.call_function(route.function, req).await;
        assert_eq!(status, 401, "{name} without a JWT: {body}");
    }

    let mut samples: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    samples.sort();
    covered.sort();
    assert_eq!(covered, samples, "every sample event is exercised here");
    // Every API route has a sample.
    for route in ROUTES.iter().filter(|r| r.path != routes::WEBHOOK_PATH) {
        let key = format!("{} {}", route.method, route.path);
        assert!(
            samples
                .iter()
                .any(|s| read(s).contains(&format!("\"routeKey\": \"{key}\""))),
            "no sample event for {key}"
        );
    }
}
