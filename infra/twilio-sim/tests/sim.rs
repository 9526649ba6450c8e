//! Drives the simulator over HTTP the way the sender and the tests do, with a
//! small receiver standing in for the status webhook.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use twilio_sim::{Knobs, SimConfig, SimHandle, SimMessage, Stats};

const SID: &str = "AC51000000000000000000000000000001";
const TOKEN: &str = "sim-token";
const FROM: &str = "whatsapp:+15550009999";

async fn start(knobs: Knobs) -> SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SimConfig {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        knobs: Knobs {
            callback_delay_ms: 5,
            ..knobs
        },
    };
    twilio_sim::spawn(listener, config).await.unwrap()
}

fn messages_url(sim: &SimHandle) -> String {
    format!("{}/2010-04-01/Accounts/{SID}/Messages.json", sim.base_url())
}

async fn send(sim: &SimHandle, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(messages_url(sim))
        .basic_auth(SID, Some(TOKEN))
        .form(params)
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    (status, response.json().await.unwrap())
}

async fn get_json<T: serde::de::DeserializeOwned>(sim: &SimHandle, path: &str) -> T {
    let url = format!("{}{path}", sim.base_url());
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// A callback as the receiver saw it.
#[derive(Debug)]
struct Received {
    signature: String,
    params: Vec<(String, String)>,
}

impl Received {
    fn param(&self, name: &str) -> &str {
        let found = self.params.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str()).unwrap_or_default()
    }
}

/// A status webhook that answers `status` and forwards what it got.
async fn receiver(status: StatusCode) -> (String, mpsc::UnboundedReceiver<Received>) {
    async fn handle(
        State((tx, status)): State<(mpsc::UnboundedSender<Received>, StatusCode)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let signature = headers
            .get("x-twilio-signature")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let params = serde_urlencoded::from_bytes(&body).unwrap();
        tx.send(Received { signature, params }).unwrap();
        status
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/status?event=abc", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/status", post(handle))
        .with_state((tx, status));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn collect(rx: &mut mpsc::UnboundedReceiver<Received>, count: usize) -> Vec<Received> {
    let mut received = Vec::new();
    while received.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        received.push(next.expect("callback in time").unwrap());
    }
    // Nothing beyond what was expected.
    let extra = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await;
    assert!(extra.is_err(), "unexpected callback: {extra:?}");
    received
}

