//! The dashboard's browser tests (`infra/scripts/test.sh browser`): starts a
//! whole local stack on 127.0.0.1 (emulators, Twilio simulator, API and
//! dashboard), runs `node --test` on the browser test scripts in
//! `tests/browser/` against it, and fails when they fail. Everything it
//! started stops when it exits.
//!
//! The scripts get `RSVP_API_URL` (the stack, which serves the dashboard at
//! `/`), `RSVP_SIM_URL` (the simulator, for its `/_sim/*` controls) and
//! `RSVP_ARTIFACTS` (where screenshots go: `test-artifacts/dashboard/`),
//! and `RSVP_LIMITED_API_URL` / `RSVP_LIMITED_SIM_URL`: a second stack whose
//! sender may reach 3 guests in a 30-second "day" (the daily limit's tests).
//!
//! Options: `--serve` starts the stack, prints its URLs and waits for Ctrl-C
//! (to try the dashboard by hand against the same setup); `--bench` runs
//! the dashboard's benchmark (`tests/browser/bench-dashboard.mjs`, `make
//! bench ARGS=--dashboard`) instead of the tests, passing it the arguments
//! after it; any other arguments are passed to `node --test` (e.g.
//! `--test-name-pattern=phone`).

use e2e::TestStack;
use shared::domain::budget::DailyLimit;
use std::process::ExitCode;
use std::time::Duration;

/// The daily limit of the second stack's sender.
const LIMITED_TO: u32 = 3;
/// The whole run takes about a minute and a half; this is a fence.
const NODE_TIMEOUT: Duration = Duration::from_secs(600);
const BENCH_SCRIPT: &str = "tests/browser/bench-dashboard.mjs";
const SCRIPTS: &[&str] = &[
    "tests/browser/guests.test.mjs",
    "tests/browser/dashboard.test.mjs",
    "tests/browser/rsvp.test.mjs",
    "tests/browser/list.test.mjs",
];

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let serve = args.iter().any(|a| a == "--serve");
    let bench = args.iter().any(|a| a == "--bench");
    let node_args: Vec<&String> = args
        .iter()
        .filter(|a| *a != "--serve" && *a != "--bench")
        .collect();
    let root = local_stack::emulators::repo_root();
    if bench {
        return run_bench(&root, &node_args).await;
    }

    let t = TestStack::start_with(|_, _| {}).await;
    let api_url = t.stack.api_url.clone();
    let sim_url = t.sim.base_url();
    println!("local stack: dashboard and API {api_url}/ , Twilio simulator {sim_url}");
    // WhatsApp's daily limit is the whole stack's: a second stack, whose
    // sender may reach 3 guests in a 30-second "day", for the tests of it.
    let limited = TestStack::start_with(|_, options| {
        options.profile.daily_limit = DailyLimit::Limited(LIMITED_TO);
        options.profile.window_seconds = 30;
        options.reconcile_every = Duration::from_secs(1);
    })
    .await;
    let limited_api_url = limited.stack.api_url.clone();
    println!("local stack with a daily limit of {LIMITED_TO} in 30 s: {limited_api_url}/");

    if serve {
        println!("serving until Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        return ExitCode::SUCCESS;
    }

    let artifacts = root.join("test-artifacts").join("dashboard");
    let mut command = tokio::process::Command::new("node");
    command
        .arg("--test")
        .arg("--test-concurrency=1")
        // Once every test has ended, a handle a browser left open must not
        // keep the run waiting until the fence.
        .arg("--test-force-exit")
        .arg("--test-reporter=spec")
        .args(&node_args)
        .args(SCRIPTS)
        .current_dir(&root)
        .env("RSVP_API_URL", &api_url)
        .env("RSVP_SIM_URL", &sim_url)
        .env("RSVP_LIMITED_API_URL", &limited_api_url)
        .env("RSVP_LIMITED_SIM_URL", limited.sim.base_url())
        .env("RSVP_ARTIFACTS", &artifacts)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("browser-tests: cannot start node: {e} (need Node.js >= 20 on PATH)");
            return ExitCode::FAILURE;
        }
    };
    let status = match tokio::time::timeout(NODE_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            eprintln!("browser-tests: waiting for node failed: {e}");
            return ExitCode::FAILURE;
        }
        Err(_) => {
            eprintln!("browser-tests: node ran longer than {NODE_TIMEOUT:?}; stopped");
            let _ = child.kill().await;
            return ExitCode::FAILURE;
        }
    };
    drop(t);
    drop(limited);
    if status.success() {
        println!(
            "browser tests passed; screenshots in {}",
            artifacts.display()
        );
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "browser tests failed ({status}); screenshots in {}, stack logs in {}",
            artifacts.display(),
            local_stack::emulators::log_dir().display()
        );
        ExitCode::FAILURE
    }
}

/// The dashboard's benchmark: one stack, the script, its exit status.
async fn run_bench(root: &std::path::Path, args: &[&String]) -> ExitCode {
    let t = TestStack::start_with(|_, _| {}).await;
    println!("local stack: {}/", t.stack.api_url);
    let status = tokio::process::Command::new("node")
        .arg(BENCH_SCRIPT)
        .args(args)
        .current_dir(root)
        .env("RSVP_API_URL", &t.stack.api_url)
        .env("RSVP_SIM_URL", t.sim.base_url())
        .kill_on_drop(true)
        .status()
        .await;
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("bench-dashboard failed ({s})");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("browser-tests: cannot start node: {e} (need Node.js >= 20 on PATH)");
            ExitCode::FAILURE
        }
    }
}
