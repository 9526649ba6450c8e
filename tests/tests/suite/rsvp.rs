//! Guests answer: quick-reply taps and typed replies through the simulator
//! (signed as Twilio signs them) into the webhook, recorded once and
//! confirmed once; the organizer's own record and correction; what guests
//! write that is not an answer, kept; taps that name no invitation of
//! theirs, refused and logged.

use e2e::{TestStack, guest};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The quick-reply template: the simulator's Yes / No / Maybe Content
/// template, its buttons' ids the stack's payloads.
fn buttons_template() -> Value {
    json!({
        "template_id": "rsvp-buttons",
        "name": "Invitation with buttons",
        "content_sid": twilio_sim::QUICK_REPLY_CONTENT_SID,
        "content_variables": {
            "1": "{guest_first_name}", "2": "{event_date}",
            "3": "{rsvp_yes}", "4": "{rsvp_no}", "5": "{rsvp_maybe}"
        },
        "category": "marketing"
    })
}

fn phone(n: usize) -> String {
    format!("+55119888{n:05}")
}

/// Creates the event and the template, sends `n` guests the invitation and
/// waits until every one is delivered; answers each guest's message SID.
async fn invited(t: &TestStack, n: usize) -> BTreeMap<String, String> {
    t.create_event("gala").await;
    let (status, body) = t
        .request("POST", "/api/whatsapp/templates", Some(buttons_template()))
        .await;
    assert_eq!(status, 201, "{body}");
    let guests: Vec<Value> = (0..n)
        .map(|i| guest(&format!("g{i:02}"), &format!("Guest{i} Souza"), &phone(i)))
        .collect();
    let (status, bulk) = t
        .request(
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": "gala", "guests": guests, "template_id": "rsvp-buttons"})),
        )
        .await;
    assert_eq!(status, 202, "{bulk}");
    let job = bulk["job_id"].as_str().unwrap();
    t.wait_for_job(job, WAIT, |j| {
        j["counts"]["delivered"].as_i64().unwrap_or(0) + j["counts"]["read"].as_i64().unwrap_or(0)
            == n as i64
    })
    .await;
    t.sim_messages()
        .into_iter()
        .map(|m| {
            let to = m.params["To"].trim_start_matches("whatsapp:").to_owned();
            (to, m.sid)
        })
        .collect()
}

/// A guest's message through the simulator; answers the simulator's report
/// (the webhook's status and answer, and what was sent back).
async fn from_guest(t: &TestStack, message: Value) -> Value {
    let (status, answer) = t.sim_inbound(message).await;
    let body: Value = serde_json::from_str(&answer).unwrap();
    assert!(status.is_success(), "{body}");
    assert_eq!(body["http_status"], 200, "{body}");
    body
}

async fn tap(t: &TestStack, sids: &BTreeMap<String, String>, n: usize, button: &str) -> Value {
    let from = phone(n);
    from_guest(
        t,
        json!({"from": from, "reply_to": sids[&from], "button": button}),
    )
    .await
}

