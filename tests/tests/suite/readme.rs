//! The README's walk-through runs as pasted, wherever it lives: every bash
//! block that talks to the local stack, from the files of [`WALK_THROUGH`]
//! in that order, in one bash, against a test stack (its addresses in place
//! of `localhost:3000` and `localhost:3001`). Each curl fails the run on an
//! HTTP error.
//!
//! And the documentation holds together: every file of `docs/` is in that
//! order and linked from the README, every relative link and anchor of the
//! README and `docs/` resolves, runnable blocks are marked `bash` (under
//! Debian's `sh` the walk-through's `$'…'` quoting breaks), and
//! `docs/api.md` has a section for every route.

use e2e::TestStack;
use e2e::template::repo_root;
use shared::edge::routes::{ROUTES, WEBHOOK_PATH};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::process::Command;

/// Where the walk-through lives, in the order its blocks run. The README
/// has its first steps (an event, one invitation, its status, what the
/// simulator got); `docs/organizers.md` goes on from there (a dry run, the
/// guest list, templates, opt-out, answers), using the shell variables
/// (`JOB`) and the state the README's blocks made, in the order the README
/// had them before the guides moved to `docs/`. Every file of `docs/` is
/// listed, so a block that calls the stack runs wherever it is added.
const WALK_THROUGH: &[&str] = &[
    "README.md",
    "docs/organizers.md",
    "docs/api.md",
    "docs/local-stack.md",
    "docs/operations.md",
    "docs/benchmark.md",
    "docs/layout.md",
];

/// Fences that open a runnable shell block; the files use `bash`.
const SHELL_FENCES: [&str; 2] = ["```bash", "```sh"];

fn read(file: &str) -> String {
    std::fs::read_to_string(repo_root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The blocks of `text` fenced with one of `fences`, in order, each line
/// ending in a newline.
fn fenced_blocks(text: &str, fences: &[&str]) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, fence) if fences.contains(&fence) => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
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

/// The walk-through: each file's shell blocks that call the local stack,
/// with the file they are in, in [`WALK_THROUGH`]'s order.
fn walk_through() -> Vec<(&'static str, String)> {
    WALK_THROUGH
        .iter()
        .flat_map(|&file| {
            fenced_blocks(&read(file), &SHELL_FENCES)
                .into_iter()
                .filter(|block| block.contains("localhost:3000"))
                .map(move |block| (file, block))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_runs_as_pasted() {
    let t = TestStack::start().await;
    let api = t.stack.api_url.trim_start_matches("http://").to_owned();
    let sim = t.sim.base_url().trim_start_matches("http://").to_owned();
    let blocks = walk_through();
    // The README's own first screen walks through an event, one
    // invitation, its status and what the simulator got.
    let first: Vec<&str> = blocks
        .iter()
        .filter(|(file, _)| *file == "README.md")
        .map(|(_, block)| block.as_str())
        .collect();
    let first = first.join("\n");
    for step in [
        "localhost:3000/api/whatsapp/events/",
        "localhost:3000/api/whatsapp/send-invitation",
        "localhost:3000/api/whatsapp/status/",
        "localhost:3001/_sim/messages",
    ] {
        assert!(
            first.contains(step),
            "the README's walk-through lacks {step}:\n{first}"
        );
    }
    assert!(
        blocks.iter().any(|(file, _)| *file == "docs/organizers.md"),
        "docs/organizers.md goes on with the walk-through: {blocks:#?}"
    );
    assert!(blocks.len() >= 7, "the walk-through's blocks: {blocks:#?}");
    let script = blocks
        .iter()
        .map(|(_, block)| block.as_str())
        .collect::<Vec<_>>()
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

/// The lines of `text` outside fenced blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push(line);
        }
    }
    lines
}

/// The anchors of a Markdown file's headings, as GitHub makes them:
/// lower case, spaces as `-`, punctuation but `-` and `_` dropped, and a
/// repeated heading's numbered `-1`, `-2`, ….
fn anchors(text: &str) -> HashSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = HashSet::new();
    for line in prose(text) {
        if !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#').trim();
        let mut slug = String::new();
        for c in heading.chars().flat_map(char::to_lowercase) {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                slug.push(c);
            } else if c == ' ' {
                slug.push('-');
            }
        }
        let n = seen.entry(slug.clone()).or_insert(0);
        let anchor = if *n == 0 { slug } else { format!("{slug}-{n}") };
        *n += 1;
        anchors.insert(anchor);
    }
    anchors
}

/// The targets of a line's Markdown links, `[text](target)`.
fn link_targets(line: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) => {
                targets.push(&after[..end]);
                rest = &after[end..];
            }
            None => break,
        }
    }
    targets
}

#[test]
fn the_docs_hold_together() {
    // Every file of docs/ is in the walk-through's order, and the README
    // links it.
    let docs: BTreeSet<String> = std::fs::read_dir(repo_root().join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("a docs/ entry").file_name())
        .map(|name| format!("docs/{}", name.to_string_lossy()))
        .filter(|name| name.ends_with(".md"))
        .collect();
    let listed: BTreeSet<String> = WALK_THROUGH[1..].iter().map(|f| f.to_string()).collect();
    assert_eq!(docs, listed, "docs/ against WALK_THROUGH");
    let readme = read("README.md");
    for doc in &docs {
        assert!(
            readme.contains(&format!("]({doc})")),
            "the README links {doc}"
        );
    }

    let mut problems = Vec::new();
    let mut links = 0;
    for &file in WALK_THROUGH {
        let text = read(file);
        if text.lines().any(|line| line.trim_end() == "```sh") {
            problems.push(format!(
                "{file}: a ```sh block: runnable blocks are ```bash"
            ));
        }
        for line in prose(&text) {
            for target in link_targets(line) {
                links += 1;
                let scheme = target.split_once(':').is_some_and(|(s, _)| {
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic())
                });
                if scheme {
                    continue;
                }
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let linked = if path.is_empty() {
                    file.to_owned()
                } else {
                    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
                    dir.join(path).to_string_lossy().into_owned()
                };
                let on_disk = repo_root().join(&linked);
                if !on_disk.exists() {
                    problems.push(format!("{file}: ({target}): no {linked}"));
                } else if !anchor.is_empty()
                    && linked.ends_with(".md")
                    && !anchors(&read(&linked)).contains(anchor)
                {
                    problems.push(format!("{file}: ({target}): no heading #{anchor}"));
                }
            }
        }
    }
    assert!(
        links >= 40,
        "{links} links found: is link_targets reading them?"
    );

    // docs/api.md has a section, "### `METHOD /path`", for every route.
    let api = read("docs/api.md");
    let sections: HashSet<&str> = prose(&api)
        .into_iter()
        .filter_map(|line| line.strip_prefix("### `")?.strip_suffix('`'))
        .collect();
    for route in ROUTES {
        let section = format!("{} {}", route.method, route.path);
        if !sections.contains(section.as_str()) {
            problems.push(format!("docs/api.md: no section `{section}`"));
        }
    }
    assert!(
        sections.contains(format!("POST {WEBHOOK_PATH}").as_str()),
        "{sections:?}"
    );
    assert!(problems.is_empty(), "{problems:#?}");
}
