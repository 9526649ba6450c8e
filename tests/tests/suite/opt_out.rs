//! Opt-out, end to end: a guest's STOP (an inbound WhatsApp message, signed
//! like Twilio's) means nothing more is sent to them, by any organizer,
//! until they send START; such invitations are recorded as skipped, counted
//! and listed; Twilio's 21610 and the API record opt-outs too.

use e2e::{TestStack, assert_counts_exact, guest, twilio_signature};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const ANA: &str = "+5511999990001";
const BO: &str = "+5511999990002";
const CY: &str = "+5511999990003";

fn opt_out_path(phone: &str) -> String {
    format!("/api/whatsapp/opt-outs/{}", phone.replace('+', "%2B"))
}

async fn stop(t: &TestStack, phone: &str, text: &str) {
    let (status, content_type, body) = t.inbound_message(phone, text).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/xml");
    assert!(body.ends_with("<Response/>"), "empty TwiML: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_stop_a_bulk_send_skips_the_guest_and_after_start_they_are_invited_again() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    assert_eq!(t.opt_out(BO).await["opted_out"], false);

    stop(&t, BO, "  Stop ").await;
    // This organizer has not invited Bo yet: it learns nothing of his STOP.
    let record = t.opt_out(BO).await;
    assert_eq!(record["opted_out"], false, "{record}");
    assert!(record["source"].is_null(), "{record}");

    let guests = vec![
        guest("a", "Ana", ANA),
        guest("b", "Bo", BO),
        guest("c", "Cy", CY),
    ];
    let bulk = t.send_bulk("gala", guests.clone()).await;
    assert_eq!(bulk["accepted"], 3, "{bulk}");
    assert_eq!(bulk["queued"], 2, "{bulk}");
    assert_eq!(
        bulk["skipped"],
        json!([{"index": 1, "guest_id": "b", "code": "opted_out",
                "message": bulk["skipped"][0]["message"]}]),
        "{bulk}"
    );
    let record = t.opt_out(BO).await;
    assert_eq!(record["opted_out"], true, "{record}");
    assert_eq!(record["source"], "inbound");
    assert_eq!(record["keyword"], "STOP");
    // Any other text is acknowledged and changes nothing.
    stop(&t, ANA, "Yes I'll come! stop by later").await;
    assert_eq!(t.opt_out(ANA).await["opted_out"], false);
    // Nor does an opt-in keyword from a number that never opted out (it
    // answers her invitation instead, once that has reached her).
    let (status, _, _) = t.inbound_message(ANA, "YES").await;
    assert_eq!(status, 200);
    assert!(t.opt_out(ANA).await["source"].is_null());
    let job_id = bulk["job_id"].as_str().unwrap();
    let job = t
        .wait_for_job(job_id, WAIT, |j| j["counts"]["read"] == 2)
        .await;
    assert_eq!(job["total"], 3);
    assert_eq!(job["counts"]["skipped"], 1, "{job}");
    assert_eq!(job["done"], true);
    assert_counts_exact(&job);
    assert_eq!(t.messages_to(BO), 0, "nothing was sent to Bo");
    assert_eq!(t.sim_messages().len(), 2);

    let (status, page) = t
        .request("GET", "/api/whatsapp/invitations/gala?status=skipped", None)
        .await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    let skipped = &items[0];
    assert_eq!(skipped["guest_id"], "b");
    assert_eq!(skipped["status"], "skipped");
    assert_eq!(skipped["error_code"], "opted_out");
    assert!(
        skipped["error_message"]
            .as_str()
            .unwrap()
            .contains("opted out")
    );
    assert!(skipped["timestamps"]["skipped"].is_string(), "{skipped}");
    assert!(skipped["message_sid"].is_null());

    // START: Bo may be invited again, by retrying the skipped invitation;
    // it is then his latest, so a new send leaves him out.
    stop(&t, BO, "start").await;
    let record = t.opt_out(BO).await;
    assert_eq!(record["opted_out"], false, "{record}");
    assert_eq!(record["keyword"], "START");
    let skipped_id = skipped["invitation_id"].as_str().unwrap();
    let (status, retried) = t
        .request("POST", &format!("/api/whatsapp/retry/{skipped_id}"), None)
        .await;
    assert_eq!(status, 202, "{retried}");
    let inv = t
        .wait_for_invitation("gala", skipped_id, WAIT, |i| i["status"] == "read")
        .await;
    assert_eq!(inv["attempt"], 2);
    assert!(inv["error_code"].is_null(), "{inv}");
    let job = t
        .wait_for_job(job_id, WAIT, |j| j["counts"]["read"] == 3)
        .await;
    assert_counts_exact(&job);
    let again = t.send_bulk("gala", vec![guest("b", "Bo", BO)]).await;
    assert_eq!(again["accepted"], 0, "{again}");
    assert_eq!(again["left_out"][0]["guest_id"], "b", "{again}");
    assert_eq!(t.messages_to(BO), 1);
}

/// An opt-out that arrives while the invitation waits in the queue is
/// honoured by the sender, right before it would send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_skips_a_guest_who_opted_out_after_the_send_was_queued() {
    // No poller: this test hands the sender its batch.
    let t = TestStack::start_with(|_, options| options.max_concurrency = 0).await;
    t.create_event("gala").await;
    let (status, sent) = t
        .request(
            "POST",
            "/api/whatsapp/send-invitation",
            Some(json!({"event_id": "gala", "guest": guest("a", "Ana", ANA)})),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["status"], "queued");
    let id = sent["invitation_id"].as_str().unwrap();
    stop(&t, ANA, "UNSUBSCRIBE").await;

    let deps = t.sender_deps(Arc::new(t.twilio_client()));
    let response = sender::handle(&deps, e2e::sqs_batch(vec![e2e::send_record(id)])).await;
    assert!(response.batch_item_failures.is_empty());
    let inv = t.invitation("gala", id).await;
    assert_eq!(inv["status"], "skipped", "{inv}");
    assert_eq!(inv["error_code"], "opted_out");
    let job = t.job(sent["job_id"].as_str().unwrap()).await;
    assert_eq!(job["counts"]["skipped"], 1, "{job}");
    assert_eq!(job["counts"]["queued"], 0, "{job}");
    assert_counts_exact(&job);
    assert!(t.sim_messages().is_empty(), "nothing reached Twilio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_21610_fails_the_send_and_records_an_opt_out() {
    let t = TestStack::start_with(|sim, _| {
        sim.knobs.fail_numbers.insert(CY.into(), 21610);
    })
    .await;
    t.create_event("gala").await;
    let (_, sent) = t
        .request(
            "POST",
            "/api/whatsapp/send-invitation",
            Some(json!({"event_id": "gala", "guest": guest("c", "Cy", CY)})),
        )
        .await;
    let id = sent["invitation_id"].as_str().unwrap();
    let inv = t
        .wait_for_invitation("gala", id, WAIT, |i| i["status"] == "failed")
        .await;
    assert_eq!(inv["error_code"], "21610", "{inv}");
    let record = t.opt_out(CY).await;
    assert_eq!(record["opted_out"], true, "{record}");
    assert_eq!(record["source"], "twilio");

    // The next send is skipped up front, and the organizer cannot lift the
    // guest's own opt-out.
    let (status, next) = t
        .request(
            "POST",
            "/api/whatsapp/send-invitation",
            Some(json!({"event_id": "gala", "guest": guest("c", "Cy", CY)})),
        )
        .await;
    assert_eq!(status, 202, "{next}");
    assert_eq!(next["status"], "skipped");
    assert_eq!(next["error_code"], "opted_out");
    let (status, answer) = t.request("DELETE", &opt_out_path(CY), None).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("START")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizers_opt_numbers_out_and_lift_their_own() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let (status, record) = t.request("PUT", &opt_out_path(ANA), None).await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["opted_out"], true);
    assert_eq!(record["source"], "api");
    assert_eq!(record["phone"], ANA);
    // The + may be left out, or given as is.
    let (_, same) = t
        .request("GET", "/api/whatsapp/opt-outs/5511999990001", None)
        .await;
    assert_eq!(same, record);
    let (_, same) = t
        .request("GET", &format!("/api/whatsapp/opt-outs/{ANA}"), None)
        .await;
    assert_eq!(same, record);

    let (status, sent) = t
        .request(
            "POST",
            "/api/whatsapp/send-invitation",
            Some(json!({"event_id": "gala", "guest": guest("a", "Ana", ANA)})),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["status"], "skipped");
    assert_eq!(sent["error_code"], "opted_out_by_you", "{sent}");
    let listed = t
        .all_invitations("gala")
        .await
        .into_iter()
        .find(|i| i["invitation_id"] == sent["invitation_id"])
        .unwrap();
    assert_eq!(listed["error_action"], "lift_your_opt_out", "{listed}");
    let job = t.job(sent["job_id"].as_str().unwrap()).await;
    assert_eq!(job["counts"]["skipped"], 1, "{job}");
    assert_eq!(job["done"], true);

    let (status, lifted) = t.request("DELETE", &opt_out_path(ANA), None).await;
    assert_eq!(status, 200, "{lifted}");
    assert_eq!(lifted["opted_out"], false);
    let (status, again) = t.request("DELETE", &opt_out_path(ANA), None).await;
    assert_eq!(status, 200, "lifting twice is fine: {again}");

    // A guest's STOP is kept when an organizer opts the number out as well.
    t.send_bulk("gala", vec![guest("b", "Bo", BO)]).await;
    stop(&t, BO, "quit").await;
    let (status, kept) = t.request("PUT", &opt_out_path(BO), None).await;
    assert_eq!(status, 200);
    assert_eq!(kept["source"], "inbound", "{kept}");
    let (status, _) = t.request("DELETE", &opt_out_path(BO), None).await;
    assert_eq!(status, 409);

    for bad in [
        "/api/whatsapp/opt-outs/12",
        "/api/whatsapp/opt-outs/%2B55abc",
    ] {
        let (status, answer) = t.request("GET", bad, None).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["field"], "phone");
    }

    // An inbound message that is not Twilio's changes nothing.
    let params = [
        ("From", "whatsapp:+5511999990003"),
        ("Body", "STOP"),
        ("MessageSid", "SM00000000000000000000000000000009"),
    ];
    let forged = twilio_signature("not-the-auth-token", &t.stack.webhook_url, &params);
    let status = t
        .http
        .post(&t.stack.webhook_url)
        .header("X-Twilio-Signature", forged)
        .form(&params)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
    let record: Value = t.opt_out(CY).await;
    assert_eq!(record["opted_out"], false, "{record}");
}

