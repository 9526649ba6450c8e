//! The webhook accepts only callbacks signed the way Twilio signs them.
//! Signatures here are computed by the test itself, not the project's signer.

use e2e::{TestStack, guest, twilio_signature};
use serde_json::json;
use std::time::Duration;

/// An invitation that reached `sending` with a SID; the simulator's own
/// callbacks are switched off so only this test's callbacks arrive.
async fn sending_invitation(t: &TestStack) -> (String, String) {
    t.sim
        .state()
        .patch_knobs(json!({"undelivered_numbers": {}, "callback_delay_ms": 3_600_000}))
        .unwrap();
    t.create_event("party").await;
    let id = t
        .send_invitation("party", guest("g1", "Bo", "+5511988887777"))
        .await;
    let inv = t
        .wait_for_invitation("party", &id, Duration::from_secs(20), |i| {
            i["message_sid"].is_string()
        })
        .await;
    (id, inv["message_sid"].as_str().unwrap().to_owned())
}

fn form(params: &[(&str, &str)]) -> Vec<u8> {
    serde_urlencoded::to_string(params).unwrap().into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_callbacks_apply_and_unsigned_ones_change_nothing() {
    let t = TestStack::start().await;
    let (id, sid) = sending_invitation(&t).await;
    // Query string in the signed URL; parameters posted in non-sorted order.
    let url = format!("{}?invitation_id={id}&attempt=1", t.stack.webhook_url);
    let delivered = [
        ("MessageStatus", "delivered"),
        ("To", "whatsapp:+5511988887777"),
        ("MessageSid", sid.as_str()),
        ("AccountSid", twilio_sim::DEFAULT_ACCOUNT_SID),
        ("From", "whatsapp:+14155238886"),
        ("ApiVersion", "2010-04-01"),
    ];
    let good = twilio_signature(&t.auth_token, &url, &delivered);

    assert_eq!(
        t.post_callback(&url, &delivered, None).await,
        403,
        "missing signature"
    );
    assert_eq!(
        t.post_callback(&url, &delivered, Some("bm90IGl0")).await,
        403,
        "wrong signature"
    );
    let wrong_key = twilio_signature("another-token", &url, &delivered);
    assert_eq!(
        t.post_callback(&url, &delivered, Some(&wrong_key)).await,
        403,
        "signed with another token"
    );
    // Replay of a valid signature with an altered parameter.
    let mut altered = delivered;
    altered[0] = ("MessageStatus", "read");
    assert_eq!(
        t.post_callback(&url, &altered, Some(&good)).await,
        403,
        "altered params"
    );
    // Replay to another attempt's URL.
    let other_url = format!("{}?invitation_id={id}&attempt=2", t.stack.webhook_url);
    assert_eq!(
        t.post_callback(&other_url, &delivered, Some(&good)).await,
        403,
        "altered URL"
    );
    let inv = t.invitation("party", &id).await;
    assert_eq!(inv["status"], "sending", "nothing changed: {inv}");
    assert!(inv["timestamps"]["delivered"].is_null());

    assert_eq!(t.post_signed_callback(&url, &delivered).await, 200);
    let inv = t.invitation("party", &id).await;
    assert_eq!(inv["status"], "delivered", "{inv}");
    assert!(inv["timestamps"]["delivered"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_follow_the_forward_only_rule() {
    let t = TestStack::start().await;
    let (id, sid) = sending_invitation(&t).await;
    let url = format!("{}?invitation_id={id}&attempt=1", t.stack.webhook_url);
    let send = |status: &'static str| {
        let url = url.clone();
        let sid = sid.clone();
        let t = &t;
        async move {
            let params = [("MessageSid", sid.as_str()), ("MessageStatus", status)];
            assert_eq!(t.post_signed_callback(&url, &params).await, 200);
        }
    };
    send("read").await;
    send("delivered").await; // out of order: status stays read, its time is kept
    send("sent").await;
    send("read").await; // duplicate
    send("failed").await; // late failure after read
    let inv = t.invitation("party", &id).await;
    assert_eq!(inv["status"], "read", "{inv}");
    assert!(
        inv["timestamps"]["delivered"].is_string(),
        "late delivered time recorded: {inv}"
    );
    assert!(inv["error_code"].is_null());

    let job_id = inv["job_id"].as_str().unwrap();
    let (_, job) = t
        .request("GET", &format!("/api/whatsapp/status/{job_id}"), None)
        .await;
    assert_eq!(job["counts"]["read"], 1, "{job}");
    let total: i64 = job["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(total, 1, "counted in exactly one state: {job}");

    // A callback for an attempt the invitation is not on changes nothing.
    let old = format!("{}?invitation_id={id}&attempt=0", t.stack.webhook_url);
    let params = [
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30006"),
    ];
    assert_eq!(t.post_signed_callback(&old, &params).await, 200);
    assert_eq!(t.invitation("party", &id).await["status"], "read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_callback_records_code_and_reason() {
    let t = TestStack::start().await;
    let (id, sid) = sending_invitation(&t).await;
    let url = format!("{}?invitation_id={id}&attempt=1", t.stack.webhook_url);
    let params = [
        ("MessageStatus", "undelivered"),
        ("MessageSid", sid.as_str()),
        ("ErrorCode", "63024"),
    ];
    assert_eq!(t.post_signed_callback(&url, &params).await, 200);
    let inv = t.invitation("party", &id).await;
    assert_eq!(inv["status"], "undelivered");
    assert_eq!(inv["error_code"], "63024");
    assert!(
        inv["error_message"].as_str().unwrap().contains("WhatsApp"),
        "{inv}"
    );
}

const PUBLIC_URL: &str = "https://hooks.example.test/twilio";

/// A guest's STOP or START as Twilio posts it: signed for `signed_for`,
/// posted to the local webhook, with a delivery token when given.
async fn keyword(
    t: &TestStack,
    signed_for: &str,
    params: &[(&str, &str)],
    token: Option<&str>,
) -> u16 {
    let mut req = t
        .http
        .post(&t.stack.webhook_url)
        .header(
            "X-Twilio-Signature",
            twilio_signature(&t.auth_token, signed_for, params),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(params));
    if let Some(token) = token {
        req = req.header("I-Twilio-Idempotency-Token", token);
    }
    req.send().await.unwrap().status().as_u16()
}

fn message(from: &str, body: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("MessageSid", format!("SM{}", uuid::Uuid::new_v4().simple())),
        ("AccountSid", twilio_sim::DEFAULT_ACCOUNT_SID.to_owned()),
        ("From", format!("whatsapp:{from}")),
        ("To", "whatsapp:+14155238886".to_owned()),
        ("Body", body.to_owned()),
    ]
}

fn pairs<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn opted_out(t: &TestStack, phone: &str) -> bool {
    use shared::ports::OptOutStore;
    let store =
        shared::adapters::dynamo::DynamoStore::new(t.stack.dynamodb.clone(), &t.stack.names.table);
    store
        .get_guests_opt_out(&shared::domain::PhoneNumber::parse(phone).unwrap())
        .await
        .unwrap()
        .is_some_and(|o| o.opted_out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_for_the_custom_domain_and_either_slash_are_accepted_and_tampering_is_not() {
    let t = TestStack::start_with(|_, options| {
        options.webhook_public_url = Some(PUBLIC_URL.to_owned());
    })
    .await;
    let local = t.stack.webhook_url.clone();
    let accepted = [
        PUBLIC_URL.to_owned(),
        format!("{PUBLIC_URL}/"),
        local.clone(),
        format!("{local}/"),
    ];
    for (i, signed_for) in accepted.iter().enumerate() {
        let phone = format!("+551199999100{i}");
        let stop = message(&phone, "STOP");
        assert_eq!(
            keyword(&t, signed_for, &pairs(&stop), None).await,
            200,
            "{signed_for}"
        );
        assert!(opted_out(&t, &phone).await, "{signed_for}");
    }

    let phone = "+5511999991009";
    let stop = message(phone, "STOP");
    let stop = pairs(&stop);
    let mut tampered_body = stop.clone();
    tampered_body[2].1 = "whatsapp:+5511999991008";
    let refused: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "another host",
            form(&stop),
            "https://evil.example.test/twilio".into(),
        ),
        ("another path", form(&stop), format!("{PUBLIC_URL}/x")),
        ("a query added", form(&stop), format!("{PUBLIC_URL}?a=1")),
        (
            "http for https",
            form(&stop),
            PUBLIC_URL.replace("https", "http"),
        ),
        (
            "a changed parameter",
            form(&tampered_body),
            PUBLIC_URL.into(),
        ),
        (
            "a body that is not the signed form",
            b"%zz=%".to_vec(),
            PUBLIC_URL.into(),
        ),
    ];
    for (what, body, signed_for) in refused {
        let status = t
            .http
            .post(&local)
            .header(
                "X-Twilio-Signature",
                twilio_signature(&t.auth_token, &signed_for, &stop),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 403, "{what}");
    }
    // The signature comes first: a callback with a query the webhook could
    // not read is refused as unsigned, not as malformed.
    let status = t
        .http
        .post(format!("{local}?invitation_id=not-an-id&attempt=x"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("MessageStatus", "delivered")]))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
    assert!(!opted_out(&t, phone).await);
    assert!(!opted_out(&t, "+5511999991008").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_a_delivery_is_answered_once() {
    let t = TestStack::start().await;
    let url = t.stack.webhook_url.clone();
    let phone = "+5511999991010";
    let stop = message(phone, "STOP");
    let start = message(phone, "START");
    assert_eq!(
        keyword(&t, &url, &pairs(&stop), Some("delivery-1")).await,
        200
    );
    assert!(opted_out(&t, phone).await);
    assert_eq!(
        keyword(&t, &url, &pairs(&start), Some("delivery-2")).await,
        200
    );
    assert!(!opted_out(&t, phone).await);
    // Twilio retries the STOP (same token, same request): answered as
    // before, and the guest's later START stands.
    assert_eq!(
        keyword(&t, &url, &pairs(&stop), Some("delivery-1")).await,
        200
    );
    assert!(!opted_out(&t, phone).await, "the retry was applied again");
    // The signature comes before the delivery record: a forged request under
    // an answered token is refused, not answered.
    let forged = t
        .http
        .post(&url)
        .header("X-Twilio-Signature", "forged")
        .header("I-Twilio-Idempotency-Token", "delivery-1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&pairs(&stop)))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(forged, 403);
    // The same token on another request is another delivery.
    let again = message(phone, "STOP");
    assert_eq!(
        keyword(&t, &url, &pairs(&again), Some("delivery-1")).await,
        200
    );
    assert!(opted_out(&t, phone).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dynamodb_slow_every_status_callback_is_answered_at_once_and_applied_behind() {
    use e2e::faults::{Faults, Policy};
    let t = TestStack::start_under(Faults::none(), Policy::from_template(), |_, _| {}).await;
    t.create_event("gala").await;
    // Every DynamoDB request queued behind the others, as under throttling
    // and the SDK's retries: callbacks wait behind the sender's writes.
    t.aws.set_slow_dynamodb(Some(Duration::from_millis(100)));
    let body = t.send_bulk("gala", e2e::guests(30)).await;
    let job_id = body["job_id"].as_str().unwrap().to_owned();
    // Each of the 30 messages gets sent, delivered and read callbacks.
    let messages = t
        .sim_messages_after_callbacks(90, Duration::from_secs(240))
        .await;
    t.aws.set_slow_dynamodb(None);
    let callbacks: Vec<_> = messages.iter().flat_map(|m| &m.callbacks).collect();
    assert_eq!(callbacks.len(), 90, "{messages:?}");
    let slowest = callbacks.iter().map(|c| c.answered_in_ms).max().unwrap();
    assert!(
        callbacks.iter().all(|c| c.http_status == 200),
        "{callbacks:?}"
    );
    assert!(
        slowest < 2_000,
        "a callback took {slowest} ms: {callbacks:?}"
    );
    // Some waited in the reports queue, and every one was applied: the
    // job's counts are exact and every guest read their invitation.
    let report = t.aws.summary();
    assert!(
        report.performed["webhook"].contains(&("sqs:SendMessage".into(), "reports queue".into())),
        "the webhook deferred reports: {report:?}"
    );
    let done = t
        .wait_for_job(&job_id, Duration::from_secs(120), |j| {
            j["counts"]["read"] == 30
        })
        .await;
    e2e::assert_counts_exact(&done);
}
