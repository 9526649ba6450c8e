//! A generated-request fuzzer (schemathesis, installed by setup) over
//! openapi.yaml: for every operation it generates requests the document
//! allows and sends them to a local stack, which must accept them (2xx, or
//! 404 / 409 for a thing missing or in another state), answer with a
//! documented status and body, and never fail (5xx). A document looser
//! than the API (a form, length or limit it does not declare) shows as an
//! operation rejecting valid requests. Settings: tests/fuzz/.

use e2e::{TestStack, sample_event};
use std::path::Path;

/// The organizer the fuzzer's requests come from (tests/fuzz/schemathesis.toml).
const ORGANIZER: &str = "fuzz-organizer";
/// The event its requests name (tests/fuzz/hooks.py).
const EVENT: &str = "fuzz-event";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_accepts_the_requests_the_document_allows() {
    // What the functions log: a failure's errors come with the report.
    let logs = e2e::logs::capture();
    let root = local_stack::emulators::repo_root();
    let program = root.join(".venv/bin/schemathesis");
    assert!(
        program.is_file(),
        "{} is missing: run infra/scripts/setup.sh",
        program.display()
    );
    // No sender: what is queued stays queued (the fuzzer tests the API).
    let t = TestStack::start_with(|_, options| options.max_concurrency = 0).await;
    let (status, body) = t
        .request_as(
            ORGANIZER,
            "PUT",
            &format!("/api/whatsapp/events/{EVENT}"),
            Some(sample_event()),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let scratch = std::env::temp_dir().join(format!("rsvp-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let fuzz = root.join("tests/fuzz");
    let output = tokio::process::Command::new(&program)
        .arg("--config-file")
        .arg(fuzz.join("schemathesis.toml"))
        .arg("run")
        .arg(root.join("openapi.yaml"))
        .args(["--url", &t.stack.api_url, "--no-color"])
        .env("SCHEMATHESIS_HOOKS", fuzz.join("hooks.py"))
        // Hypothesis keeps its caches here, not in the repository.
        .env("HYPOTHESIS_STORAGE_DIRECTORY", &scratch)
        .current_dir(&scratch)
        .output()
        .await
        .expect("schemathesis runs");
    let _ = std::fs::remove_dir_all(Path::new(&scratch));
    let report = String::from_utf8_lossy(&output.stdout);
    let errors: Vec<String> = logs
        .text()
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(str::to_owned)
        .collect();
    assert!(
        output.status.success(),
        "the fuzzer found operations that do not accept what the document allows:\n{report}\n{}\nerrors logged:\n{}",
        String::from_utf8_lossy(&output.stderr),
        errors.join("\n")
    );
    let summary = report
        .lines()
        .filter(|l| l.contains("generated") || l.contains("passed"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("{summary}");
}
