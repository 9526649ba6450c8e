#!/usr/bin/env bash
# Runs every check of the project, in order, stopping at the first failure.
# `make test` runs it; so does .ci/run (then adds fmt and clippy).
#
# Usage: infra/scripts/test.sh [STEP...]   (no STEP: all of TEST_STEPS)
#        infra/scripts/test.sh --list
#
# To add a check: write a step_<name> function below and append <name> to
# TEST_STEPS. Steps run from the repo root with RSVP_REPO_ROOT exported and
# .venv/bin first on PATH (see lib.sh).
set -euo pipefail
# shellcheck source=infra/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RSVP_REPO_ROOT"

TEST_STEPS=(
  setup
  template_lint
  check
  cargo_test
  browser
)

# Python venv + node modules (skipped when up to date).
step_setup() {
  bash infra/scripts/setup.sh
}

# template.yaml through cfn-lint and the SAM CLI's own validation (its
# transform plus cfn-lint), both offline. What they miss inside SAM
# properties, tests/tests/suite/sam_template.rs checks.
step_template_lint() {
  export SAM_CLI_TELEMETRY=0
  export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
  # Chained: run_step calls steps in an `||` list, where set -e is off.
  cfn-lint --version &&
    cfn-lint -- template.yaml &&
    sam validate --lint --template-file template.yaml
}

# Every crate, every target (bins, tests, benches, examples) compiles.
# Checked, not built: the tests build what they run, and clippy (.ci/run)
# then reuses these checked dependencies instead of checking them again.
step_check() {
  cargo check --workspace --all-targets
}

# Unit and integration tests; the emulator tests need the setup step.
step_cargo_test() {
  cargo test --workspace
}

# The dashboard in Debian's Chromium (installed here when missing), driven by
# playwright-core: tests/src/bin/browser-tests.rs starts a local stack on
# 127.0.0.1 and runs tests/browser/*.test.mjs against it. Screenshots go to
# test-artifacts/dashboard/.
step_browser() {
  # shellcheck source=infra/scripts/setup.sh
  source infra/scripts/setup.sh
  ensure_chromium &&
    cargo run -q -p e2e --bin browser-tests
}

if [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${TEST_STEPS[@]}"
  exit 0
fi
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=("${TEST_STEPS[@]}")
for step in "${steps[@]}"; do
  declare -F "step_$step" >/dev/null || die "unknown step: $step (steps: ${TEST_STEPS[*]})"
done

started=$(date +%s)
for step in "${steps[@]}"; do
  run_step "$step" "step_$step"
done
log "all steps passed (${steps[*]}) in $(($(date +%s) - started))s"
