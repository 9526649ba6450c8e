//! One invitation end to end through the local stack: API -> DynamoDB ->
//! SQS -> sender -> Twilio simulator -> signed callbacks -> webhook.

use e2e::{TestStack, guest};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_sent_once_and_read() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let mut g = guest("g1", "Ana Souza", "+5511999990000");
    g["rsvp_token"] = json!("tok-ana-123");
    let (status, body) = t
        .request(
            "POST",
            "/api/whatsapp/send-invitation",
            Some(json!({"event_id": "gala", "guest": g})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "queued");
    let invitation_id = body["invitation_id"].as_str().unwrap().to_owned();
    let job_id = body["job_id"].as_str().unwrap().to_owned();

    let inv = t
        .wait_for_invitation("gala", &invitation_id, Duration::from_secs(20), |i| {
            i["status"] == "read"
        })
        .await;
    for stamp in ["queued", "sending", "sent", "delivered", "read"] {
        assert!(
            inv["timestamps"][stamp].is_string(),
            "missing {stamp} timestamp: {inv}"
        );
    }
    assert_eq!(inv["attempt"], 1);

    let messages = t
        .sim_messages_after_callbacks(3, Duration::from_secs(5))
        .await;
    assert_eq!(messages.len(), 1, "exactly one message goes out");
    let sent = &messages[0];
    assert_eq!(inv["message_sid"], sent.sid.as_str());
    assert_eq!(sent.params["To"], "whatsapp:+5511999990000");
    assert_eq!(sent.params["From"], "whatsapp:+14155238886");
    let body = &sent.params["Body"];
    for expected in [
        "Ana Souza",
        "Spring Gala",
        "Saturday, 1 May 2027, 17:00",
        "Casa Rosa, Rua Augusta 100",
        "Marina",
        "https://rsvp.example.com/r/tok-ana-123",
    ] {
        assert!(body.contains(expected), "body lacks {expected:?}: {body}");
    }
    let callbacks: Vec<&str> = sent.callbacks.iter().map(|c| c.status.as_str()).collect();
    assert_eq!(callbacks, ["sent", "delivered", "read"]);
    assert!(
        sent.callbacks.iter().all(|c| c.http_status == 200),
        "webhook accepted every callback: {:?}",
        sent.callbacks
    );

    let (status, job) = t
        .request("GET", &format!("/api/whatsapp/status/{job_id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(job["total"], 1);
    assert_eq!(job["counts"]["read"], 1);
    assert_eq!(job["done"], true);
    let in_other_states: i64 = job["counts"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "read")
        .map(|(_, v)| v.as_i64().unwrap())
        .sum();
    assert_eq!(in_other_states, 0, "counted once: {job}");
}
