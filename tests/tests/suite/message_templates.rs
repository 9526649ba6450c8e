//! Templates organizers manage, end to end: what a preview shows is what
//! the guest gets; bad templates are refused whole; versions are kept and
//! recorded on invitations; Content templates go out as ContentSid and
//! ContentVariables, which WhatsApp delivers outside the 24-hour window
//! where a free-form body fails with 63016.

use e2e::{TestStack, assert_counts_exact, guest};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
/// A Content template SID the simulator knows.
const CONTENT_SID: &str = "HX00000000000000000000000000000001";

async fn send(t: &TestStack, body: Value) -> Value {
    let (status, answer) = t
        .request("POST", "/api/whatsapp/send-invitation", Some(body))
        .await;
    assert_eq!(status, 202, "{answer}");
    answer
}

async fn send_bulk(t: &TestStack, body: Value) -> Value {
    let (status, answer) = t
        .request("POST", "/api/whatsapp/send-bulk", Some(body))
        .await;
    assert_eq!(status, 202, "{answer}");
    answer
}

async fn create_template(t: &TestStack, body: Value) -> Value {
    let (status, answer) = t
        .request("POST", "/api/whatsapp/templates", Some(body))
        .await;
    assert_eq!(status, 201, "{answer}");
    answer
}

/// The one message the simulator got for `phone`.
fn sent_to(t: &TestStack, phone: &str) -> BTreeMap<String, String> {
    let to = format!("whatsapp:{phone}");
    let mut found: Vec<_> = t
        .sim_messages()
        .into_iter()
        .filter(|m| m.params.get("To") == Some(&to))
        .collect();
    assert_eq!(found.len(), 1, "one message to {phone}: {found:?}");
    found.remove(0).params
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_templates_preview_is_exactly_what_the_guest_receives() {
    let t = TestStack::start().await;
    t.create_event("gala").await;

    // Every organizer has `default`, version 1, and the variables are listed.
    let (status, list) = t.request("GET", "/api/whatsapp/templates", None).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["template_id"])
        .collect();
    assert_eq!(ids, [&json!("default")], "{list}");
    assert_eq!(list["items"][0]["version"], 1);
    assert!(
        list["items"][0]["text"]
            .as_str()
            .unwrap()
            .contains("{rsvp_link}")
    );
    let names: Vec<&str> = list["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for name in [
        "guest_name",
        "guest_first_name",
        "event_name",
        "event_date",
        "event_venue",
        "event_host",
        "rsvp_link",
    ] {
        assert!(names.contains(&name), "{name} is documented: {list}");
    }

    let mut ana = guest("g1", "Ana Souza", "+5511999990000");
    ana["rsvp_token"] = json!("tok-ana-123");
    let (status, preview) = t
        .request(
            "POST",
            "/api/whatsapp/templates/default/preview",
            Some(json!({"event_id": "gala", "guest": ana})),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let body = preview["body"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        "Hi Ana Souza! Marina invites you to Spring Gala on Saturday, 1 May 2027, 17:00 at Casa Rosa, Rua Augusta 100.\nPlease let us know if you can come: https://rsvp.example.com/r/tok-ana-123"
    );
    assert_eq!(preview["length"], body.chars().count());
    assert_eq!(preview["max_length"], 1600);
    assert_eq!(preview["version"], 1);
    assert!(preview["content_sid"].is_null());
    assert!(t.sim_messages().is_empty(), "a preview sends nothing");

    let sent = send(&t, json!({"event_id": "gala", "guest": ana})).await;
    assert_eq!(sent["template_id"], "default");
    assert_eq!(sent["template_version"], 1);
    let id = sent["invitation_id"].as_str().unwrap();
    let inv = t
        .wait_for_invitation("gala", id, WAIT, |i| i["status"] == "read")
        .await;
    assert_eq!(inv["template_id"], "default");
    assert_eq!(inv["template_version"], 1);
    assert_eq!(sent_to(&t, "+5511999990000")["Body"], body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_template_is_refused_naming_where_and_nothing_is_saved() {
    let t = TestStack::start_with(|_, options| options.max_concurrency = 0).await;
    let refused = |body: Value, field: &'static str, needles: &'static [&'static str]| {
        let t = &t;
        async move {
            let (status, answer) = t
                .request("POST", "/api/whatsapp/templates", Some(body.clone()))
                .await;
            assert_eq!(status, 400, "{body} -> {answer}");
            assert_eq!(answer["error"]["code"], "invalid_request");
            assert_eq!(answer["error"]["field"], field, "{answer}");
            let message = answer["error"]["message"].as_str().unwrap();
            for needle in needles {
                assert!(message.contains(needle), "{needle:?} not in {message:?}");
            }
        }
    };
    refused(
        json!({"template_id": "t1", "text": "Hi {guest_name}!\nSee you at {event_venue"}),
        "text",
        &["line 2, column", "text:"],
    )
    .await;
    refused(
        json!({"template_id": "t1", "text": "Hi {guest_nmae}, welcome"}),
        "text",
        &[
            "unknown variable 'guest_nmae'",
            "line 1, column 5",
            "guest_first_name",
        ],
    )
    .await;
    // Hidden in a branch the sample values would not take.
    refused(
        json!({"template_id": "t1", "text": "{{ if event_host }}Hosted.{{ else }}{host}{{ endif }}"}),
        "text",
        &["unknown variable 'host'"],
    )
    .await;
    refused(
        json!({"template_id": "t1", "text": "x".repeat(1601)}),
        "text",
        &["1600"],
    )
    .await;
    refused(
        json!({"template_id": "t1", "content_sid": CONTENT_SID, "content_variables": {"1": "{guest}"}}),
        "content_variables.1",
        &["unknown variable 'guest'"],
    )
    .await;
    refused(
        json!({"template_id": "t1", "content_sid": "HX12", "content_variables": {}}),
        "content_sid",
        &["HX"],
    )
    .await;
    refused(
        json!({"template_id": "t1", "text": "Hi", "content_sid": CONTENT_SID}),
        "content_sid",
        &["not both"],
    )
    .await;
    refused(
        json!({"template_id": "t 1", "text": "Hi"}),
        "template_id",
        &[],
    )
    .await;

    let (status, _) = t.request("GET", "/api/whatsapp/templates/t1", None).await;
    assert_eq!(status, 404, "nothing was saved");
    let (_, list) = t.request("GET", "/api/whatsapp/templates", None).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "only default: {list}"
    );

    // An update with an error leaves the current version as it was.
    create_template(
        &t,
        json!({"template_id": "t1", "text": "Hi {guest_first_name}"}),
    )
    .await;
    let (status, answer) = t
        .request(
            "PUT",
            "/api/whatsapp/templates/t1",
            Some(json!({"text": "Hi {{ if guest_name }}"})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "text");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{answer}"
    );
    let (_, current) = t.request("GET", "/api/whatsapp/templates/t1", None).await;
    assert_eq!(current["version"], 1, "{current}");
    assert_eq!(current["text"], "Hi {guest_first_name}");
    let (status, _) = t
        .request("GET", "/api/whatsapp/templates/t1?version=2", None)
        .await;
    assert_eq!(status, 404);
    // And a template's id is taken once.
    let (status, answer) = t
        .request(
            "POST",
            "/api/whatsapp/templates",
            Some(json!({"template_id": "t1", "text": "Hello"})),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    let (status, _) = t
        .request(
            "POST",
            "/api/whatsapp/templates",
            Some(json!({"template_id": "default", "text": "Hello"})),
        )
        .await;
    assert_eq!(status, 409, "default exists from the start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_kept_and_each_send_uses_request_then_event_then_default() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let v1 = create_template(
        &t,
        json!({"template_id": "formal", "name": "Formal", "text": "Dear {guest_name}, v1."}),
    )
    .await;
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["name"], "Formal");
    let (status, v2) = t
        .request(
            "PUT",
            "/api/whatsapp/templates/formal",
            Some(json!({"name": "Formal", "text": "Dear {guest_first_name}, you are invited to {event_name}{{ if event_host }} by {event_host}{{ endif }}."})),
        )
        .await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["created_at"], v1["created_at"]);
    let (_, old) = t
        .request("GET", "/api/whatsapp/templates/formal?version=1", None)
        .await;
    assert_eq!(old["text"], "Dear {guest_name}, v1.");
    let (_, current) = t
        .request("GET", "/api/whatsapp/templates/formal", None)
        .await;
    assert_eq!(current["version"], 2);
    // Another organizer sees none of it.
    let (status, _) = t
        .request_as(
            "someone-else",
            "GET",
            "/api/whatsapp/templates/formal",
            None,
        )
        .await;
    assert_eq!(status, 404);

    // The request's template.
    let a = send(
        &t,
        json!({"event_id": "gala", "guest": guest("g1", "Ana Souza", "+5511999990001"), "template_id": "formal"}),
    )
    .await;
    assert_eq!(a["template_version"], 2);
    // The event's default (unknown ones are refused).
    let mut event = e2e::sample_event();
    event["default_template_id"] = json!("nope");
    let (status, answer) = t
        .request("PUT", "/api/whatsapp/events/gala", Some(event.clone()))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "default_template_id");
    event["default_template_id"] = json!("formal");
    let (status, answer) = t
        .request("PUT", "/api/whatsapp/events/gala", Some(event))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["default_template_id"], "formal");
    let b = send(
        &t,
        json!({"event_id": "gala", "guest": guest("g2", "Bo Lima", "+5511999990002")}),
    )
    .await;
    assert_eq!(b["template_id"], "formal");
    // The request beats the event's default.
    let c = send(
        &t,
        json!({"event_id": "gala", "guest": guest("g3", "Cy", "+5511999990003"), "template_id": "default"}),
    )
    .await;
    assert_eq!(c["template_id"], "default");
    let (status, answer) = t
        .request(
            "POST",
            "/api/whatsapp/send-invitation",
            Some(json!({"event_id": "gala", "guest": guest("g4", "Di", "+5511999990004"), "template_id": "nope"})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "template_id");

    // A version written after the send does not change what was sent.
    let (status, v3) = t
        .request(
            "PUT",
            "/api/whatsapp/templates/formal",
            Some(json!({"text": "v3 {guest_name}"})),
        )
        .await;
    assert_eq!(status, 200, "{v3}");
    assert_eq!(v3["version"], 3);
    assert_eq!(v3["name"], "Formal", "a version without a name keeps it");
    for answer in [&a, &b, &c] {
        let id = answer["invitation_id"].as_str().unwrap();
        t.wait_for_invitation("gala", id, WAIT, |i| i["status"] == "read")
            .await;
    }
    assert_eq!(
        sent_to(&t, "+5511999990001")["Body"],
        "Dear Ana, you are invited to Spring Gala by Marina."
    );
    assert_eq!(
        sent_to(&t, "+5511999990002")["Body"],
        "Dear Bo, you are invited to Spring Gala by Marina."
    );
    assert!(sent_to(&t, "+5511999990003")["Body"].starts_with("Hi Cy! Marina invites you"));
    let b_inv = t
        .invitation("gala", b["invitation_id"].as_str().unwrap())
        .await;
    assert_eq!(b_inv["template_id"], "formal");
    assert_eq!(b_inv["template_version"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_template_goes_out_as_content_sid_and_variables_and_reaches_a_closed_window() {
    const OPEN: &str = "+5511999990010";
    const CLOSED: &str = "+5511999990011";
    const CLOSED_TOO: &str = "+5511999990012";
    let t = TestStack::start_with(|sim, _| {
        sim.knobs.enforce_session_window = true;
        sim.knobs.session_open_numbers.insert(OPEN.into());
    })
    .await;
    t.create_event("gala").await;
    create_template(
        &t,
        json!({
            "template_id": "approved",
            "content_sid": CONTENT_SID,
            "content_variables": {
                "1": "{guest_first_name}",
                "2": "{event_name} ({event_date})",
                "3": "{rsvp_link}",
            },
        }),
    )
    .await;
    let mut bo = guest("g2", "Bo Lima", CLOSED);
    bo["rsvp_token"] = json!("tok-bo");
    let (status, preview) = t
        .request(
            "POST",
            "/api/whatsapp/templates/approved/preview",
            Some(json!({"event_id": "gala", "guest": bo})),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let expected = json!({
        "1": "Bo",
        "2": "Spring Gala (Saturday, 1 May 2027, 17:00)",
        "3": "https://rsvp.example.com/r/tok-bo",
    });
    assert_eq!(preview["content_sid"], CONTENT_SID);
    assert_eq!(preview["content_variables"], expected);
    assert!(preview["body"].is_null());

    let (status, bulk) = t
        .request(
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": "gala", "template_id": "approved", "guests": [bo]})),
        )
        .await;
    assert_eq!(status, 202, "{bulk}");
    // Free-form bodies (the default template): inside the window, and outside it.
    let open = send(
        &t,
        json!({"event_id": "gala", "guest": guest("g1", "Ana", OPEN)}),
    )
    .await;
    let closed = send(
        &t,
        json!({"event_id": "gala", "guest": guest("g3", "Cy", CLOSED_TOO)}),
    )
    .await;

    t.wait_for_job(bulk["job_id"].as_str().unwrap(), WAIT, |j| {
        j["counts"]["read"] == 1
    })
    .await;
    let params = sent_to(&t, CLOSED);
    assert_eq!(params["ContentSid"], CONTENT_SID);
    assert!(
        !params.contains_key("Body"),
        "no Body with a Content template: {params:?}"
    );
    let variables: Value = serde_json::from_str(&params["ContentVariables"]).unwrap();
    assert_eq!(variables, expected);

    let id = open["invitation_id"].as_str().unwrap();
    t.wait_for_invitation("gala", id, WAIT, |i| i["status"] == "read")
        .await;
    assert!(sent_to(&t, OPEN).contains_key("Body"));
    let id = closed["invitation_id"].as_str().unwrap();
    let failed = t
        .wait_for_invitation("gala", id, WAIT, |i| i["status"] == "failed")
        .await;
    assert_eq!(failed["error_code"], "63016", "{failed}");
    assert!(
        failed["error_message"]
            .as_str()
            .unwrap()
            .contains("24-hour"),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_length_limit_is_checked_on_preview_and_at_send() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    // 1,580 characters of text: fine until a long name is filled in.
    let text = format!("{} {{guest_name}}", "x".repeat(1579));
    create_template(&t, json!({"template_id": "long", "text": text})).await;
    let short = guest("g1", "Al", "+5511999990021");
    let long = guest("g2", &"L".repeat(40), "+5511999990022");
    let (status, ok) = t
        .request(
            "POST",
            "/api/whatsapp/templates/long/preview",
            Some(json!({"event_id": "gala", "guest": short})),
        )
        .await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["length"], 1582);
    let (status, answer) = t
        .request(
            "POST",
            "/api/whatsapp/templates/long/preview",
            Some(json!({"event_id": "gala", "guest": long})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "text");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1620"),
        "{answer}"
    );

    let (status, bulk) = t
        .request(
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": "gala", "template_id": "long", "guests": [short, long]})),
        )
        .await;
    assert_eq!(status, 202, "{bulk}");
    let job = t
        .wait_for_job(bulk["job_id"].as_str().unwrap(), WAIT, |j| {
            j["counts"]["read"] == 1 && j["counts"]["failed"] == 1
        })
        .await;
    assert_counts_exact(&job);
    let failed = t
        .invitations("gala")
        .await
        .into_iter()
        .find(|i| i["guest_id"] == "g2")
        .unwrap();
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error_code"], "template_too_long", "{failed}");
    assert_eq!(
        t.sim_messages().len(),
        1,
        "the long one never reached Twilio"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketing_template_skips_us_guests_up_front_and_sends_the_others() {
    let t = TestStack::start().await;
    t.create_event("wedding").await;
    let template = create_template(
        &t,
        json!({"template_id": "invite", "content_sid": CONTENT_SID, "category": "Marketing",
               "content_variables": {"1": "{guest_first_name}"}}),
    )
    .await;
    assert_eq!(template["category"], "marketing");
    let us: Vec<String> = (0..10).map(|i| format!("+1415555{:04}", 100 + i)).collect();
    let brazil: Vec<String> = (0..10).map(|i| format!("+55119999950{i:02}")).collect();
    // +1, but Toronto and the Bahamas: WhatsApp's pause is the US's only.
    let canada_and_bahamas = ["+14165550100".to_owned(), "+12425550100".to_owned()];
    let guests: Vec<Value> = us
        .iter()
        .chain(&brazil)
        .chain(&canada_and_bahamas)
        .enumerate()
        .map(|(i, phone)| guest(&format!("g{i}"), "Guest", phone))
        .collect();
    let bulk = send_bulk(
        &t,
        json!({"event_id": "wedding", "template_id": "invite", "guests": guests}),
    )
    .await;
    assert_eq!(bulk["queued"], 12, "{bulk}");
    let skipped = bulk["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 10, "{bulk}");
    for (i, s) in skipped.iter().enumerate() {
        assert_eq!(s["index"], i, "{bulk}");
        assert_eq!(s["code"], "marketing_to_us");
        assert!(s["message"].as_str().unwrap().contains("US numbers"), "{s}");
    }
    let job = t
        .wait_for_job(bulk["job_id"].as_str().unwrap(), WAIT, |j| {
            j["counts"]["read"] == 12
        })
        .await;
    assert_eq!(job["counts"]["skipped"], 10, "{job}");
    assert_counts_exact(&job);
    let to_us = t
        .sim_messages()
        .iter()
        .filter(|m| m.params["To"].starts_with("whatsapp:+1415"))
        .count();
    assert_eq!(to_us, 0, "nothing goes to the US guests");
    let listed = t.all_invitations("wedding").await;
    let us_one = listed.iter().find(|i| i["guest_id"] == "g0").unwrap();
    assert_eq!(us_one["status"], "skipped");
    assert_eq!(
        us_one["error_action"], "marketing_not_delivered",
        "{us_one}"
    );

    // A Utility template reaches them; a category is only for Content templates.
    create_template(
        &t,
        json!({"template_id": "reminder", "content_sid": "HX00000000000000000000000000000002",
               "category": "utility"}),
    )
    .await;
    let utility = send(
        &t,
        json!({"event_id": "wedding", "template_id": "reminder",
               "guest": guest("g0", "Guest", &us[0])}),
    )
    .await;
    assert_eq!(utility["status"], "queued", "{utility}");
    for (body, why) in [
        (
            json!({"text": "Hi", "category": "utility"}),
            "free-form text",
        ),
        (
            json!({"content_sid": CONTENT_SID, "category": "promo"}),
            "an unknown one",
        ),
    ] {
        let (status, answer) = t
            .request("POST", "/api/whatsapp/templates", Some(body))
            .await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert_eq!(answer["error"]["field"], "category", "{why}");
    }
}

/// A Content template's preview shows what Twilio will render: the text
/// and buttons its Content API has, filled for the guest; a SID Twilio
/// does not know says so instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_templates_preview_shows_its_text_and_buttons_as_twilio_has_them() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    for (id, sid) in [
        ("buttons", "HX00000000000000000000000000000003"),
        ("unknown", "HX0000000000000000000000000000abcd"),
    ] {
        let template = json!({"template_id": id, "content_sid": sid,
            "content_variables": {"1": "{guest_first_name}", "2": "{event_date}", "3": "{rsvp_yes}"}});
        let (status, body) = t
            .request("POST", "/api/whatsapp/templates", Some(template))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let preview = async |id: &str| {
        let path = format!("/api/whatsapp/templates/{id}/preview");
        let body = json!({"event_id": "gala", "guest": guest("ana", "Ana Reis", "+5511999990001")});
        t.request("POST", &path, Some(body)).await
    };
    let (status, shown) = preview("buttons").await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["content"]["type"], "twilio/quick-reply", "{shown}");
    let text = shown["content"]["body"].as_str().unwrap();
    assert!(
        text.starts_with("Hi Ana! You are invited on ") && !text.contains("{{"),
        "{shown}"
    );
    assert_eq!(shown["content"]["buttons"], json!(["Yes", "No", "Maybe"]));
    let (status, unknown) = preview("unknown").await;
    assert_eq!(status, 200, "{unknown}");
    assert!(unknown.get("content").is_none(), "{unknown}");
    assert!(
        unknown["content_note"]
            .as_str()
            .unwrap()
            .contains("no Content template"),
        "{unknown}"
    );
}
