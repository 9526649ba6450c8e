//! Every Twilio / WhatsApp error code in the product's one table
//! (`shared/src/adapters/twilio/codes.rs`), met through the simulator: the
//! listing shows its words and what it means, and the product does what
//! that says.

use e2e::{TestStack, guest};
use serde_json::{Value, json};
use shared::adapters::twilio::codes::{self, Class};
use shared::domain::reason::Action;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// One guest per code.
fn phone(i: usize) -> String {
    format!("+55119999940{i:02}")
}

/// Twilio answers the create with the account's and the request's codes
/// (2xxxx); WhatsApp's delivery codes come in a failed status callback.
fn refused_at_create(code: u32) -> bool {
    code < 30000
}

/// The names the API documents (openapi.yaml, `error_action`).
fn action_name(action: Action) -> Value {
    let name = match action {
        Action::RetryLater => "retry_later",
        Action::WaitForDailyLimit => "wait_for_daily_limit",
        Action::NeedsApprovedTemplate => "needs_approved_template",
        Action::NotOnWhatsApp => "not_on_whatsapp",
        Action::MarketingNotDelivered => "marketing_not_delivered",
        Action::OptedOut => "opted_out",
        Action::LiftYourOptOut => "lift_your_opt_out",
        Action::Expired => "expired",
        Action::InvalidNumber => "invalid_number",
        Action::CheckAccount => "check_account",
        Action::FixTemplate => "fix_template",
        Action::RetryByHand => "retry_by_hand",
        Action::Answered => "answered",
        Action::GuestListChanged => "guest_list_changed",
    };
    Value::from(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_code_shows_its_words_and_its_action_and_is_handled_so() {
    let table: Vec<_> = codes::table().collect();
    let t = TestStack::start_with(|sim, options| {
        // A refusal for the daily limit holds sending to what the budget
        // holds for a window. Waiting invitations are released as often.
        options.profile.window_seconds = 30;
        options.reconcile_every = Duration::from_millis(500);
        for (i, (code, ..)) in table.iter().enumerate() {
            if refused_at_create(*code) {
                sim.knobs.fail_numbers.insert(phone(i), *code);
            } else {
                sim.knobs.undelivered_numbers.insert(phone(i), *code);
            }
        }
    })
    .await;
    t.create_event("gala").await;
    let guests = (0..table.len())
        .map(|i| guest(&format!("g{i}"), "Guest", &phone(i)))
        .collect();
    let bulk = t.send_bulk("gala", guests).await;
    assert_eq!(bulk["queued"], table.len(), "{bulk}");

    // Codes a later try gets past are tried again, not failed: they stay
    // queued while Twilio refuses them, and go out once it stops.
    let retried: Vec<usize> = table
        .iter()
        .enumerate()
        .filter(|(_, (code, class, action, _))| {
            refused_at_create(*code) && *class == Class::Retry && *action != Action::RetryByHand
        })
        .map(|(i, _)| i)
        .collect();
    assert!(!retried.is_empty());
    // Over the daily limit: waits for the window and goes again, never fails.
    let waited: Vec<usize> = table
        .iter()
        .enumerate()
        .filter(|(_, (_, _, action, _))| *action == Action::WaitForDailyLimit)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(waited.len(), 1);
    // Marketing WhatsApp held back for a guest outside the US (63049, and
    // Meta's experiment codes): waits to be tried again an hour later.
    let held: Vec<usize> = table
        .iter()
        .enumerate()
        .filter(|(_, (_, _, action, _))| *action == Action::MarketingNotDelivered)
        .map(|(i, _)| i)
        .collect();
    assert!(held.len() >= 2);
    let settled = |i: &Value| {
        let status = i["status"].as_str().unwrap();
        // A refusal for the daily limit pauses everyone a moment: waiting
        // is still on its way.
        !["queued", "waiting", "sending", "sent"].contains(&status)
    };
    let start = std::time::Instant::now();
    let by_guest = loop {
        let all = t.all_invitations("gala").await;
        let others_done = all
            .iter()
            .filter(|i| {
                let g: usize = i["guest_id"].as_str().unwrap()[1..].parse().unwrap();
                !retried.contains(&g) && !waited.contains(&g) && !held.contains(&g)
            })
            .all(settled);
        if others_done {
            break all;
        }
        assert!(start.elapsed() < WAIT, "not settled: {all:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let invitation = |i: usize| {
        by_guest
            .iter()
            .find(|inv| inv["guest_id"] == format!("g{i}"))
            .unwrap()
            .clone()
    };
    for (i, (code, class, action, words)) in table.iter().enumerate() {
        let inv = invitation(i);
        if retried.contains(&i) {
            // Queued for its next try, or being tried (or waiting, if a try met the
            // pause a refusal for the daily limit set): never failed.
            let status = inv["status"].as_str().unwrap();
            assert!(
                ["queued", "waiting", "sending"].contains(&status),
                "{code} is tried again: {inv}"
            );
            continue;
        }
        if waited.contains(&i) {
            continue;
        }
        if held.contains(&i) {
            // Reconciliation has run many times meanwhile: not yet due.
            let inv = t
                .wait_for_invitation(
                    "gala",
                    inv["invitation_id"].as_str().unwrap(),
                    WAIT,
                    |inv| inv["status"] == "waiting",
                )
                .await;
            assert_eq!(inv["attempt"], 2, "{inv}");
            assert_eq!(inv["error_code"], "marketing_held_back", "{inv}");
            assert_eq!(inv["error_action"], "retry_later", "{inv}");
            let due = shared::domain::parse_timestamp(inv["due_at"].as_str().unwrap()).unwrap();
            let wait = due - time::OffsetDateTime::now_utc();
            assert!(wait > time::Duration::minutes(55), "{inv}");
            let _ = (class, words);
            continue;
        }
        let expected = if refused_at_create(*code) {
            "failed"
        } else {
            "undelivered"
        };
        assert_eq!(inv["status"], expected, "{code}: {inv}");
        assert_eq!(inv["error_code"], code.to_string(), "{inv}");
        assert_eq!(inv["error_message"], *words, "{code}");
        assert_eq!(inv["error_action"], action_name(*action), "{code}");
        assert_eq!(inv["what_to_do"], action.what_to_do(), "{code}");
        let _ = class;
        // Opting out through Twilio is recorded: no organizer messages the
        // guest again.
        let opt_out = t.opt_out(&phone(i)).await;
        assert_eq!(
            opt_out["opted_out"],
            *action == Action::OptedOut,
            "{code}: {opt_out}"
        );
        if *action == Action::OptedOut {
            assert_eq!(opt_out["source"], "twilio");
        }
    }

    // 63018: the invitation waited under a new attempt (the job says why, in
    // words) instead of failing; once the window frees it goes out.
    let limited = invitation(waited[0]);
    let id = limited["invitation_id"].as_str().unwrap().to_owned();
    let job_id = bulk["job_id"].as_str().unwrap().to_owned();
    let mut said_why = false;
    let start = std::time::Instant::now();
    loop {
        let inv = t.invitation("gala", &id).await;
        assert!(
            !["failed", "undelivered"].contains(&inv["status"].as_str().unwrap()),
            "{inv}"
        );
        let job = t.job(&job_id).await;
        // With it wait those WhatsApp held back, and tries that met the
        // limit the refusal taught.
        if job["waiting"]["count"].as_u64() >= Some(1) {
            assert_eq!(
                job["waiting"]["words"],
                Action::WaitForDailyLimit.what_to_do()
            );
            said_why = true;
        }
        if said_why && inv["attempt"].as_u64() >= Some(2) {
            break;
        }
        assert!(start.elapsed() < WAIT, "never waited: {inv} {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut undelivered = t.sim.state().knobs().undelivered_numbers;
    undelivered.remove(&phone(waited[0]));
    t.sim
        .state()
        .patch_knobs(json!({ "undelivered_numbers": undelivered }))
        .unwrap();
    let inv = t
        .wait_for_invitation("gala", &id, WAIT, |inv| inv["status"] == "read")
        .await;
    assert!(inv["attempt"].as_u64() >= Some(2), "{inv}");

    // Twilio stops refusing: the retried ones go out, on their first attempt.
    let mut fail_numbers = t.sim.state().knobs().fail_numbers;
    for i in &retried {
        fail_numbers.remove(&phone(*i));
    }
    t.sim
        .state()
        .patch_knobs(json!({ "fail_numbers": fail_numbers }))
        .unwrap();
    for i in &retried {
        let id = invitation(*i)["invitation_id"].as_str().unwrap().to_owned();
        let inv = t
            .wait_for_invitation("gala", &id, WAIT, |inv| inv["status"] == "read")
            .await;
        assert_eq!(inv["attempt"], 1, "{inv}");
        assert!(inv["error_action"].is_null(), "{inv}");
    }
}
