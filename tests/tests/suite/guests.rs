//! The guest list on the server, and no guest invited twice by accident:
//! import (JSON and CSV, every row checked), the listing with each guest's
//! invitation and opt-out, changes since a cursor, edit and remove; a second
//! send to the same guests leaves them out unless it resends, also when two
//! sends race under the fault layer.

use e2e::faults::{Faults, Policy};
use e2e::{TestStack, guest, guests};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

/// How far a changes cursor lags now, and a little more.
const SETTLE: Duration =
    Duration::from_millis(shared::adapters::dynamo::keys::CHANGES_SETTLE_MS as u64 + 200);

async fn list(t: &TestStack, event: &str, query: &str) -> Value {
    let (status, body) = t
        .request(
            "GET",
            &format!("/api/whatsapp/guests/{event}?{query}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["guest_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_list_imports_lists_follows_edits_and_removes() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let path = "/api/whatsapp/guests/gala";

    // CSV: every row checked, each problem with its line and field.
    let csv = "name;phone;guest_id\n\
               Ana;+55 11 99999-0001;ana\n\
               Bruno;5511999990002;\n\
               ;+5511999990003;\n\
               Carla;+5511999990004;\n\
               Davi;+55 (11) 99999-0001;\n";
    let (status, answer) = t.post_raw(path, "text/csv", csv.into()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["created"].as_u64(), answer["updated"].as_u64()),
        (Some(2), Some(0))
    );
    let rejected: Vec<(u64, &str)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    // Bruno's number has no +, the third row no name, Davi has Ana's number.
    assert_eq!(
        rejected,
        [(3, "phone"), (4, "name"), (6, "phone")],
        "{answer}"
    );
    assert_eq!(
        answer["rejected"][2]["message"], "this phone is already on line 2",
        "{answer}"
    );

    // JSON: merges by id, else by phone; names each bad field.
    let (status, answer) = t
        .request(
            "POST",
            path,
            Some(json!({"guests": [
                {"name": "Ana Souza", "phone": "+5511999990001"},
                {"guest_id": "bruno", "name": "Bruno", "phone": "+5511999990002"},
                {"guest_id": "eva", "name": "Eva", "phone": "+5511999990005", "rsvp_token": "bad token"},
                {"guest_id": "carla", "name": "Carla", "phone": "+5511999990009"},
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            answer["created"].as_u64(),
            answer["updated"].as_u64(),
            answer["unchanged"].as_u64()
        ),
        (Some(2), Some(1), Some(0)),
        "{answer}"
    );
    assert_eq!(answer["rejected"][0]["field"], "guests[2].rsvp_token");
    // The import's cursor answers the import's own changes.
    let imported = list(
        &t,
        "gala",
        &format!("since={}", answer["changes"].as_str().unwrap()),
    )
    .await;
    for id in ["ana", "bruno", "carla"] {
        assert!(ids(&imported).contains(&id.to_owned()), "{imported}");
    }
    // A listing's cursor is taken before it reads (less the time a change
    // may take to land and reach the index).
    tokio::time::sleep(SETTLE).await;
    let since = list(&t, "gala", "limit=1").await["changes"]
        .as_str()
        .unwrap()
        .to_owned();

    // Followed one change at a time, from before the imports: every guest,
    // and the walk ends (a cut-off answer's cursor is where the next starts).
    let mut cursor = answer["changes"].as_str().unwrap().to_owned();
    let mut walked = HashSet::new();
    for _ in 0..50 {
        let part = list(&t, "gala", &format!("since={cursor}&limit=1")).await;
        walked.extend(ids(&part));
        cursor = part["changes"].as_str().unwrap().to_owned();
        if part["next_cursor"].is_null() {
            break;
        }
        assert_eq!(part["next_cursor"], part["changes"]);
    }
    for id in ["ana", "bruno", "carla"] {
        assert!(walked.contains(id), "{walked:?}");
    }

    let page = list(&t, "gala", "limit=2").await;
    assert_eq!(ids(&page), ["ana", "bruno"]);
    let next = page["next_cursor"].as_str().unwrap();
    let rest = list(&t, "gala", &format!("limit=2&cursor={next}")).await;
    assert_eq!(ids(&rest), ["carla", "p5511999990004"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    assert_eq!(page["items"][0]["name"], "Ana Souza");
    assert_eq!(page["items"][0]["invitation"], Value::Null);
    assert_eq!(page["items"][0]["opted_out"], false);

    // Invite two, opt one out: one listing tells each row's state.
    let job = t
        .send_bulk(
            "gala",
            vec![
                guest("ana", "Ana Souza", "+5511999990001"),
                guest("bruno", "Bruno", "+5511999990002"),
            ],
        )
        .await;
    t.wait_for_job(job["job_id"].as_str().unwrap(), WAIT, |j| {
        j["counts"]["read"] == 2
    })
    .await;
    let (status, _) = t
        .request("PUT", "/api/whatsapp/opt-outs/%2B5511999990009", None)
        .await;
    assert_eq!(status, 200);
    let all = list(&t, "gala", "").await;
    let state: BTreeMap<String, (Value, Value)> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["guest_id"].as_str().unwrap().to_owned(),
                (g["invitation"]["status"].clone(), g["opted_out"].clone()),
            )
        })
        .collect();
    assert_eq!(state["ana"], (json!("read"), json!(false)));
    assert_eq!(state["carla"], (Value::Null, json!(true)));
    assert_eq!(
        ids(&list(&t, "gala", "status=read").await),
        ["ana", "bruno"]
    );
    assert_eq!(
        ids(&list(&t, "gala", "status=not_invited&opted_out=false").await),
        ["p5511999990004"]
    );
    assert_eq!(ids(&list(&t, "gala", "opted_out=true").await), ["carla"]);
    assert_eq!(ids(&list(&t, "gala", "q=souza").await), ["ana"]);
    assert_eq!(
        ids(&list(&t, "gala", "q=99999-0004").await),
        ["p5511999990004"]
    );

    // Changes since the import: the invited guests, not the others.
    let changed = list(&t, "gala", &format!("since={since}")).await;
    let mut changed_ids = ids(&changed);
    changed_ids.sort();
    assert!(
        changed_ids.contains(&"ana".to_owned()) && changed_ids.contains(&"bruno".to_owned()),
        "{changed}"
    );
    assert!(
        !changed_ids.contains(&"p5511999990004".to_owned()),
        "{changed}"
    );
    // Nothing changes: nothing comes (once past what the cursor lags by).
    tokio::time::sleep(SETTLE).await;
    let quiet = list(
        &t,
        "gala",
        &format!("since={}", changed["changes"].as_str().unwrap()),
    )
    .await;
    let quiet = list(
        &t,
        "gala",
        &format!("since={}", quiet["changes"].as_str().unwrap()),
    )
    .await;
    assert_eq!(ids(&quiet), Vec::<String>::new(), "{quiet}");

    // Edit and remove, each seen by a page following the changes.
    let cursor = quiet["changes"].as_str().unwrap();
    let (status, edited) = t
        .request(
            "PUT",
            &format!("{path}/carla"),
            Some(json!({"name": "Carla Dias", "phone": "+5511999990009"})),
        )
        .await;
    assert_eq!(
        (status, &edited["name"]),
        (200, &json!("Carla Dias")),
        "{edited}"
    );
    assert_eq!(edited["opted_out"], true);
    let (status, clash) = t
        .request(
            "PUT",
            &format!("{path}/carla"),
            Some(json!({"name": "Carla", "phone": "+5511999990001"})),
        )
        .await;
    assert_eq!(
        (status, &clash["error"]["field"]),
        (400, &json!("phone")),
        "{clash}"
    );
    let (status, _) = t
        .request("DELETE", &format!("{path}/p5511999990004"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = t
        .request("DELETE", &format!("{path}/p5511999990004"), None)
        .await;
    assert_eq!(status, 404);
    let followed = list(&t, "gala", &format!("since={cursor}")).await;
    assert_eq!(ids(&followed), ["carla"], "{followed}");
    assert_eq!(followed["removed"], json!(["p5511999990004"]));

    // Bad input names its field; another organizer sees nothing.
    for (query, field) in [
        ("limit=0", "limit"),
        ("status=maybe", "status"),
        ("opted_out=yes", "opted_out"),
        ("since=nope", "since"),
        ("cursor=%25", "cursor"),
        ("since=AAAA&status=read", "since"),
    ] {
        let (status, body) = t.request("GET", &format!("{path}?{query}"), None).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some(field)),
            "{query}: {body}"
        );
    }
    let (status, body) = t.request("POST", path, Some(json!({"guests": []}))).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("guests"))
    );
    let (status, _) = t.request_as("someone-else", "GET", path, None).await;
    assert_eq!(status, 404);
    let (status, _) = t
        .request("GET", "/api/whatsapp/guests/no-such-event", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_send_to_the_same_guests_invites_none_without_resend_and_names_them() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let first = t.send_bulk("gala", guests(3)).await;
    t.wait_for_job(first["job_id"].as_str().unwrap(), WAIT, |j| {
        j["counts"]["read"] == 3
    })
    .await;
    assert_eq!(t.sim_messages().len(), 3);

    // The dry run says so first.
    let mut body = json!({"event_id": "gala", "guests": guests(4), "dry_run": true});
    let (status, dry) = t
        .request("POST", "/api/whatsapp/send-bulk", Some(body.clone()))
        .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        (
            dry["accepted"].as_u64(),
            dry["left_out"].as_array().map(Vec::len)
        ),
        (Some(1), Some(3)),
        "{dry}"
    );
    body["resend"] = json!(true);
    let (_, dry) = t
        .request("POST", "/api/whatsapp/send-bulk", Some(body))
        .await;
    assert_eq!(
        (dry["accepted"].as_u64(), dry["resends"].as_u64()),
        (Some(4), Some(3)),
        "{dry}"
    );

    let (status, again) = t
        .request(
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": "gala", "guests": guests(3)})),
        )
        .await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["accepted"], 0);
    let left: Vec<(u64, &str, &str, &str)> = again["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["index"].as_u64().unwrap(),
                l["guest_id"].as_str().unwrap(),
                l["reason"].as_str().unwrap(),
                l["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        left,
        [
            (0, "g0", "already_invited", "read"),
            (1, "g1", "already_invited", "read"),
            (2, "g2", "already_invited", "read")
        ]
    );
    assert!(
        again["left_out"][0]["message"]
            .as_str()
            .unwrap()
            .contains("resend")
    );
    let job = t.job(again["job_id"].as_str().unwrap()).await;
    assert_eq!(
        (job["total"].as_u64(), job["done"].as_bool()),
        (Some(0), Some(true)),
        "{job}"
    );
    // The one-guest route refuses with the same words.
    let (status, one) = t
        .request(
            "POST",
            "/api/whatsapp/send-invitation",
            Some(json!({"event_id": "gala", "guest": guests(1)[0]})),
        )
        .await;
    assert_eq!(status, 409, "{one}");
    assert!(
        one["error"]["message"].as_str().unwrap().contains("resend"),
        "{one}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.sim_messages().len(), 3, "nobody was messaged again");

    // Saying it resends: each once more.
    let (status, resent) = t
        .request(
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": "gala", "guests": guests(3), "resend": true})),
        )
        .await;
    assert_eq!(
        (status, resent["accepted"].as_u64()),
        (202, Some(3)),
        "{resent}"
    );
    assert_eq!(resent["left_out"], json!([]));
    t.wait_for_job(resent["job_id"].as_str().unwrap(), WAIT, |j| {
        j["counts"]["read"] == 3
    })
    .await;
    let per_guest: BTreeMap<String, usize> =
        t.sim_messages().iter().fold(BTreeMap::new(), |mut m, msg| {
            *m.entry(msg.params["To"].clone()).or_default() += 1;
            m
        });
    assert_eq!(per_guest.values().copied().collect::<Vec<_>>(), [2, 2, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sends_of_the_same_guests_at_once_invite_each_guest_once_under_faults() {
    let t = TestStack::start_under(Faults::harsh(), Policy::from_template(), |_, options| {
        e2e::quick_reconciliation(options, Duration::from_secs(2), Duration::from_secs(10));
    })
    .await;
    t.create_event("gala").await;
    let body = json!({"event_id": "gala", "guests": guests(60)});
    let send = || async {
        let mut tries = 0;
        loop {
            // Without a key a lost answer could not be told from a new
            // request, so each send carries its own.
            let (status, answer) = t
                .send_bulk_with_key(&format!("race-{}", rand_suffix()), &body)
                .await;
            if status == 202 || tries == 5 {
                return (status, answer);
            }
            tries += 1;
        }
    };
    let ((s1, a1), (s2, a2)) = tokio::join!(send(), send());
    assert_eq!((s1, s2), (202, 202), "{a1} {a2}");
    let accepted = a1["accepted"].as_u64().unwrap() + a2["accepted"].as_u64().unwrap();
    let left = a1["left_out"].as_array().unwrap().len() + a2["left_out"].as_array().unwrap().len();
    assert_eq!(
        (accepted, left),
        (60, 60),
        "each guest in exactly one of the two: {a1} {a2}"
    );
    for answer in [&a1, &a2] {
        let job_id = answer["job_id"].as_str().unwrap();
        let accepted = answer["accepted"].clone();
        t.wait_for_job(job_id, WAIT, |j| j["counts"]["read"] == accepted)
            .await;
    }
    let messages = t.sim_messages();
    let distinct: HashSet<&String> = messages.iter().map(|m| &m.params["To"]).collect();
    assert_eq!(
        (messages.len(), distinct.len()),
        (60, 60),
        "one message per guest"
    );
    let all = list(&t, "gala", "limit=1000").await;
    assert!(
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["invitation"]["status"] == "read")
    );
    let report = t.aws.summary();
    assert!(
        report.injected["transaction_conflict"] > 0,
        "{:?}",
        report.injected
    );
}

fn rand_suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_a_newer_invitation_replaced_is_not_retried() {
    let t = TestStack::start().await;
    let phone = "+5511999990077";
    t.sim
        .state()
        .patch_knobs(json!({"fail_numbers": {phone: 21211}}))
        .unwrap();
    t.create_event("gala").await;
    let ana = guest("ana", "Ana", phone);
    let first = t.send_bulk("gala", vec![ana.clone()]).await;
    let first_job = first["job_id"].as_str().unwrap().to_owned();
    t.wait_for_job(&first_job, WAIT, |j| j["counts"]["failed"] == 1)
        .await;
    let old = t.invitations("gala").await[0]["invitation_id"].clone();

    // The number fixed, a new send invites her (a failure holds no one), and it arrives.
    t.sim
        .state()
        .patch_knobs(json!({"fail_numbers": {}}))
        .unwrap();
    let second = t.send_bulk("gala", vec![ana]).await;
    assert_eq!(second["accepted"], 1, "{second}");
    t.wait_for_job(second["job_id"].as_str().unwrap(), WAIT, |j| {
        j["counts"]["read"] == 1
    })
    .await;

    // The old failure is not sent again, one by one or with the rest.
    let (status, body) = t.retry(&old).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("newer invitation"),
        "{body}"
    );
    let (status, body) = t.retry_failed(&first_job).await;
    assert_eq!((status, &body["retried"]), (202, &json!(0)), "{body}");
    let (status, body) = t
        .request(
            "POST",
            "/api/whatsapp/retry-failed",
            Some(json!({"event_id": "gala"})),
        )
        .await;
    assert_eq!((status, &body["retried"]), (202, &json!(0)), "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let to_her = t
        .sim_messages()
        .into_iter()
        .filter(|m| m.params["To"].ends_with(phone) && m.error_code.is_none())
        .count();
    assert_eq!(to_her, 1, "one message reached her");
}

/// Follows an event's changes from `cursor` until told to stop, keeping
/// each guest's latest row: what a page following the event shows.
async fn follow(
    t: &TestStack,
    event: &str,
    mut cursor: String,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> BTreeMap<String, Value> {
    let mut rows = BTreeMap::new();
    loop {
        // Asked to stop: one last walk to the end, then done.
        let last = *stop.borrow();
        loop {
            let part = list(t, event, &format!("since={cursor}&limit=100")).await;
            for row in part["items"].as_array().unwrap() {
                rows.insert(row["guest_id"].as_str().unwrap().to_owned(), row.clone());
            }
            for gone in part["removed"].as_array().into_iter().flatten() {
                rows.remove(gone.as_str().unwrap());
            }
            cursor = part["changes"].as_str().unwrap().to_owned();
            if part["next_cursor"].is_null() {
                break;
            }
        }
        if last {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_following_the_changes_misses_none_while_indexes_lag_under_faults() {
    const N: usize = 120;
    // Reconciliation settles what the faults strand (a record never queued,
    // a claim whose answer was lost).
    let t = TestStack::start_under(Faults::harsh(), Policy::from_template(), |_, options| {
        e2e::quick_reconciliation(options, Duration::from_secs(10), Duration::from_secs(15));
    })
    .await;
    t.create_event("gala").await;
    // Each write reaches the indexes up to 2 s after it lands.
    t.aws.set_index_lag(Some(Duration::from_secs(2)));
    let from = list(&t, "gala", "limit=1").await["changes"]
        .as_str()
        .unwrap()
        .to_owned();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let following = follow(&t, "gala", from, &stopped);

    let work = async {
        // An import and a send of the same guests at once, then every
        // invitation followed to where it settles.
        let import = t.request(
            "POST",
            "/api/whatsapp/guests/gala",
            Some(json!({ "guests": guests(N) })),
        );
        let send = t.send_bulk("gala", guests(N));
        let ((status, imported), sent) = tokio::join!(import, send);
        assert_eq!(status, 200, "{imported}");
        let job_id = sent["job_id"].as_str().unwrap().to_owned();
        t.wait_for_job(&job_id, Duration::from_secs(240), |j| {
            let settled = ["delivered", "read", "failed", "undelivered", "skipped"];
            let n: i64 = settled
                .iter()
                .map(|s| j["counts"][s].as_i64().unwrap_or(0))
                .sum();
            n == N as i64
        })
        .await;
        // Past what the cursor lags by: every change has reached the index.
        tokio::time::sleep(SETTLE + Duration::from_secs(2)).await;
        stop.send(true).unwrap();
    };
    let (followed, ()) = tokio::join!(following, work);

    let mut listed = BTreeMap::new();
    let mut query = "limit=200".to_owned();
    loop {
        let page = list(&t, "gala", &query).await;
        for row in page["items"].as_array().unwrap() {
            listed.insert(row["guest_id"].as_str().unwrap().to_owned(), row.clone());
        }
        match page["next_cursor"].as_str() {
            Some(next) => query = format!("limit=200&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(listed.len(), N);
    let missing: Vec<&String> = listed
        .keys()
        .filter(|id| !followed.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "the page never saw {missing:?}");
    let stale: Vec<(&Value, &Value)> = listed
        .iter()
        .filter(|&(id, row)| followed[id] != *row)
        .map(|(id, row)| (&followed[id], row))
        .collect();
    assert!(
        stale.is_empty(),
        "{} rows stale on the page, e.g. shown {} but now {}",
        stale.len(),
        stale[0].0,
        stale[0].1
    );
    println!(
        "index lag hid {:?} items from reads",
        t.aws.summary().injected.get("index_lag")
    );
}

/// One rule for numbers everywhere: as people write them (spaces, dashes,
/// dots, brackets) in a JSON import, a CSV import, send-bulk and an edit,
/// stored as E.164, so each names the same guest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_as_people_write_them_are_taken_alike_everywhere() {
    let t = TestStack::start().await;
    t.create_event("gala").await;
    let path = "/api/whatsapp/guests/gala";
    let (status, answer) = t
        .request(
            "POST",
            path,
            Some(json!({"guests": [guest("ana", "Ana", "+55 (11) 98765-4321")]})),
        )
        .await;
    assert_eq!((status, &answer["created"]), (200, &json!(1)), "{answer}");
    let csv = "guest_id,name,phone\nbo,Bo,+55 11 98765.4322\n";
    let (status, answer) = t.post_raw(path, "text/csv", csv.into()).await;
    assert_eq!((status, &answer["created"]), (200, &json!(1)), "{answer}");
    let (status, edited) = t
        .request(
            "PUT",
            &format!("{path}/bo"),
            Some(json!({"name": "Bo", "phone": "+55 (11) 98765-4323"})),
        )
        .await;
    assert_eq!(
        (status, &edited["phone"]),
        (200, &json!("+5511987654323")),
        "{edited}"
    );
    // The send names the same guests by their numbers as written there.
    let sent = t
        .send_bulk(
            "gala",
            vec![
                guest("ana", "Ana", "+55 11 98765-4321"),
                guest("bo", "Bo", "+55-11-98765-4323"),
            ],
        )
        .await;
    assert_eq!(sent["accepted"], 2, "{sent}");
    let rows = list(&t, "gala", "").await;
    let phones: Vec<&str> = rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["phone"].as_str().unwrap())
        .collect();
    assert_eq!(phones, ["+5511987654321", "+5511987654323"], "{rows}");
}

/// The list wins: a guest's number edited after a failed invitation shows
/// the invitation went elsewhere, a send from a copy taken before the edit
/// is refused naming the field (nothing sent to the old number), and a
/// retry goes out as things are now: the fixed template, the new number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_wins_over_a_stale_copy_and_a_retry_goes_as_things_are_now() {
    let t = TestStack::start().await;
    let (old, new) = ("+5511999990071", "+5511999990072");
    t.sim
        .state()
        .patch_knobs(json!({"fail_numbers": {old: 63024}}))
        .unwrap();
    t.create_event("gala").await;
    let template = json!({"template_id": "warm", "name": "Warm", "text": "Hi {guest_name}!"});
    let (status, body) = t
        .request("POST", "/api/whatsapp/templates", Some(template))
        .await;
    assert_eq!(status, 201, "{body}");
    let ana = guest("ana", "Ana", old);
    let (status, first) = t
        .request(
            "POST",
            "/api/whatsapp/send-bulk",
            Some(json!({"event_id": "gala", "template_id": "warm", "guests": [ana.clone()]})),
        )
        .await;
    assert_eq!(status, 202, "{first}");
    t.wait_for_job(first["job_id"].as_str().unwrap(), WAIT, |j| {
        j["counts"]["failed"] == 1
    })
    .await;
    let failed = t.invitations("gala").await[0]["invitation_id"].clone();

    // The organizer corrects her number: the row says the invitation went
    // to the old one.
    let (status, body) = t
        .request(
            "PUT",
            "/api/whatsapp/guests/gala/ana",
            Some(json!({"name": "Ana", "phone": new})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let row = &list(&t, "gala", "").await["items"][0];
    assert_eq!(row["invitation"]["sent_to_other_number"], old, "{row}");

    // A tab open since then sends the old copy: 409 naming the field.
    let (status, body) = t
        .request(
            "POST",
            "/api/whatsapp/send-bulk",
            Some(
                json!({"event_id": "gala", "guests": [guest("bia", "Bia", "+5511999990073"), ana]}),
            ),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["field"], "guests[1].phone", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(new),
        "{body}"
    );

    // The template fixed, the retry goes out as things are now, and says so.
    let (status, body) = t
        .request(
            "PUT",
            "/api/whatsapp/templates/warm",
            Some(json!({"name": "Warm", "text": "Hi {guest_name}, fixed!"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = t.retry(&failed).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["changed"], json!(["template", "phone"]), "{body}");
    assert_eq!(body["template_version"], 2, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("as things are now")
    );
    t.wait_for_invitation("gala", failed.as_str().unwrap(), WAIT, |i| {
        i["status"] == "read"
    })
    .await;
    let to_new: Vec<String> = t
        .sim_messages()
        .into_iter()
        .filter(|m| m.params["To"].ends_with(new))
        .map(|m| m.params.get("Body").cloned().unwrap_or_default())
        .collect();
    assert_eq!(to_new, ["Hi Ana, fixed!"], "one message, as fixed");
    assert!(
        !t.sim_messages()
            .iter()
            .any(|m| m.params["To"].ends_with("+5511999990073")),
        "the refused send sent nothing"
    );
}
