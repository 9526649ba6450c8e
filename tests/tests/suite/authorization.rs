//! Each organizer (the JWT `sub` API Gateway verified) sees and acts on only
//! their own events, jobs and invitations. Another organizer's ids answer
//! 404, never 403, so they don't leak; event ids are per-organizer names.

use e2e::{TestStack, guest, sample_event};
use serde_json::{Value, json};
use std::time::Duration;

const A: &str = "organizer-a";
const B: &str = "organizer-b";
/// The simulator fails sends to this number permanently (21610: opted out).
const BLOCKED: &str = "+5511977770000";

fn assert_not_found(what: &str, (status, body): (u16, Value)) {
    assert_eq!(status, 404, "{what}: {body}");
    assert_eq!(body["error"]["code"], "not_found", "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizers_only_see_and_act_on_their_own() {
    let t = TestStack::start().await;
    t.sim
        .state()
        .patch_knobs(json!({"fail_numbers": {BLOCKED: 21610}}))
        .unwrap();

    // A's event, one invitation that fails for good, and a bulk job.
    let (status, body) = t
        .request_as(A, "PUT", "/api/whatsapp/events/gala", Some(sample_event()))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, sent) = t
        .request_as(
            A,
            "POST",
            "/api/whatsapp/send-invitation",
            Some(json!({"event_id": "gala", "guest": guest("g1", "Ana", BLOCKED)})),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let invitation = sent["invitation_id"].as_str().unwrap().to_owned();
    let job = sent["job_id"].as_str().unwrap().to_owned();
    let (status, bulk) = t
        .request_as(
            A,
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": "gala", "guests": [guest("g2", "Bo", "+5511988880000")]})),
        )
        .await;
    assert_eq!(status, 202, "{bulk}");
    let bulk_job = bulk["job_id"].as_str().unwrap().to_owned();

    // Wait until A's invitation failed (so a retry by A would be allowed).
    let start = std::time::Instant::now();
    loop {
        let (status, list) = t
            .request_as(
                A,
                "GET",
                "/api/whatsapp/invitations/gala?status=failed",
                None,
            )
            .await;
        assert_eq!(status, 200, "{list}");
        if list["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["invitation_id"] == invitation))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "invitation never failed: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // B cannot read A's event, jobs or invitations...
    assert_not_found(
        "B reads A's event",
        t.request_as(B, "GET", "/api/whatsapp/events/gala", None)
            .await,
    );
    let (status, events) = t.request_as(B, "GET", "/api/whatsapp/events", None).await;
    assert_eq!(status, 200, "{events}");
    assert!(
        !events.to_string().contains("gala"),
        "B lists A's event: {events}"
    );
    for id in [&job, &bulk_job] {
        assert_not_found(
            "B reads A's job",
            t.request_as(B, "GET", &format!("/api/whatsapp/status/{id}"), None)
                .await,
        );
    }
    assert_not_found(
        "B lists A's invitations",
        t.request_as(B, "GET", "/api/whatsapp/invitations/gala", None)
            .await,
    );

    // ...nor act on them.
    assert_not_found(
        "B retries A's invitation",
        t.request_as(
            B,
            "POST",
            &format!("/api/whatsapp/retry/{invitation}"),
            None,
        )
        .await,
    );
    assert_not_found(
        "B retries A's job",
        t.request_as(
            B,
            "POST",
            "/api/whatsapp/retry-failed",
            Some(json!({"job_id": job})),
        )
        .await,
    );
    assert_not_found(
        "B retries A's event",
        t.request_as(
            B,
            "POST",
            "/api/whatsapp/retry-failed",
            Some(json!({"event_id": "gala"})),
        )
        .await,
    );
    // Sending for A's event id: B has no such event.
    for (path, body) in [
        (
            "/api/whatsapp/send-invitation",
            json!({"event_id": "gala", "guest": guest("g9", "Zed", "+5511966660000")}),
        ),
        (
            "/api/whatsapp/send-bulk",
            json!({"event_id": "gala", "guests": [guest("g9", "Zed", "+5511966660000")]}),
        ),
    ] {
        let (status, body) = t.request_as(B, "POST", path, Some(body)).await;
        assert_eq!(status, 400, "B sends for A's event via {path}: {body}");
        assert_eq!(body["error"]["field"], "event_id", "{body}");
    }
    assert!(
        !t.sim_messages().iter().any(|m| m
            .params
            .get("To")
            .is_some_and(|to| to.ends_with("+5511966660000"))),
        "nothing was sent for B"
    );

    // A's invitation is untouched by B's attempts; A may retry it.
    let (_, list) = t
        .request_as(A, "GET", "/api/whatsapp/invitations/gala", None)
        .await;
    let inv = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["invitation_id"] == invitation.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("A lists its invitation: {list}"));
    assert_eq!(inv["attempt"], 1, "{inv}");
    assert_eq!(inv["status"], "failed", "{inv}");

    // B's own event of the same id is a different event.
    let mut b_event = sample_event();
    b_event["name"] = "B's barbecue".into();
    let (status, body) = t
        .request_as(B, "PUT", "/api/whatsapp/events/gala", Some(b_event))
        .await;
    assert_eq!(
        status, 201,
        "B creates its own 'gala', not updates A's: {body}"
    );
    let (_, a_view) = t
        .request_as(A, "GET", "/api/whatsapp/events/gala", None)
        .await;
    let (_, b_view) = t
        .request_as(B, "GET", "/api/whatsapp/events/gala", None)
        .await;
    assert_eq!(a_view["name"], "Spring Gala", "{a_view}");
    assert_eq!(b_view["name"], "B's barbecue", "{b_view}");
    let (status, b_list) = t
        .request_as(B, "GET", "/api/whatsapp/invitations/gala", None)
        .await;
    assert_eq!(status, 200, "{b_list}");
    assert_eq!(b_list["items"], json!([]), "B sees none of A's invitations");
    // B still cannot reach A's job or invitation through its own 'gala'.
    assert_not_found(
        "B reads A's job",
        t.request_as(B, "GET", &format!("/api/whatsapp/status/{job}"), None)
            .await,
    );
    assert_not_found(
        "B retries A's invitation",
        t.request_as(
            B,
            "POST",
            &format!("/api/whatsapp/retry/{invitation}"),
            None,
        )
        .await,
    );

    // A still sees and acts on all of its own.
    let (status, body) = t
        .request_as(A, "GET", &format!("/api/whatsapp/status/{job}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 1);
    let (status, list) = t
        .request_as(A, "GET", "/api/whatsapp/invitations/gala", None)
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
    let (status, body) = t
        .request_as(
            A,
            "POST",
            &format!("/api/whatsapp/retry/{invitation}"),
            None,
        )
        .await;
    assert_eq!(status, 202, "A retries its own invitation: {body}");
    assert_eq!(body["attempt"], 2);
}
