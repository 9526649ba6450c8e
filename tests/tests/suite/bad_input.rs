//! Bad input answers 4xx naming the field, and writes or sends nothing.

use e2e::{TestStack, guest};
use serde_json::json;

async fn assert_nothing_written(t: &TestStack) {
    assert!(
        t.invitations("gala").await.is_empty(),
        "no invitation written"
    );
    assert_eq!(t.queue_depth(&t.stack.queue_url).await, 0, "nothing queued");
    assert!(t.sim_messages().is_empty(), "nothing sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_invitation_names_the_bad_field() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let send =
        |body: serde_json::Value| t.request("POST", "/api/whatsapp/send-invitation", Some(body));
    let cases = [
        (
            json!({"event_id": "gala", "guest": guest("g1", "Ana", "5511999990000")}),
            "guest.phone",
        ),
        (
            json!({"event_id": "gala", "guest": guest("g1", "Ana", "+55 11 99999 000x")}),
            "guest.phone",
        ),
        (
            json!({"event_id": "gala", "guest": {"guest_id": "g1", "phone": "+5511999990000"}}),
            "guest.name",
        ),
        (
            json!({"event_id": "gala", "guest": guest("g1", "  ", "+5511999990000")}),
            "guest.name",
        ),
        (
            json!({"event_id": "gala", "guest": guest("g1", "Ana\u{202E}", "+5511999990000")}),
            "guest.name",
        ),
        (
            json!({"event_id": "gala", "guest": guest("g1", "Ana\nLima", "+5511999990000")}),
            "guest.name",
        ),
        (
            json!({"event_id": "gala", "guest": guest("", "Ana", "+5511999990000")}),
            "guest.guest_id",
        ),
        (
            json!({"event_id": "gala", "guest": {"guest_id": "g1", "name": "Ana", "phone": 5511999990000u64}}),
            "guest.phone",
        ),
        (
            json!({"event_id": "nope", "guest": guest("g1", "Ana", "+5511999990000")}),
            "event_id",
        ),
        (
            json!({"guest": guest("g1", "Ana", "+5511999990000")}),
            "event_id",
        ),
        (json!({"event_id": "gala"}), "guest"),
        (
            json!({"event_id": "gala", "guest": guest("g1", "Ana", "+5511999990000"), "template_id": "missing"}),
            "template_id",
        ),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in cases {
        let (status, answer) = send(body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }

    let (status, answer) = t
        .post_raw(
            "/api/whatsapp/send-invitation",
            "application/json",
            b"{\"event_id\": \"gala\", ".to_vec(),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["field"], "body");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed JSON"),
        "{answer}"
    );

    let (status, answer) = t
        .post_raw(
            "/api/whatsapp/send-invitation",
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(status, 400, "{answer}");

    let huge =
        json!({"event_id": "gala", "guest": guest("g1", &"A".repeat(20_000), "+5511999990000")});
    let (status, answer) = t
        .post_raw(
            "/api/whatsapp/send-invitation",
            "application/json",
            huge.to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "payload_too_large");

    assert_nothing_written(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_queries_name_the_bad_field() {
    let t = TestStack::start().await;
    let mut event = e2e::sample_event();
    event["starts_at"] = json!("next friday");
    let (status, answer) = t
        .request("PUT", "/api/whatsapp/events/gala", Some(event))
        .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (400, Some("starts_at")),
        "{answer}"
    );
    let (status, answer) = t
        .request(
            "PUT",
            "/api/whatsapp/events/bad%20id",
            Some(e2e::sample_event()),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (400, Some("eventId")),
        "{answer}"
    );
    let mut event = e2e::sample_event();
    event["surprise"] = json!(1);
    let (status, answer) = t
        .request("PUT", "/api/whatsapp/events/gala", Some(event))
        .await;
    assert_eq!(status, 400, "unknown fields are refused: {answer}");
    let (status, _) = t.request("GET", "/api/whatsapp/events/gala", None).await;
    assert_eq!(status, 404, "nothing was saved");
    // An unknown field with no name is the body's fault.
    let (status, answer) = t
        .request(
            "POST",
            "/api/whatsapp/retry-failed",
            Some(json!({"job_id": "Y", "": ""})),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (400, Some("body")),
        "{answer}"
    );

    t.create_event("gala").await;
    let (status, answer) = t
        .request("GET", "/api/whatsapp/invitations/gala?status=lost", None)
        .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (400, Some("status")),
        "{answer}"
    );
    let (status, answer) = t
        .request("GET", "/api/whatsapp/invitations/gala?limit=0", None)
        .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (400, Some("limit")),
        "{answer}"
    );
    let (status, answer) = t
        .request("GET", "/api/whatsapp/invitations/gala?cursor=garbage", None)
        .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (400, Some("cursor")),
        "{answer}"
    );
    let (status, _) = t
        .request("GET", "/api/whatsapp/status/job_unknown", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = t
        .request("POST", "/api/whatsapp/retry/inv_unknown", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = t.request("GET", "/api/whatsapp/nowhere", None).await;
    assert_eq!(status, 404);
    assert_nothing_written(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_from_another_listing_names_the_cursor() {
    let t = TestStack::start_with(|_, options| options.max_concurrency = 0).await;
    for event in ["gala", "brunch"] {
        t.create_event(event).await;
        t.send_bulk(event, e2e::guests(3)).await;
    }
    let (status, page) = t
        .request("GET", "/api/whatsapp/invitations/brunch?limit=1", None)
        .await;
    assert_eq!(status, 200, "{page}");
    let cursor = page["next_cursor"].as_str().expect("a next page");
    // Brunch's cursor on the gala's listing.
    let (status, answer) = t
        .request(
            "GET",
            &format!("/api/whatsapp/invitations/gala?cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (400, Some("cursor")),
        "{answer}"
    );
    let (status, page) = t
        .request(
            "GET",
            &format!("/api/whatsapp/invitations/brunch?limit=5&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "its own listing takes it: {page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
}