const OTHER: &str = "another-organizer";

/// What `organizer` reads of `phone`, expecting 200.
async fn seen_by(t: &TestStack, organizer: &str, phone: &str) -> Value {
    let (status, record) = t
        .request_as(organizer, "GET", &opt_out_path(phone), None)
        .await;
    assert_eq!(status, 200, "{record}");
    record
}

async fn send_as(t: &TestStack, organizer: &str, event: &str, guests: Vec<Value>) -> Value {
    let (status, body) = t
        .request_as(
            organizer,
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": event, "guests": guests})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizers_opt_out_binds_only_itself_and_no_organizer_learns_of_numbers_it_never_invited()
 {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let (status, _) = t
        .request_as(
            OTHER,
            "PUT",
            "/api/whatsapp/events/party",
            Some(e2e::sample_event()),
        )
        .await;
    assert_eq!(status, 201);
    let not_opted_out = json!({"phone": ANA, "opted_out": false, "source": null,
                               "keyword": null, "updated_at": null});

    // A opts Ana out. B sees nothing of it, and its lift changes nothing.
    let (status, a_record) = t.request("PUT", &opt_out_path(ANA), None).await;
    assert_eq!(status, 200, "{a_record}");
    assert_eq!(seen_by(&t, OTHER, ANA).await, not_opted_out);
    let (status, lifted) = t
        .request_as(OTHER, "DELETE", &opt_out_path(ANA), None)
        .await;
    assert_eq!((status, &lifted), (200, &not_opted_out));
    assert_eq!(t.opt_out(ANA).await, a_record, "A's opt-out stands");
    // B may invite Ana; A may not.
    let b_send = send_as(&t, OTHER, "party", vec![guest("a", "Ana", ANA)]).await;
    assert_eq!(b_send["queued"], 1, "{b_send}");
    let a_send = t.send_bulk("gala", vec![guest("a", "Ana", ANA)]).await;
    assert_eq!(a_send["queued"], 0, "{a_send}");
    // Having invited Ana, B still does not see A's opt-out.
    assert_eq!(seen_by(&t, OTHER, ANA).await, not_opted_out);

    // B's own opt-out binds B, not A, once A lifts its own.
    let (status, _) = t.request_as(OTHER, "PUT", &opt_out_path(CY), None).await;
    assert_eq!(status, 200);
    let (status, _) = t.request("DELETE", &opt_out_path(ANA), None).await;
    assert_eq!(status, 200);
    let b_send = send_as(&t, OTHER, "party", vec![guest("c", "Cy", CY)]).await;
    assert_eq!(b_send["queued"], 0, "{b_send}");
    let a_send = t
        .send_bulk("gala", vec![guest("a", "Ana", ANA), guest("c", "Cy", CY)])
        .await;
    assert_eq!(a_send["queued"], 2, "{a_send}");
    assert_eq!(t.opt_out(CY).await["opted_out"], false);

    // A's guest's own STOP binds B too; B learns of it only by inviting Bo.
    t.send_bulk("gala", vec![guest("b", "Bo", BO)]).await;
    stop(&t, BO, "STOP").await;
    assert_eq!(t.opt_out(BO).await["source"], "inbound");
    let mut never_invited = not_opted_out.clone();
    never_invited["phone"] = json!(BO);
    assert_eq!(seen_by(&t, OTHER, BO).await, never_invited);
    let b_send = send_as(&t, OTHER, "party", vec![guest("b", "Bo", BO)]).await;
    assert_eq!(b_send["queued"], 0, "{b_send}");
    assert_eq!(b_send["skipped"][0]["code"], "opted_out", "{b_send}");
    assert_eq!(seen_by(&t, OTHER, BO).await["keyword"], "STOP");
    for organizer in [OTHER, local_stack::DEV_ORGANIZER] {
        let (status, answer) = t
            .request_as(organizer, "DELETE", &opt_out_path(BO), None)
            .await;
        assert_eq!(status, 409, "only Bo lifts his STOP: {answer}");
    }
}

/// A guest's WhatsApp message, through the simulator's inbound route (it
/// signs and posts it to the webhook as Twilio would).
async fn sim_inbound(t: &TestStack, from: &str, body: &str) {
    let (status, answer) = t.sim_inbound(json!({"from": from, "body": body})).await;
    assert!(status.is_success(), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_in_the_form_whatsapp_reports_holds_for_the_number_as_dialled() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    // (as WhatsApp reports the guest, as the organizer dials them)
    let forms = [
        ("+552187001234", "+5521987001234"), // Brazil: without the mobile 9
        ("+5215512345678", "+525512345678"), // Mexico: +52 1
        ("+5491123456789", "+541123456789"), // Argentina: +54 9
    ];
    for (reported, _) in forms {
        sim_inbound(&t, reported, "STOP").await;
    }
    let dialled: Vec<Value> = forms
        .iter()
        .enumerate()
        .map(|(i, (_, d))| guest(&format!("g{i}"), "Guest", d))
        .collect();
    let body = t.send_bulk("gala", dialled.clone()).await;
    assert_eq!(body["queued"], 0, "{body}");
    assert_eq!(body["skipped"].as_array().unwrap().len(), 3, "{body}");

    // START, sent from the dialled form this time, lifts each.
    for (_, d) in forms {
        sim_inbound(&t, d, "START").await;
        let record = t.opt_out(d).await;
        assert_eq!(record["opted_out"], false, "{record}");
    }
    let body = t.send_bulk("gala", dialled).await;
    assert_eq!(body["queued"], 3, "{body}");
    t.wait_for_job(body["job_id"].as_str().unwrap(), WAIT, |j| {
        j["counts"]["read"] == 3
    })
    .await;
    for (_, d) in forms {
        assert_eq!(t.messages_to(d), 1, "{d}");
    }
}

/// An event's guests' opt-outs in one request each thousand, by the same
/// rules as one number's: a guest's STOP only for numbers the organizer
/// invited, its own opt-outs always, another organizer's never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_answers_many_numbers_at_once_by_the_same_rules() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    // Bo said STOP after A invited him; A opted Cy out; another organizer
    // opted Ana out.
    t.send_bulk("gala", vec![guest("b", "Bo", BO)]).await;
    let (status, _, _) = t.inbound_message(BO, "STOP").await;
    assert_eq!(status, 200);
    let (status, _) = t.request("PUT", &opt_out_path(CY), None).await;
    assert_eq!(status, 200);
    let (status, _) = t.request_as(OTHER, "PUT", &opt_out_path(ANA), None).await;
    assert_eq!(status, 200);

    let mut phones: Vec<Value> = vec![json!(ANA), json!(BO), json!(CY), json!("12"), json!(7)];
    phones.extend((0..995).map(|i| json!(format!("+55119888{i:05}"))));
    let (status, answer) = t
        .request(
            "POST",
            "/api/whatsapp/opt-outs/lookup",
            Some(json!({ "phones": phones })),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), 998);
    let opted_out: Vec<(u64, &str)> = items
        .iter()
        .filter(|i| i["opted_out"] == true)
        .map(|i| (i["index"].as_u64().unwrap(), i["source"].as_str().unwrap()))
        .collect();
    assert_eq!(opted_out, [(1, "inbound"), (2, "api")], "{answer}");
    // Each as the single route answers it.
    for item in &items[..3] {
        let mut one = item.clone();
        one.as_object_mut().unwrap().remove("index");
        assert_eq!(one, t.opt_out(item["phone"].as_str().unwrap()).await);
    }
    let rejected: Vec<&str> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["field"].as_str().unwrap())
        .collect();
    assert_eq!(rejected, ["phones[3]", "phones[4]"]);

    // The other organizer sees its own opt-out of Ana, nothing of Bo's STOP.
    let (_, theirs) = t
        .request_as(
            OTHER,
            "POST",
            "/api/whatsapp/opt-outs/lookup",
            Some(json!({ "phones": [ANA, BO] })),
        )
        .await;
    assert_eq!(theirs["items"][0]["opted_out"], true, "{theirs}");
    assert_eq!(theirs["items"][1]["opted_out"], false, "{theirs}");

    // More than a thousand, or none, is the request's error.
    for bad in [
        json!({"phones": vec![ANA; 1001]}),
        json!({"phones": []}),
        json!({}),
    ] {
        let (status, error) = t
            .request("POST", "/api/whatsapp/opt-outs/lookup", Some(bad))
            .await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["error"]["field"], "phones", "{error}");
    }
}