/// Twilio's signature, computed here rather than with the code under test.
fn expected_signature(url: &str, params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_string();
    for (name, value) in sorted {
        data.push_str(&name);
        data.push_str(&value);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Waits until the simulator has recorded `count` callbacks for its only message.
async fn recorded(sim: &SimHandle, count: usize) -> SimMessage {
    for _ in 0..100 {
        let messages: Vec<SimMessage> = get_json(sim, "/_sim/messages").await;
        if messages[0].callbacks.len() >= count {
            return messages.into_iter().next().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("callbacks not recorded");
}

fn statuses(received: &[Received]) -> Vec<&str> {
    received.iter().map(|r| r.param("MessageStatus")).collect()
}

#[tokio::test]
async fn create_answers_twilio_message_resource() {
    let sim = start(Knobs::default()).await;
    let (status, body) = send(
        &sim,
        &[
            ("To", "whatsapp:+15551234567"),
            ("From", FROM),
            ("Body", "Hola"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let sid = body["sid"].as_str().unwrap();
    assert!(sid.starts_with("SM") && sid.len() == 34);
    assert_eq!(body["account_sid"], SID);
    assert_eq!(body["to"], "whatsapp:+15551234567");
    assert_eq!(body["from"], FROM);
    assert_eq!(body["body"], "Hola");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["num_segments"], "1");
    assert_eq!(body["direction"], "outbound-api");
    assert_eq!(body["api_version"], "2010-04-01");
    assert!(body["date_created"].as_str().unwrap().ends_with("+0000"));
    assert!(body["error_code"].is_null() && body["error_message"].is_null());
    assert!(body["messaging_service_sid"].is_null() && body["price"].is_null());
    assert_eq!(
        body["uri"],
        format!("/2010-04-01/Accounts/{SID}/Messages/{sid}.json")
    );
}

#[tokio::test]
async fn sends_signed_callbacks_and_records_them() {
    let sim = start(Knobs::default()).await;
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let params = [
        ("To", "whatsapp:+15551234567"),
        ("From", FROM),
        ("ContentSid", "HX00000000000000000000000000000002"),
        ("ContentVariables", r#"{"1":"Ana"}"#),
        ("StatusCallback", url.as_str()),
    ];
    let (status, body) = send(&sim, &params).await;
    assert_eq!(status, StatusCode::CREATED);
    let sid = body["sid"].as_str().unwrap();

    let received = collect(&mut rx, 3).await;
    assert_eq!(statuses(&received), ["sent", "delivered", "read"]);
    for callback in &received {
        assert_eq!(
            callback.signature,
            expected_signature(&url, &callback.params)
        );
        assert_eq!(callback.param("AccountSid"), SID);
        assert_eq!(callback.param("MessageSid"), sid);
        assert_eq!(callback.param("SmsSid"), sid);
        assert_eq!(callback.param("SmsStatus"), callback.param("MessageStatus"));
        assert_eq!(callback.param("To"), "whatsapp:+15551234567");
        assert_eq!(callback.param("From"), FROM);
        assert_eq!(callback.param("ApiVersion"), "2010-04-01");
        assert_eq!(callback.param("ChannelPrefix"), "whatsapp");
        assert_eq!(callback.param("ChannelToAddress"), "+15551234567");
        assert!(callback.params.iter().all(|(n, _)| n != "ErrorCode"));
    }

    let message = recorded(&sim, 3).await;
    assert_eq!(message.sid, sid);
    let sent: BTreeMap<String, String> = params
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(message.params, sent);
    let callbacks: Vec<_> = message
        .callbacks
        .iter()
        .map(|c| (c.status.as_str(), c.http_status))
        .collect();
    assert_eq!(
        callbacks,
        [("sent", 200), ("delivered", 200), ("read", 200)]
    );
    assert!(message.received_at_ms > 1_600_000_000_000);
}

#[tokio::test]
async fn records_what_the_callback_target_answered() {
    let sim = start(Knobs::default()).await;
    let (url, mut rx) = receiver(StatusCode::FORBIDDEN).await;
    let unreachable = "http://127.0.0.1:1/status";
    let to = ("To", "whatsapp:+15551234567");
    send(
        &sim,
        &[to, ("From", FROM), ("Body", "a"), ("StatusCallback", &url)],
    )
    .await;
    collect(&mut rx, 3).await;
    assert!(
        recorded(&sim, 3)
            .await
            .callbacks
            .iter()
            .all(|c| c.http_status == 403)
    );

    sim.state().reset(false);
    let callback = ("StatusCallback", unreachable);
    send(&sim, &[to, ("From", FROM), ("Body", "b"), callback]).await;
    assert!(
        recorded(&sim, 3)
            .await
            .callbacks
            .iter()
            .all(|c| c.http_status == 0)
    );
}

#[tokio::test]
async fn rejects_bad_credentials() {
    let sim = start(Knobs::default()).await;
    let client = reqwest::Client::new();
    let form = [
        ("To", "whatsapp:+15551234567"),
        ("From", FROM),
        ("Body", "x"),
    ];
    let other_account = format!(
        "{}/2010-04-01/Accounts/ACother/Messages.json",
        sim.base_url()
    );
    let attempts = [
        client
            .post(messages_url(&sim))
            .basic_auth(SID, Some("wrong")),
        client
            .post(messages_url(&sim))
            .basic_auth("ACother", Some(TOKEN)),
        client.post(messages_url(&sim)),
        client.post(other_account).basic_auth(SID, Some(TOKEN)),
    ];
    for attempt in attempts {
        let response = attempt.form(&form).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], 20003);
        assert_eq!(body["message"], "Authenticate");
        assert_eq!(body["status"], 401);
        assert_eq!(
            body["more_info"],
            "https://www.twilio.com/docs/errors/20003"
        );
    }
    let stats: Stats = get_json(&sim, "/_sim/stats").await;
    assert_eq!((stats.rejected, stats.accepted), (4, 0));
}

#[tokio::test]
async fn validates_like_twilio() {
    let sim = start(Knobs::default()).await;
    let to = ("To", "whatsapp:+15551234567");
    let template = ("ContentSid", "HX00000000000000000000000000000002");
    let cases: [(&[(&str, &str)], u64); 10] = [
        (&[("From", FROM), ("Body", "x")], 21604),
        (&[to, ("Body", "x")], 21603),
        (
            &[to, ("From", FROM), ("Body", "x"), ("RiskCheck", "maybe")],
            20001,
        ),
        (
            &[to, ("From", FROM), ("Body", "x"), ("StatusCallback", "/x")],
            21609,
        ),
        (
            &[("To", "+15551234567"), ("From", FROM), ("Body", "x")],
            21211,
        ),
        (&[to, ("From", "whatsapp:555"), ("Body", "x")], 21212),
        (&[to, ("From", FROM)], 21602),
        (&[to, ("From", FROM), ("ContentSid", "HXunknown")], 21656),
        // Of Twilio's form, but not a template the simulator knows.
        (
            &[
                to,
                ("From", FROM),
                ("ContentSid", "HX0000000000000000000000000000000f"),
            ],
            21656,
        ),
        (
            &[
                to,
                ("From", FROM),
                template,
                ("ContentVariables", r#"{"1":2}"#),
            ],
            21656,
        ),
    ];
    for (params, code) in cases {
        let (status, body) = send(&sim, params).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params:?}");
        assert_eq!(body["code"], code, "{params:?}");
        assert_eq!(body["status"], 400);
    }
    let messages: Vec<SimMessage> = get_json(&sim, "/_sim/messages").await;
    assert!(messages.is_empty());
}

#[tokio::test]
async fn fail_numbers_are_rejected_with_their_code() {
    let knobs = Knobs {
        fail_numbers: [
            ("+15550000001".into(), 21211),
            ("+15550000002".into(), 63024),
        ]
        .into(),
        ..Knobs::default()
    };
    let sim = start(knobs).await;
    let (status, body) = send(
        &sim,
        &[
            ("To", "whatsapp:+15550000001"),
            ("From", FROM),
            ("Body", "x"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 21211);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid 'To' Phone Number")
    );
    let (_, body) = send(
        &sim,
        &[
            ("To", "whatsapp:+15550000002"),
            ("From", FROM),
            ("Body", "x"),
        ],
    )
    .await;
    assert_eq!(body["code"], 63024);
    let messages: Vec<SimMessage> = get_json(&sim, "/_sim/messages").await;
    assert!(messages.is_empty());
    assert_eq!(sim.state().stats().rejected, 2);
}

#[tokio::test]
async fn rate_limit_answers_429() {
    let sim = start(Knobs {
        rate_limit_per_second: 2,
        ..Knobs::default()
    })
    .await;
    let mut limited = 0;
    for _ in 0..6 {
        let (status, body) = send(
            &sim,
            &[
                ("To", "whatsapp:+15551234567"),
                ("From", FROM),
                ("Body", "x"),
            ],
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["code"], 20429);
            assert_eq!(body["status"], 429);
            limited += 1;
        }
    }
    // Six quick requests span at most two wall-clock seconds, so two of each.
    assert!(limited >= 2, "only {limited} rate limited");
    let stats = sim.state().stats();
    assert_eq!(stats.rate_limited, limited);
    assert_eq!(stats.accepted, 6 - limited);
    assert_eq!(stats.max_per_second, 2);
    assert_eq!(sim.state().messages().len() as u64, stats.accepted);
}

#[tokio::test]
async fn reorders_and_duplicates_callbacks() {
    let sim = start(Knobs {
        reorder_callbacks: true,
        ..Knobs::default()
    })
    .await;
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let params = [
        ("To", "whatsapp:+15551234567"),
        ("From", FROM),
        ("Body", "x"),
        ("StatusCallback", url.as_str()),
    ];
    send(&sim, &params).await;
    assert_eq!(
        statuses(&collect(&mut rx, 3).await),
        ["read", "delivered", "sent"]
    );

    let patch = json!({"reorder_callbacks": false, "duplicate_callbacks": true});
    sim.state().patch_knobs(patch).unwrap();
    send(&sim, &params).await;
    let received = collect(&mut rx, 6).await;
    assert_eq!(
        statuses(&received),
        ["sent", "sent", "delivered", "delivered", "read", "read"]
    );
    assert_eq!(received[0].signature, received[1].signature);
}

#[tokio::test]
async fn undelivered_and_outside_session_window() {
    let sim = start(Knobs {
        undelivered_numbers: [("+15550000003".into(), 30006)].into(),
        enforce_session_window: true,
        session_open_numbers: ["+15550000003".into()].into(),
        ..Knobs::default()
    })
    .await;
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let callback = ("StatusCallback", url.as_str());

    send(
        &sim,
        &[
            ("To", "whatsapp:+15550000003"),
            ("From", FROM),
            ("Body", "x"),
            callback,
        ],
    )
    .await;
    let received = collect(&mut rx, 2).await;
    assert_eq!(statuses(&received), ["sent", "undelivered"]);
    assert_eq!(received[1].param("ErrorCode"), "30006");
    assert_eq!(
        received[1].signature,
        expected_signature(&url, &received[1].params)
    );

    // Free-form outside the window is accepted, then fails.
    let to = ("To", "whatsapp:+15550000004");
    let (status, _) = send(&sim, &[to, ("From", FROM), ("Body", "x"), callback]).await;
    assert_eq!(status, StatusCode::CREATED);
    let received = collect(&mut rx, 1).await;
    assert_eq!(statuses(&received), ["failed"]);
    assert_eq!(received[0].param("ErrorCode"), "63016");

    // A template needs no open window.
    let template = ("ContentSid", "HX00000000000000000000000000000002");
    send(&sim, &[to, ("From", FROM), template, callback]).await;
    assert_eq!(
        statuses(&collect(&mut rx, 3).await),
        ["sent", "delivered", "read"]
    );

    // A Marketing one is not delivered to a US number, as WhatsApp does not;
    // elsewhere it is.
    let marketing = ("ContentSid", "HX00000000000000000000000000000001");
    send(&sim, &[to, ("From", FROM), marketing, callback]).await;
    let received = collect(&mut rx, 1).await;
    assert_eq!(statuses(&received), ["failed"]);
    assert_eq!(received[0].param("ErrorCode"), "63049");
    let brazil = ("To", "whatsapp:+5511999990001");
    send(&sim, &[brazil, ("From", FROM), marketing, callback]).await;
    assert_eq!(
        statuses(&collect(&mut rx, 3).await),
        ["sent", "delivered", "read"]
    );
}

#[tokio::test]
async fn injected_server_errors_and_timeouts() {
    let sim = start(Knobs {
        error_5xx_ratio: 1.0,
        ..Knobs::default()
    })
    .await;
    let params = [
        ("To", "whatsapp:+15551234567"),
        ("From", FROM),
        ("Body", "x"),
    ];
    let (status, body) = send(&sim, &params).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], 20500);

    let patch = json!({"error_5xx_ratio": 0.0, "timeout_ratio": 1.0, "timeout_hang_ms": 10});
    sim.state().patch_knobs(patch).unwrap();
    let (status, _) = send(&sim, &params).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);

    let stats = sim.state().stats();
    assert_eq!(
        (stats.server_errors, stats.timeouts, stats.accepted),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn config_roundtrip_and_reset() {
    let sim = start(Knobs::default()).await;
    let client = reqwest::Client::new();
    let config_url = format!("{}/_sim/config", sim.base_url());
    let initial: Knobs = get_json(&sim, "/_sim/config").await;
    assert_eq!(initial.callback_delay_ms, 5);

    let patch = json!({"latency_ms": 1, "fail_numbers": {"+15550000001": 21610}});
    let response = client.post(&config_url).json(&patch).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answered: Knobs = response.json().await.unwrap();
    let read: Knobs = get_json(&sim, "/_sim/config").await;
    assert_eq!(answered, read);
    assert_eq!(read.latency_ms, 1);
    assert_eq!(read.fail_numbers["+15550000001"], 21610);
    assert_eq!(read.content_sids, initial.content_sids);

    for bad in [json!({"latency": 1}), json!({"timeout_ratio": 3})] {
        let response = client.post(&config_url).json(&bad).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
    }

    send(
        &sim,
        &[
            ("To", "whatsapp:+15551234567"),
            ("From", FROM),
            ("Body", "x"),
        ],
    )
    .await;
    let reset = |query: &'static str| {
        let url = format!("{}/_sim/reset{query}", sim.base_url());
        client.post(url).send()
    };
    assert_eq!(reset("").await.unwrap().status().as_u16(), 204);
    assert!(sim.state().messages().is_empty());
    assert_eq!(sim.state().stats(), Stats::default());
    assert_eq!(sim.state().knobs().latency_ms, 1);

    reset("?knobs=1").await.unwrap();
    assert_eq!(sim.state().knobs(), initial);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_inbound_message_is_posted_signed_and_opens_the_session_window() {
    let sim = start(Knobs {
        enforce_session_window: true,
        ..Knobs::default()
    })
    .await;
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let client = reqwest::Client::new();
    let inbound = format!("{}/_sim/inbound", sim.base_url());
    let answer: Value = client
        .post(&inbound)
        .json(&json!({"from": "+15550000005", "body": "STOP", "url": url}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["http_status"], 200, "{answer}");
    let received = collect(&mut rx, 1).await;
    let message = &received[0];
    assert_eq!(message.param("From"), "whatsapp:+15550000005");
    assert_eq!(message.param("To"), "whatsapp:+14155238886");
    assert_eq!(message.param("Body"), "STOP");
    assert_eq!(message.param("AccountSid"), SID);
    assert!(message.param("MessageSid").starts_with("SM"));
    assert_eq!(message.param("MessageStatus"), "", "not a status callback");
    assert_eq!(message.signature, expected_signature(&url, &message.params));

    // The guest wrote, so a free-form message now reaches them.
    let knobs: Knobs = get_json(&sim, "/_sim/config").await;
    assert!(knobs.session_open_numbers.contains("+15550000005"));
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let to = ("To", "whatsapp:+15550000005");
    send(
        &sim,
        &[to, ("From", FROM), ("Body", "x"), ("StatusCallback", &url)],
    )
    .await;
    assert_eq!(
        statuses(&collect(&mut rx, 3).await),
        ["sent", "delivered", "read"]
    );

    let status = client
        .post(&inbound)
        .json(&json!({"from": "5550000005", "body": "hi", "url": url}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
}

#[tokio::test]
async fn reads_are_checked_against_twilios_spec() {
    let sim = start(Knobs::default()).await;
    let client = reqwest::Client::new();
    let get = |path: &str, query: &[(&str, &str)]| {
        client
            .get(format!(
                "{}/2010-04-01/Accounts/{SID}/{path}",
                sim.base_url()
            ))
            .basic_auth(SID, Some(TOKEN))
            .query(query)
            .send()
    };
    let response = get("Messages/SMnope.json", &[]).await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 20404);
    assert_eq!(
        body["message"],
        format!(
            "The requested resource /2010-04-01/Accounts/{SID}/Messages/SMnope.json was not found"
        )
    );
    let unknown = "Messages/SM0123456789abcdef0123456789abcdef.json";
    assert_eq!(get(unknown, &[]).await.unwrap().status().as_u16(), 404);

    let response = get("Messages.json", &[("PageSize", "0")]).await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 20001);
    assert!(
        body["message"].as_str().unwrap().contains("PageSize"),
        "{body}"
    );
    let since = [
        ("DateSent>", "2026-04-14T09:26:42.123Z"),
        ("PageSize", "20"),
    ];
    let response = get("Messages.json", &since).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn an_account_sid_not_of_twilios_form_names_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SimConfig {
        account_sid: "ACsim".into(),
        auth_token: TOKEN.into(),
        knobs: Knobs::default(),
    };
    let sim = twilio_sim::spawn(listener, config).await.unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "{}/2010-04-01/Accounts/ACsim/Messages.json",
            sim.base_url()
        ))
        .basic_auth("ACsim", Some(TOKEN))
        .form(&[
            ("To", "whatsapp:+15551234567"),
            ("From", FROM),
            ("Body", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 20404);
    assert!(sim.state().messages().is_empty());
}

/// A Utility template from `from` to `to` (no Marketing rule applies):
/// answers the create's HTTP status and its callbacks' statuses, with the
/// last one's ErrorCode.
async fn send_template(
    sim: &SimHandle,
    url: &str,
    rx: &mut mpsc::UnboundedReceiver<Received>,
    from: &[(&str, &str)],
    to: &str,
) -> (StatusCode, Vec<String>, String) {
    let mut params = vec![
        ("To", to),
        ("ContentSid", "HX00000000000000000000000000000002"),
        ("StatusCallback", url),
    ];
    params.extend_from_slice(from);
    let (status, body) = send(sim, &params).await;
    assert_eq!(body["to"], to, "{body}");
    let (mut statuses, mut code) = (Vec::new(), String::new());
    while !matches!(statuses.last().map(String::as_str), Some("read" | "failed")) {
        let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        let callback = next.expect("callback in time").unwrap();
        assert_eq!(callback.param("MessageSid"), body["sid"]);
        statuses.push(callback.param("MessageStatus").to_string());
        code = callback.param("ErrorCode").to_string();
    }
    (status, statuses, code)
}

/// Most unique recipients one sender reached, counting messages that went
/// out (not failed) to guests outside `session_open`, in any trailing window
/// of `window_ms` ending at one of its messages.
fn most_recipients_in_a_window(
    messages: &[SimMessage],
    window_ms: u64,
    session_open: &[&str],
) -> usize {
    let counted: Vec<&SimMessage> = messages
        .iter()
        .filter(|m| m.status != "failed")
        .filter(|m| !session_open.iter().any(|n| m.params["To"].ends_with(n)))
        .collect();
    let sender = |m: &SimMessage| {
        let service = m.params.get("MessagingServiceSid");
        service.unwrap_or(&m.params["From"]).clone()
    };
    counted
        .iter()
        .map(|end| {
            let recipients: std::collections::BTreeSet<&str> = counted
                .iter()
                .filter(|m| sender(m) == sender(end))
                .filter(|m| m.received_at_ms <= end.received_at_ms)
                .filter(|m| end.received_at_ms - m.received_at_ms < window_ms)
                .map(|m| m.params["To"].as_str())
                .collect();
            recipients.len()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn the_daily_limit_fails_new_recipients_past_it_with_63018() {
    let sim = start(Knobs {
        daily_limit: Some(3),
        daily_window_seconds: 2,
        ..Knobs::default()
    })
    .await;
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let from = [("From", FROM)];
    let read = ["sent", "delivered", "read"];
    for n in 1..=3 {
        let to = format!("whatsapp:+1555000000{n}");
        let (status, statuses, _) = send_template(&sim, &url, &mut rx, &from, &to).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(statuses, read);
    }

    // A fourth guest: accepted, as Twilio accepts it, then failed with 63018.
    let fourth = "whatsapp:+15550000004";
    let (status, statuses, code) = send_template(&sim, &url, &mut rx, &from, fourth).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(statuses, ["failed"]);
    assert_eq!(code, "63018");
    let failed = sim.state().messages().pop().unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.error_code),
        ("failed", Some(63018))
    );

    // A guest already counted is reached again; another sender has a limit of its own.
    let first = "whatsapp:+15550000001";
    let (_, statuses, _) = send_template(&sim, &url, &mut rx, &from, first).await;
    assert_eq!(statuses, read);
    let service = [
        ("From", FROM),
        ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
    ];
    let (_, statuses, _) = send_template(&sim, &url, &mut rx, &service, fourth).await;
    assert_eq!(statuses, read);

    // Once the window has passed every counted message, new guests count afresh.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for to in [fourth, "whatsapp:+15550000005"] {
        let (_, statuses, _) = send_template(&sim, &url, &mut rx, &from, to).await;
        assert_eq!(statuses, read, "{to}");
    }

    let stats: Stats = get_json(&sim, "/_sim/stats").await;
    assert_eq!((stats.accepted, stats.daily_limited), (8, 1));
    assert_eq!(stats.max_daily_recipients, 3);
    let messages: Vec<SimMessage> = get_json(&sim, "/_sim/messages").await;
    assert_eq!(most_recipients_in_a_window(&messages, 2000, &[]), 3);
}

#[tokio::test]
async fn a_guest_who_wrote_does_not_count_toward_the_daily_limit() {
    let sim = start(Knobs::default()).await;
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let client = reqwest::Client::new();
    // Set at runtime, as the other knobs can be.
    let config = format!("{}/_sim/config", sim.base_url());
    let patch = json!({"daily_limit": 1, "daily_window_seconds": 60});
    let response = client.post(&config).json(&patch).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let knobs: Knobs = response.json().await.unwrap();
    assert_eq!(
        (knobs.daily_limit, knobs.daily_window_seconds),
        (Some(1), 60)
    );

    let from = [("From", FROM)];
    let read = ["sent", "delivered", "read"];
    let (_, statuses, _) = send_template(&sim, &url, &mut rx, &from, "whatsapp:+15550000001").await;
    assert_eq!(statuses, read);

    // The guest writes first: replies within their session are not counted.
    let inbound = json!({"from": "+15550000002", "body": "Hi", "url": url});
    let inbound_url = format!("{}/_sim/inbound", sim.base_url());
    client
        .post(&inbound_url)
        .json(&inbound)
        .send()
        .await
        .unwrap();
    assert_eq!(collect(&mut rx, 1).await[0].param("Body"), "Hi");
    for _ in 0..2 {
        let (_, statuses, _) =
            send_template(&sim, &url, &mut rx, &from, "whatsapp:+15550000002").await;
        assert_eq!(statuses, read);
    }

    let (_, statuses, code) =
        send_template(&sim, &url, &mut rx, &from, "whatsapp:+15550000003").await;
    assert_eq!(statuses, ["failed"]);
    assert_eq!(code, "63018");
    let stats = sim.state().stats();
    assert_eq!((stats.daily_limited, stats.max_daily_recipients), (1, 1));
    let messages = sim.state().messages();
    assert_eq!(
        most_recipients_in_a_window(&messages, 60_000, &["+15550000002"]),
        1
    );
}
