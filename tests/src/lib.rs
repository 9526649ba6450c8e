//! Test harness: a whole local stack per test (its own emulators, simulator
//! and resource names), driven over real HTTP, stopped when dropped.

pub mod faults;
pub mod logs;
pub mod partitions;
pub mod template;

use faults::{FaultProxy, Faults, Policy, Report};
use local_stack::emulators::{Emulator, free_port, spawn_fauxqs, spawn_moto};
use local_stack::{AwsEndpoints, LocalStack, ResourceNames, StackOptions, TwilioSetup};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use twilio_sim::{SimConfig, SimHandle};

pub const FROM: &str = "+14155238886";

pub struct TestStack {
    pub stack: LocalStack,
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub auth_token: String,
    /// What the functions asked of AWS, through the fault layer.
    pub aws: Arc<Report>,
    _proxies: [FaultProxy; 2],
    _moto: Emulator,
    _fauxqs: Emulator,
}

impl TestStack {
    pub async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    /// Starts a stack; `adjust` may change the simulator's and the stack's options.
    pub async fn start_with(adjust: impl FnOnce(&mut SimConfig, &mut StackOptions)) -> Self {
        Self::start_under(Faults::none(), Policy::from_template(), adjust).await
    }

    /// Starts a stack whose AWS calls go through the fault layer with
    /// `faults`, each function held to its role in `policy`. Every stack the
    /// tests start goes through it, faultless by default.
    pub async fn start_under(
        faults: Faults,
        policy: Policy,
        adjust: impl FnOnce(&mut SimConfig, &mut StackOptions),
    ) -> Self {
        let (moto, fauxqs) = tokio::join!(spawn_moto(free_port()), spawn_fauxqs(free_port()));
        let (moto, fauxqs) = (moto.expect("moto starts"), fauxqs.expect("fauxqs starts"));
        let mut sim_config = SimConfig::default();
        sim_config.knobs.callback_delay_ms = 20;
        let report = Arc::new(Report::default());
        let proxies = [
            FaultProxy::start(&moto.endpoint(), faults, policy.clone(), report.clone()).await,
            FaultProxy::start(&fauxqs.endpoint(), faults, policy, report.clone()).await,
        ];
        let aws = AwsEndpoints {
            dynamodb: proxies[0].endpoint.clone(),
            sqs: proxies[1].endpoint.clone(),
            secretsmanager: proxies[0].endpoint.clone(),
        };
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let twilio = TwilioSetup {
            account_sid: sim_config.account_sid.clone(),
            auth_token: sim_config.auth_token.clone(),
            from: FROM.into(),
            api_base: String::new(),
        };
        let mut options = StackOptions::new(0, aws, ResourceNames::with_suffix(&suffix), twilio);
        // Tests want quick sends; the rate itself is measured by the benchmark.
        options.profile.rate_per_second = 50;
        // Two instances: races between them without eight pollers' load.
        options.max_concurrency = 2;
        // Every send takes its place in the daily budget, and none waits
        // unless a test lowers the limit.
        options.profile.daily_limit = shared::domain::budget::DailyLimit::Limited(100_000);
        // Seconds, not the deployed minutes, between retries.
        options.retry_backoff = sender::Backoff {
            first_seconds: 1,
            cap_seconds: 2,
        };
        adjust(&mut sim_config, &mut options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = twilio_sim::spawn(listener, sim_config.clone())
            .await
            .expect("simulator starts");
        options.twilio.api_base = sim.base_url();
        options.twilio.account_sid = sim_config.account_sid.clone();
        options.twilio.auth_token = sim_config.auth_token.clone();
        let stack = LocalStack::start(options).await.expect("stack starts");
        Self {
            stack,
            sim,
            http: reqwest::Client::new(),
            auth_token: sim_config.auth_token,
            aws: report,
            _proxies: proxies,
            _moto: moto,
            _fauxqs: fauxqs,
        }
    }

    /// A DynamoDB client that signs as `function` through the fault layer:
    /// held to that function's role and given the stack's faults.
    pub async fn dynamodb_as(&self, function: &str) -> aws_sdk_dynamodb::Client {
        let sdk = local_stack::sdk_config(function).await;
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .endpoint_url(&self._proxies[0].endpoint)
                .build(),
        )
    }

    /// The emulators' process ids (the benchmark reads their memory).
    pub fn emulator_pids(&self) -> [(&'static str, u32); 2] {
        [("moto", self._moto.pid()), ("fauxqs", self._fauxqs.pid())]
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.api_url)
    }

    pub async fn request(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.request_as(local_stack::DEV_ORGANIZER, method, path, body)
            .await
    }

