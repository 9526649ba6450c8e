//! The README's walk-through runs as pasted: every shell block that talks to
//! the local stack, in order, in one bash, against a test stack (its
//! addresses in place of `localhost:3000` and `localhost:3001`). Each curl
//! fails the run on an HTTP error.

use e2e::TestStack;
use e2e::template::repo_root;
use std::process::Command;

/// The README's ```sh blocks that call the local stack, in order.
fn walk_through() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                if block.contains("localhost:3000") {
                    blocks.push(block.clone());
                }
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_runs_as_pasted() {
    let t = TestStack::start().await;
    let api = t.stack.api_url.trim_start_matches("http://").to_owned();
    let sim = t.sim.base_url().trim_start_matches("http://").to_owned();
    let blocks = walk_through();
    assert!(blocks.len() >= 4, "the walk-through's blocks: {blocks:#?}");
    let script = blocks
        .join("\n")
        .replace("localhost:3000", &api)
        .replace("127.0.0.1:3000", &api)
        .replace("localhost:3001", &sim);
    // curl answers an HTTP error as a failure, and shows its body.
    let prelude = "set -euo pipefail\ncurl() { command curl --fail-with-body \"$@\"; }\n";
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("-c")
            .arg(format!("{prelude}{script}"))
            .output()
            .expect("bash runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the walk-through failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""status":"read""#), "{stdout}");
    assert!(stdout.contains(r#""opted_out":true"#), "{stdout}");
}