async fn rsvps(t: &TestStack, query: &str) -> Value {
    let (status, body) = t
        .request("GET", &format!("/api/whatsapp/rsvps/gala{query}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taps_and_typed_replies_are_recorded_once_and_confirmed_once() {
    let t = TestStack::start().await;
    let sids = invited(&t, 20).await;
    for n in 0..10 {
        tap(&t, &sids, n, "Yes").await;
    }
    // A double tap (and the webhook's answer to the second is empty).
    let second = tap(&t, &sids, 9, "Yes").await;
    assert_eq!(second["replies"], json!([]), "{second}");
    for n in 10..15 {
        tap(&t, &sids, n, "No").await;
    }
    let typed = from_guest(&t, json!({"from": phone(15), "body": "Talvez!"})).await;
    assert_eq!(typed["replies"].as_array().unwrap().len(), 1, "{typed}");

    let all = rsvps(&t, "").await;
    assert_eq!(
        all["headcount"],
        json!({"yes": 10, "no": 5, "maybe": 1, "no_answer": 4, "companions": 0}),
        "{all}"
    );
    assert_eq!(all["guests"], 20);
    let silent = rsvps(&t, "?answer=no_answer").await;
    let ids: Vec<&str> = silent["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["guest_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["g16", "g17", "g18", "g19"]);
    let maybe = rsvps(&t, "?answer=maybe").await;
    assert_eq!(maybe["items"][0]["rsvp"]["via"], "typed", "{maybe}");

    // Each answering guest was sent one confirmation, in their words.
    let replies = t.sim.state().replies();
    let mut per_guest: BTreeMap<String, usize> = BTreeMap::new();
    for r in &replies {
        *per_guest
            .entry(r.to.trim_start_matches("whatsapp:").to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_guest.len(), 16, "{replies:?}");
    assert!(per_guest.values().all(|n| *n == 1), "{per_guest:?}");
    let to_first = replies.iter().find(|r| r.to.ends_with(&phone(0))).unwrap();
    assert!(
        to_first
            .body
            .starts_with("Thanks, Guest0! See you on Saturday, 1 May 2027"),
        "{}",
        to_first.body
    );

    // A change of mind counts; the history keeps both.
    tap(&t, &sids, 0, "No").await;
    let (status, one) = t.request("GET", "/api/whatsapp/rsvps/gala/g00", None).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["rsvp"]["answer"], "no");
    let said: Vec<&str> = one["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["answer"].as_str().unwrap())
        .collect();
    assert_eq!(said, ["yes", "no"]);
    // The guest list carries the answer too (and so its changes feed).
    let (_, listed) = t.request("GET", "/api/whatsapp/guests/gala", None).await;
    assert_eq!(listed["items"][0]["rsvp"]["answer"], "no", "{listed}");

    // Text that is no answer is kept for the organizer; STOP keeps its meaning.
    let question = from_guest(
        &t,
        json!({"from": phone(16), "body": "Can I bring my dog?", "reply_to": sids[&phone(16)]}),
    )
    .await;
    assert_eq!(question["replies"], json!([]));
    from_guest(&t, json!({"from": phone(17), "body": "STOP"})).await;
    // A "yes" quoting a message that is none of the guest's invitations
    // answers nothing for sure: kept, not counted.
    let unsure =
        json!({"from": phone(18), "body": "yes", "reply_to": "SM00000000000000000000000000000bad"});
    assert_eq!(from_guest(&t, unsure).await["replies"], json!([]));
    let (_, kept) = t.request("GET", "/api/whatsapp/replies/gala", None).await;
    let texts: Vec<(&str, &str)> = kept["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["guest_id"].as_str().unwrap(), r["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        texts,
        [("g18", "yes"), ("g16", "Can I bring my dog?")],
        "{kept}"
    );
    assert_eq!(t.opt_out(&phone(17)).await["opted_out"], true);
    let after = rsvps(&t, "").await;
    assert_eq!(after["headcount"]["no_answer"], 4, "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tap_that_opens_no_invitation_of_the_guest_records_nothing_and_is_logged() {
    let logs = e2e::logs::capture();
    let t = TestStack::start().await;
    let sids = invited(&t, 2).await;
    let sent = t.sim_messages();
    let payload_of = |n: usize| {
        let m = sent
            .iter()
            .find(|m| m.params["To"].ends_with(&phone(n)))
            .unwrap();
        let vars: BTreeMap<String, String> =
            serde_json::from_str(&m.params["ContentVariables"]).unwrap();
        vars["3"].clone()
    };
    let yes = payload_of(0);
    // One character of the secret changed.
    let last = yes.chars().last().unwrap();
    let altered = format!(
        "{}{}",
        &yes[..yes.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let answer = from_guest(
        &t,
        json!({"from": phone(0), "reply_to": sids[&phone(0)], "body": "Yes", "payload": altered}),
    )
    .await;
    assert_eq!(answer["replies"], json!([]), "{answer}");
    // Guest 1's button, tapped from guest 0's number.
    from_guest(
        &t,
        json!({"from": phone(0), "body": "Yes", "payload": payload_of(1)}),
    )
    .await;
    // Not in this stack's form at all, nor a token.
    from_guest(
        &t,
        json!({"from": phone(0), "body": "Yes", "payload": "rsvp.yes.nothing"}),
    )
    .await;

    // Another organizer's invitation id with a secret of this one's.
    let (status, _) = t
        .request_as(
            "organizer-2",
            "PUT",
            "/api/whatsapp/events/gala",
            Some(e2e::sample_event()),
        )
        .await;
    assert_eq!(status, 201);
    let (status, other) = t
        .request_as(
            "organizer-2",
            "POST",
            "/api/whatsapp/send-invitation",
            Some(json!({"event_id": "gala", "guest": guest("x1", "Xavier", &phone(0))})),
        )
        .await;
    assert_eq!(status, 202, "{other}");
    let secret = yes.rsplit('.').next().unwrap();
    let theirs = format!(
        "rsvp.yes.{}.{secret}",
        other["invitation_id"].as_str().unwrap()
    );
    from_guest(
        &t,
        json!({"from": phone(0), "body": "Yes", "payload": theirs}),
    )
    .await;

    let all = rsvps(&t, "").await;
    assert_eq!(all["headcount"]["no_answer"], 2, "{all}");
    assert!(t.sim.state().replies().is_empty());
    let (_, theirs) = t
        .request_as("organizer-2", "GET", "/api/whatsapp/rsvps/gala", None)
        .await;
    assert_eq!(theirs["headcount"]["no_answer"], 1, "{theirs}");

    let text = logs.text();
    let said = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    assert!(
        said("not one this stack wrote (altered)") >= 1,
        "no log of the altered payload"
    );
    assert!(
        said("a button's token opens no invitation") >= 2,
        "no log of the tokens that open nothing"
    );
    assert!(said("tapped by another number than the invitation's") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organizer_records_and_corrects_answers_and_bad_input_names_the_field() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let (status, _) = t
        .request(
            "POST",
            "/api/whatsapp/guests/gala",
            Some(json!({"guests": [guest("ana", "Ana", &phone(1)), guest("bo", "Bo", &phone(2))]})),
        )
        .await;
    assert_eq!(status, 200);
    let put = |guest: &str, body: Value| {
        let path = format!("/api/whatsapp/rsvps/gala/{guest}");
        let t = &t;
        async move { t.request("PUT", &path, Some(body)).await }
    };
    let (status, body) = put("ana", json!({"answer": "yes", "companions": 2})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recorded"], true);
    assert_eq!(body["rsvp"]["via"], "organizer");
    let (_, again) = put("ana", json!({"answer": "yes", "companions": 2})).await;
    assert_eq!(
        again["recorded"], false,
        "the same answer again records nothing"
    );
    let (_, corrected) = put("ana", json!({"answer": "yes", "companions": 1})).await;
    assert_eq!(corrected["history"].as_array().unwrap().len(), 2);
    let all = rsvps(&t, "").await;
    assert_eq!(
        all["headcount"],
        json!({"yes": 1, "no": 0, "maybe": 0, "no_answer": 1, "companions": 1})
    );

    for (body, field) in [
        (json!({}), "answer"),
        (json!({"answer": "sure"}), "answer"),
        (json!({"answer": "yes", "companions": 21}), "companions"),
        (json!({"answer": "no", "companions": 1}), "companions"),
    ] {
        let (status, err) = put("bo", body.clone()).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    let (status, _) = put("nobody", json!({"answer": "no"})).await;
    assert_eq!(status, 404);
    let (status, err) = t
        .request("GET", "/api/whatsapp/rsvps/gala?answer=perhaps", None)
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (400, Some("answer"))
    );
    // Another organizer sees no such event.
    let (status, _) = t
        .request_as("organizer-2", "GET", "/api/whatsapp/rsvps/gala", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = t
        .request_as(
            "organizer-2",
            "PUT",
            "/api/whatsapp/rsvps/gala/ana",
            Some(json!({"answer": "no"})),
        )
        .await;
    assert_eq!(status, 404);
}

/// The RSVP link in the message the simulator received for `phone`.
fn link_sent_to(t: &TestStack, phone: &str) -> String {
    let to = format!("whatsapp:{phone}");
    let body = t
        .sim_messages()
        .into_iter()
        .find(|m| m.params.get("To") == Some(&to))
        .and_then(|m| m.params.get("Body").cloned())
        .expect("a message with a body");
    body.split_whitespace()
        .find(|w| w.starts_with(&t.stack.rsvp_page_url))
        .unwrap_or_else(|| panic!("no RSVP page link in {body:?}"))
        .to_owned()
}

async fn page(t: &TestStack, method: &str, url: &str, form: Option<&str>) -> (u16, String) {
    let mut req = t.http.request(method.parse().unwrap(), url);
    if let Some(form) = form {
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    if status != 500 {
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
        assert_eq!(
            resp.headers()["content-security-policy"],
            rsvp_page::CONTENT_SECURITY_POLICY
        );
    }
    (status, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rsvp_page_opens_only_from_a_guests_own_link_and_records_their_answer() {
    let t = TestStack::start().await;
    // No RSVP app of the organizer's: links open the stack's page.
    let mut event = e2e::sample_event();
    event.as_object_mut().unwrap().remove("rsvp_base_url");
    let (status, saved) = t
        .request("PUT", "/api/whatsapp/events/gala", Some(event.clone()))
        .await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["rsvp_base_url"], Value::Null);
    event["starts_at"] = json!("2020-05-01T17:00:00-03:00");
    t.request("PUT", "/api/whatsapp/events/past", Some(event))
        .await;
    t.send_invitation("gala", guest("ana", "Ana Lima", &phone(1)))
        .await;
    t.send_invitation("past", guest("bo", "Bo", &phone(2)))
        .await;
    t.send_invitation("gala", guest("cai", "Cai", &phone(3)))
        .await;
    let start = std::time::Instant::now();
    while t.sim_messages().len() < 3 {
        assert!(start.elapsed() < WAIT, "the invitations were sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let link = link_sent_to(&t, &phone(1));

    let (status, html) = page(&t, "GET", &link, None).await;
    assert_eq!(status, 200, "{html}");
    for shown in [
        "Spring Gala",
        "Hi Ana, will you come?",
        "Casa Rosa",
        "You have not answered yet",
    ] {
        assert!(html.contains(shown), "{shown:?} in {html}");
    }
    let (status, html) = page(&t, "POST", &link, Some("answer=yes&companions=2")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Your answer is saved"), "{html}");
    assert!(html.contains("(with 2 companions)"), "{html}");
    let (_, ana) = t.request("GET", "/api/whatsapp/rsvps/gala/ana", None).await;
    assert_eq!(ana["rsvp"]["via"], "link", "{ana}");
    assert_eq!(ana["rsvp"]["companions"], 2, "{ana}");
    for (form, field) in [
        ("answer=sure", "answer"),
        ("companions=1", "answer"),
        ("answer=yes&companions=99", "companions"),
    ] {
        let (status, html) = page(&t, "POST", &link, Some(form)).await;
        assert_eq!(status, 400, "{form}");
        assert!(
            html.contains(&format!("data-field=\"{field}\"")),
            "{form}: {html}"
        );
    }

    // Altered, unknown and expired tokens all get the same page.
    let (status, expired) = page(&t, "GET", &link_sent_to(&t, &phone(2)), None).await;
    assert_eq!(status, 404);
    let last = link.chars().last().unwrap();
    let altered = format!(
        "{}{}",
        &link[..link.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    for wrong in [altered, format!("{}nothing", t.stack.rsvp_page_url)] {
        let (status, html) = page(&t, "GET", &wrong, None).await;
        assert_eq!((status, &html), (404, &expired), "{wrong}");
        let (status, _) = page(&t, "POST", &wrong, Some("answer=no")).await;
        assert_eq!(status, 404);
    }
    let (_, ana) = t.request("GET", "/api/whatsapp/rsvps/gala/ana", None).await;
    assert_eq!(
        ana["rsvp"]["answer"], "yes",
        "nothing a wrong token did counts"
    );
    // Nor does a typed "yes" once the event has started: it is kept.
    from_guest(&t, json!({"from": phone(2), "body": "yes"})).await;
    let (_, past) = t.request("GET", "/api/whatsapp/rsvps/past", None).await;
    assert_eq!(past["headcount"]["no_answer"], 1, "{past}");
    let (_, kept) = t.request("GET", "/api/whatsapp/replies/past", None).await;
    assert_eq!(kept["items"][0]["text"], "yes", "{kept}");

    // A guest removed from the list: their link is closed like any other.
    let removed = link_sent_to(&t, &phone(3));
    assert_eq!(page(&t, "GET", &removed, None).await.0, 200);
    let (status, _) = t
        .request("DELETE", "/api/whatsapp/guests/gala/cai", None)
        .await;
    assert_eq!(status, 204);
    let (status, html) = page(&t, "GET", &removed, None).await;
    assert_eq!((status, &html), (404, &expired), "a removed guest's link");
    let (status, _) = page(&t, "POST", &removed, Some("answer=yes")).await;
    assert_eq!(status, 404);

    // Tries are limited: after enough wrong tokens, wrong ones wait, and a
    // guest's good link from the same address still opens (guests share
    // a carrier's or a venue's address). The wrong tokens above count too.
    let mut guesses = 0;
    loop {
        let guess = format!("{}guess{guesses}", t.stack.rsvp_page_url);
        let (status, _) = page(&t, "GET", &guess, None).await;
        if status == 429 {
            break;
        }
        assert_eq!(status, 404);
        guesses += 1;
        assert!(
            guesses <= shared::app::rsvp::MAX_FAILED_TRIES,
            "guessing is limited"
        );
    }
    assert!(guesses > 0);
    let guess = format!("{}guess-again", t.stack.rsvp_page_url);
    let (status, html) = page(&t, "GET", &guess, None).await;
    assert_eq!(status, 429, "{html}");
    assert!(html.contains("Too many tries"));
    let (status, html) = page(&t, "GET", &link, None).await;
    assert_eq!(status, 200, "{html}");
}

async fn wait_for_messages(t: &TestStack, count: usize) {
    let start = std::time::Instant::now();
    while t.sim_messages().len() < count {
        assert!(start.elapsed() < WAIT, "{count} messages were sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_go_to_the_silent_guests_once_and_an_answer_leaves_a_guest_out_of_the_next() {
    let t = TestStack::start().await;
    let sids = invited(&t, 8).await;
    for n in 0..4 {
        tap(&t, &sids, n, if n % 2 == 0 { "Yes" } else { "No" }).await;
    }
    // A reminder time two minutes from now, a day before the deadline.
    let now = time::OffsetDateTime::now_utc();
    let at = now + time::Duration::minutes(2);
    let deadline = at + time::Duration::days(1);
    let mut event = e2e::sample_event();
    event["rsvp_deadline"] = json!(shared::domain::timestamp(deadline));
    event["reminders"] =
        json!([{"days_before": 1, "at": format!("{:02}:{:02}", at.hour(), at.minute())}]);
    let (status, saved) = t
        .request("PUT", "/api/whatsapp/events/gala", Some(event))
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["reminders"][0]["days_before"], 1, "{saved}");

    // Remind now: the four silent guests, once.
    let (status, first) = t.request("POST", "/api/whatsapp/remind/gala", None).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(
        (&first["reminded"], &first["already"]),
        (&json!(4), &json!(false))
    );
    wait_for_messages(&t, 12).await;
    for n in 0..8 {
        assert_eq!(
            t.messages_to(&phone(n)),
            if n < 4 { 1 } else { 2 },
            "guest {n}"
        );
    }
    let (status, again) = t.request("POST", "/api/whatsapp/remind/gala", None).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(
        (&again["reminded"], &again["already"]),
        (&json!(0), &json!(true))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.sim_messages().len(), 12, "running it again sent nothing");

    // One of them taps Maybe; the scheduled reminder time (run as the
    // scheduled function runs it, a day later) leaves them out.
    tap(&t, &sids, 4, "Maybe").await;
    let store =
        shared::adapters::dynamo::DynamoStore::new(t.stack.dynamodb.clone(), &t.stack.names.table);
    let queue = shared::adapters::sqs::SqsQueue::new(t.stack.sqs.clone(), &t.stack.queue_url);
    let later = at + time::Duration::hours(21);
    let report = shared::app::remind::run_due(&store, &store, &queue, later)
        .await
        .unwrap();
    assert_eq!((report.runs, report.reminded), (1, 3), "{report:?}");
    wait_for_messages(&t, 15).await;
    assert_eq!(t.messages_to(&phone(4)), 2, "the guest who answered");
    for n in 5..8 {
        assert_eq!(t.messages_to(&phone(n)), 3, "guest {n}");
    }
    let again = shared::app::remind::run_due(&store, &store, &queue, later)
        .await
        .unwrap();
    assert_eq!(again.runs, 0, "a reminder time runs once");
}

/// A reminder already queued when its guest answers is not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cancels_a_reminder_still_queued() {
    // No poller: the test hands the sender its batches.
    let t = TestStack::start_with(|_, options| options.max_concurrency = 0).await;
    t.create_event("gala").await;
    let id = t
        .send_invitation("gala", guest("ana", "Ana", &phone(1)))
        .await;
    let deps = t.sender_deps(std::sync::Arc::new(t.twilio_client()));
    let sent = sender::handle(&deps, e2e::sqs_batch(vec![e2e::send_record(&id)])).await;
    assert!(sent.batch_item_failures.is_empty());
    t.wait_for_invitation("gala", &id, WAIT, |i| i["status"] == "read")
        .await;
    let (status, reminded) = t.request("POST", "/api/whatsapp/remind/gala", None).await;
    assert_eq!(
        (status, &reminded["reminded"]),
        (202, &json!(1)),
        "{reminded}"
    );
    let job = shared::domain::JobId::parse(reminded["job_id"].as_str().unwrap()).unwrap();
    let guest_id = shared::domain::GuestId::parse("ana").unwrap();
    let reminder = shared::domain::InvitationId::for_guest(&job, &guest_id);
    // The guest answers on the RSVP page's sibling: the organizer records it.
    let (status, _) = t
        .request(
            "PUT",
            "/api/whatsapp/rsvps/gala/ana",
            Some(json!({"answer": "yes"})),
        )
        .await;
    assert_eq!(status, 200);
    let batch = e2e::sqs_batch(vec![e2e::send_record(reminder.as_str())]);
    let response = sender::handle(&deps, batch).await;
    assert!(response.batch_item_failures.is_empty());
    let skipped = t.invitation("gala", reminder.as_str()).await;
    assert_eq!(skipped["status"], "skipped", "{skipped}");
    assert_eq!(skipped["error_code"], "answered", "{skipped}");
    assert_eq!(t.messages_to(&phone(1)), 1, "only the invitation was sent");
}

/// Tries a request until it is answered `want` (a fault may fail a try;
/// each of these requests is safe to repeat).
async fn until(
    t: &TestStack,
    method: &str,
    path: &str,
    body: Option<Value>,
    want: &[u16],
) -> Value {
    for _ in 0..40 {
        let (status, answer) = t.request(method, path, body.clone()).await;
        if want.contains(&status) {
            return answer;
        }
        // A run under faults may hold the reminder for a while.
        tokio::time::sleep(Duration::from_millis(500)).await;
        // 409 in_progress: another run holds the reminder; try again.
        assert!(
            status >= 500 || answer["error"]["code"] == "in_progress",
            "{method} {path}: {status} {answer}"
        );
    }
    panic!("{method} {path} kept failing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminder_runs_at_once_under_aws_faults_remind_each_silent_guest_once() {
    let t = TestStack::start_under(
        e2e::faults::Faults::harsh(),
        e2e::faults::Policy::from_template(),
        |_, options| {
            e2e::quick_reconciliation(options, Duration::from_secs(2), Duration::from_secs(10));
        },
    )
    .await;
    let event = Some(e2e::sample_event());
    until(&t, "PUT", "/api/whatsapp/events/gala", event, &[200, 201]).await;
    let body = json!({"event_id": "gala", "guests": e2e::guests(30)});
    let mut sent = Value::Null;
    for _ in 0..10 {
        let (status, answer) = t.send_bulk_with_key("reminders-race", &body).await;
        if status == 202 {
            sent = answer;
            break;
        }
    }
    let job = sent["job_id"].as_str().expect("the send was accepted");
    t.wait_for_job(job, Duration::from_secs(120), |j| {
        j["counts"]["delivered"].as_i64().unwrap_or(0) + j["counts"]["read"].as_i64().unwrap_or(0)
            == 30
    })
    .await;
    let ids: Vec<String> = t
        .all_invitations("gala")
        .await
        .iter()
        .map(|i| i["guest_id"].as_str().unwrap().to_owned())
        .collect();
    for id in &ids[..10] {
        let path = format!("/api/whatsapp/rsvps/gala/{id}");
        until(&t, "PUT", &path, Some(json!({"answer": "no"})), &[200]).await;
    }
    // "Remind now" three times at once, and the same again later.
    let remind = || until(&t, "POST", "/api/whatsapp/remind/gala", None, &[202]);
    let answers = tokio::join!(remind(), remind(), remind());
    let reminded: u64 = [&answers.0, &answers.1, &answers.2]
        .iter()
        .map(|a| a["reminded"].as_u64().unwrap())
        .sum();
    assert!(reminded <= 20, "{answers:?}");
    remind().await;
    let start = std::time::Instant::now();
    while t.sim_messages().len() < 50 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the 20 reminders went out"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut per_guest: BTreeMap<String, usize> = BTreeMap::new();
    for m in t.sim_messages() {
        *per_guest.entry(m.params["To"].clone()).or_default() += 1;
    }
    let counts: Vec<usize> = per_guest.values().copied().collect();
    assert_eq!(
        counts.iter().filter(|n| **n == 2).count(),
        20,
        "{per_guest:?}"
    );
    assert_eq!(
        counts.iter().filter(|n| **n == 1).count(),
        10,
        "{per_guest:?}"
    );
    let report = t.aws.summary();
    assert!(
        report.injected.values().sum::<u64>() > 0,
        "{:?}",
        report.injected
    );
}

/// Two organizers of one stack invite the same guest; the guest writes
/// without quoting either: neither organizer sees it, the guest is asked
/// which invitation they mean; quoting one answers that one only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_quoting_nothing_to_a_guest_two_organizers_invited_reaches_neither_and_asks() {
    const OTHER: &str = "organizer-2";
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
    let ana = phone(1);
    let ours = t.send_invitation("gala", guest("ana", "Ana", &ana)).await;
    let (status, theirs) = t
        .request_as(
            OTHER,
            "POST",
            "/api/whatsapp/send-invitation",
            Some(json!({"event_id": "party", "guest": guest("a2", "Ana", &ana)})),
        )
        .await;
    assert_eq!(status, 202, "{theirs}");
    t.wait_for_invitation("gala", &ours, WAIT, |i| i["status"] == "read")
        .await;
    let theirs_id = theirs["invitation_id"].as_str().unwrap();
    let start = std::time::Instant::now();
    let their_sid = loop {
        let (_, listed) = t
            .request_as(OTHER, "GET", "/api/whatsapp/invitations/party", None)
            .await;
        let inv = listed["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["invitation_id"] == theirs_id))
            .cloned()
            .unwrap_or_default();
        if inv["status"] == "read" {
            break inv["message_sid"].as_str().unwrap().to_owned();
        }
        assert!(start.elapsed() < WAIT, "{inv}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    for text in ["Can I bring my son?", "yes"] {
        from_guest(&t, json!({"from": ana, "body": text})).await;
    }
    let asked: Vec<_> = t
        .sim
        .state()
        .replies()
        .into_iter()
        .filter(|r| r.to.ends_with(&ana))
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        asked.iter().all(|r| r.body.contains("more than one host")),
        "{asked:?}"
    );
    let (_, mine) = t.request("GET", "/api/whatsapp/replies/gala", None).await;
    let (_, other) = t
        .request_as(OTHER, "GET", "/api/whatsapp/replies/party", None)
        .await;
    assert_eq!(
        (
            mine["items"].as_array().map(Vec::len),
            other["items"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0)),
        "{mine} {other}"
    );

    from_guest(
        &t,
        json!({"from": ana, "body": "yes", "reply_to": their_sid}),
    )
    .await;
    let (_, other) = t
        .request_as(OTHER, "GET", "/api/whatsapp/rsvps/party", None)
        .await;
    assert_eq!(other["headcount"]["yes"], 1, "{other}");
    let mine = rsvps(&t, "").await;
    assert_eq!(mine["headcount"]["no_answer"], 1, "{mine}");
}