    pub async fn request_as(
        &self,
        organizer: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .header(local_stack::ORGANIZER_HEADER, organizer);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request reaches the stack");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A Marketing Content template `template_id`: WhatsApp delivers none
    /// to US numbers, so a send with it skips them and messages nobody there.
    pub async fn create_marketing_template(&self, template_id: &str) {
        let (status, body) = self
            .request(
                "POST",
                "/api/whatsapp/templates",
                Some(json!({"template_id": template_id, "content_sid": "HX00000000000000000000000000000002",
                            "category": "marketing", "content_variables": {"1": "{guest_first_name}"}})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    pub async fn create_event(&self, event_id: &str) -> Value {
        let (status, body) = self
            .request(
                "PUT",
                &format!("/api/whatsapp/events/{event_id}"),
                Some(sample_event()),
            )
            .await;
        assert!(
            status == 201 || status == 200,
            "event not created: {status} {body}"
        );
        body
    }

    /// The simulator's messages once it has recorded `count` callbacks in
    /// all: it records each after the webhook answers, so a status the API
    /// already shows may not be in its record yet.
    pub async fn sim_messages_after_callbacks(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<twilio_sim::SimMessage> {
        let start = Instant::now();
        loop {
            let messages = self.sim_messages();
            let recorded: usize = messages.iter().map(|m| m.callbacks.len()).sum();
            if recorded >= count || start.elapsed() > timeout {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every create request the simulator received.
    pub fn sim_messages(&self) -> Vec<twilio_sim::SimMessage> {
        self.sim.state().messages()
    }

    /// Every invitation of an event, following the listing's cursor.
    pub async fn all_invitations(&self, event_id: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/whatsapp/invitations/{event_id}?limit=200");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, body) = self.request("GET", &path, None).await;
            assert_eq!(status, 200, "{body}");
            all.extend(body["items"].as_array().cloned().unwrap_or_default());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return all,
            }
        }
    }

    pub async fn invitations(&self, event_id: &str) -> Vec<Value> {
        let (status, body) = self
            .request(
                "GET",
                &format!("/api/whatsapp/invitations/{event_id}?limit=200"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    pub async fn invitation(&self, event_id: &str, invitation_id: &str) -> Value {
        self.invitations(event_id)
            .await
            .into_iter()
            .find(|i| i["invitation_id"] == invitation_id)
            .unwrap_or_else(|| panic!("invitation {invitation_id} not listed"))
    }

    /// Polls until `check` holds for the invitation, or panics after `timeout`.
    pub async fn wait_for_invitation(
        &self,
        event_id: &str,
        invitation_id: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let inv = self.invitation(event_id, invitation_id).await;
            if check(&inv) {
                return inv;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting; invitation is {inv}"
            );
            // Each look lists the event (a query and a batch read): polled
            // gently, so the emulator serves the stack rather than the test.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Messages visible plus in flight on a queue.
    pub async fn queue_depth(&self, queue_url: &str) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .stack
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes.unwrap_or_default();
        [
            A::ApproximateNumberOfMessages,
            A::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|a| {
            attrs
                .get(a)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
    }
}

pub fn sample_event() -> Value {
    json!({
        "name": "Spring Gala",
        "starts_at": "2027-05-01T17:00:00-03:00",
        "venue": "Casa Rosa, Rua Augusta 100",
        "host": "Marina",
        "rsvp_base_url": "https://rsvp.example.com/r/",
    })
}

pub fn guest(id: &str, name: &str, phone: &str) -> Value {
    json!({"guest_id": id, "name": name, "phone": phone})
}

impl TestStack {
    /// A WhatsApp message from `from` (E.164) to the stack's sender, posted to
    /// the webhook the way Twilio posts incoming messages, signed here.
    /// Answers the status, content type and body.
    pub async fn inbound_message(&self, from: &str, text: &str) -> (u16, String, String) {
        let from = format!("whatsapp:{from}");
        let to = format!("whatsapp:{FROM}");
        let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
        let params = [
            ("SmsMessageSid", sid.as_str()),
            ("NumMedia", "0"),
            ("ProfileName", "Guest"),
            ("MessageType", "text"),
            ("SmsSid", sid.as_str()),
            ("WaId", from.trim_start_matches("whatsapp:+")),
            ("SmsStatus", "received"),
            ("Body", text),
            ("To", to.as_str()),
            ("NumSegments", "1"),
            ("ReferralNumMedia", "0"),
            ("MessageSid", sid.as_str()),
            ("AccountSid", twilio_sim::DEFAULT_ACCOUNT_SID),
            ("From", from.as_str()),
            ("ApiVersion", "2010-04-01"),
        ];
        let url = &self.stack.webhook_url;
        let signature = twilio_signature(&self.auth_token, url, &params);
        let resp = self
            .http
            .post(url)
            .header("X-Twilio-Signature", signature)
            .header(
                "I-Twilio-Idempotency-Token",
                uuid::Uuid::new_v4().to_string(),
            )
            .form(&params)
            .send()
            .await
            .expect("the webhook answers");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, content_type, resp.text().await.unwrap())
    }

    /// `params` posted as a form to `url` (the webhook's, with any query), as
    /// Twilio posts a status callback, with `signature` as its
    /// `X-Twilio-Signature` when given. Answers the status.
    pub async fn post_callback(
        &self,
        url: &str,
        params: &[(&str, &str)],
        signature: Option<&str>,
    ) -> u16 {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(params).unwrap().into_bytes());
        if let Some(sig) = signature {
            req = req.header("X-Twilio-Signature", sig);
        }
        req.send().await.unwrap().status().as_u16()
    }

    /// [`TestStack::post_callback`], signed as Twilio signs it for `url` with
    /// the stack's auth token (signed here). Answers the status.
    pub async fn post_signed_callback(&self, url: &str, params: &[(&str, &str)]) -> u16 {
        let signature = twilio_signature(&self.auth_token, url, params);
        self.post_callback(url, params, Some(&signature)).await
    }

    /// A guest's message through the simulator's inbound route, which signs
    /// it and posts it to this stack's webhook as Twilio would: `message` as
    /// the route takes it (`from`, `body`, `reply_to`, `button`...), its `url`
    /// set here. Answers the simulator's status and answer.
    pub async fn sim_inbound(&self, mut message: Value) -> (reqwest::StatusCode, String) {
        message["url"] = json!(self.stack.webhook_url);
        let resp = self
            .http
            .post(format!("{}/_sim/inbound", self.sim.base_url()))
            .json(&message)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.text().await.unwrap())
    }

    /// How many create requests the simulator received for `phone` (E.164).
    pub fn messages_to(&self, phone: &str) -> usize {
        let to = format!("whatsapp:{phone}");
        self.sim_messages()
            .iter()
            .filter(|m| m.params.get("To") == Some(&to))
            .count()
    }

    /// `GET /api/whatsapp/opt-outs/{phone}`.
    pub async fn opt_out(&self, phone: &str) -> Value {
        let path = format!("/api/whatsapp/opt-outs/{}", phone.replace('+', "%2B"));
        let (status, body) = self.request("GET", &path, None).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// Signs like Twilio, computed here with hmac directly (not the project's signer).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, KeyInit, Mac};
    let mut sorted = params.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl TestStack {
    /// A sender instance wired to this stack, sending through `messenger`
    /// (for driving `sender::handle` directly with hand-made batches).
    pub fn sender_deps(
        &self,
        messenger: std::sync::Arc<dyn shared::ports::Messenger>,
    ) -> sender::Deps {
        let store = std::sync::Arc::new(shared::adapters::dynamo::DynamoStore::new(
            self.stack.dynamodb.clone(),
            &self.stack.names.table,
        ));
        let queue =
            shared::adapters::sqs::SqsQueue::new(self.stack.sqs.clone(), &self.stack.queue_url)
                .with_dead_letter(&self.stack.dead_letter_queue_url);
        sender::Deps {
            store,
            messenger,
            queue: std::sync::Arc::new(queue),
            rsvp_page_url: self.stack.rsvp_page_url.clone(),
            pacer: sender::Pacer::new(1000, 1).expect("1 instance at 1000 per second"),
            profile: self.stack.profile,
            max_receive_count: shared::edge::deployment::QUEUE.max_receive_count,
            backoff: sender::Backoff {
                first_seconds: 1,
                cap_seconds: 2,
            },
        }
    }

    /// The Twilio client the stack uses, pointed at this simulator (status
    /// callbacks to this stack's webhook).
    pub fn twilio_client(&self) -> shared::adapters::twilio::TwilioClient {
        let credentials = shared::adapters::twilio::TwilioCredentials {
            account_sid: twilio_sim::DEFAULT_ACCOUNT_SID.into(),
            auth_token: self.auth_token.clone().into(),
            from: shared::domain::PhoneNumber::parse(FROM).unwrap(),
        };
        shared::adapters::twilio::TwilioClient::new(
            &self.sim.base_url(),
            credentials,
            Duration::from_secs(5),
        )
        .with_status_callback(self.stack.webhook_url.clone())
    }

    /// Sends one invitation (202 expected); returns its id.
    pub async fn send_invitation(&self, event_id: &str, guest: Value) -> String {
        let body = json!({"event_id": event_id, "guest": guest});
        let (status, answer) = self
            .request("POST", "/api/whatsapp/send-invitation", Some(body))
            .await;
        assert_eq!(status, 202, "{answer}");
        answer["invitation_id"]
            .as_str()
            .expect("an invitation id")
            .to_owned()
    }

    pub async fn send_bulk(&self, event_id: &str, guests: Vec<Value>) -> Value {
        let (status, body) = self
            .request(
                "POST",
                "/api/whatsapp/send-bulk",
                Some(json!({"event_id": event_id, "guests": guests})),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body
    }

    /// `POST send-bulk` with an `Idempotency-Key`: the status and the answer.
    pub async fn send_bulk_with_key(&self, key: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url("/api/whatsapp/send-bulk"))
            .header("Idempotency-Key", key)
            .header(local_stack::ORGANIZER_HEADER, local_stack::DEV_ORGANIZER)
            .json(body)
            .send()
            .await
            .expect("request reaches the stack");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `POST /api/whatsapp/retry/{invitation_id}`: the status and the answer.
    pub async fn retry(&self, invitation_id: &Value) -> (u16, Value) {
        let id = invitation_id.as_str().expect("an invitation id");
        self.request("POST", &format!("/api/whatsapp/retry/{id}"), None)
            .await
    }

    /// `POST /api/whatsapp/retry-failed` for a job: the status and the answer.
    pub async fn retry_failed(&self, job_id: &str) -> (u16, Value) {
        let body = json!({ "job_id": job_id });
        self.request("POST", "/api/whatsapp/retry-failed", Some(body))
            .await
    }

    pub async fn job(&self, job_id: &str) -> Value {
        let (status, body) = self
            .request("GET", &format!("/api/whatsapp/status/{job_id}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls the job until `check` holds, or panics after `timeout`.
    pub async fn wait_for_job(
        &self,
        job_id: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let job = self.job(job_id).await;
            if check(&job) {
                return job;
            }
            assert!(start.elapsed() < timeout, "timed out waiting; job is {job}");
            // A job's status reads its 256 counter shards: polled gently.
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
}

/// Reconciliation every half second, with thresholds short enough for a
/// test. A claim is looked into after `sending`: longer than a sender may
/// take between claiming and Twilio's answer, as in production.
pub fn quick_reconciliation(
    options: &mut local_stack::StackOptions,
    queued: Duration,
    sending: Duration,
) {
    options.reconcile_every = Duration::from_millis(500);
    options.reconcile_thresholds = shared::app::reconcile::Thresholds {
        queued,
        sending,
        sent: Duration::from_secs(2),
    };
}

/// Asserts every invitation is counted exactly once.
pub fn assert_counts_exact(job: &Value) {
    let sum: i64 = job["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(
        sum,
        job["total"].as_i64().unwrap(),
        "counts add up to the total: {job}"
    );
}

/// How many of `invitations` are at each status.
pub fn status_counts(invitations: &[Value]) -> std::collections::BTreeMap<String, i64> {
    let mut counted = std::collections::BTreeMap::new();
    for inv in invitations {
        *counted
            .entry(inv["status"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    counted
}

/// A job's counts, the statuses it has any of.
pub fn job_counts(job: &Value) -> std::collections::BTreeMap<String, i64> {
    job["counts"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
        .filter(|(_, n)| *n != 0)
        .collect()
}

/// `n` valid guests with distinct phones.
/// `n` guests with US numbers (`us0`, `us1`, …).
pub fn us_guests(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            guest(
                &format!("us{i}"),
                "Ann",
                &format!("+1415555{:04}", 1000 + i),
            )
        })
        .collect()
}

pub fn guests(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            guest(
                &format!("g{i}"),
                &format!("Guest {i}"),
                &format!("+5511{:09}", 900_000_000 + i),
            )
        })
        .collect()
}

/// Every test holds each function to its role: a request template.yaml does
/// not grant fails the test that made it, even when the function coped.
impl Drop for TestStack {
    fn drop(&mut self) {
        let denied = self.aws.summary().denied;
        if denied.is_empty() {
            return;
        }
        let message =
            format!("AWS denied requests the roles in template.yaml do not grant: {denied:?}");
        if std::thread::panicking() {
            eprintln!("{message}");
        } else {
            panic!("{message}");
        }
    }
}

/// One SQS record carrying `body`, as Lambda hands it over on its
/// `receive_count`th receipt.
pub fn sqs_record(body: &str, receive_count: u32) -> aws_lambda_events::event::sqs::SqsMessage {
    let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
    record.message_id = Some(uuid::Uuid::new_v4().to_string());
    record.body = Some(body.to_owned());
    record
        .attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    record
}

/// The sender's event: a batch of SQS records.
pub fn sqs_batch(
    records: Vec<aws_lambda_events::event::sqs::SqsMessage>,
) -> aws_lambda_events::event::sqs::SqsEvent {
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    event.records = records;
    event
}

/// The queue's message for an invitation's first attempt, first received.
pub fn send_record(invitation_id: &str) -> aws_lambda_events::event::sqs::SqsMessage {
    sqs_record(
        &format!(r#"{{"invitation_id":"{invitation_id}","attempt":1}}"#),
        1,
    )
}
