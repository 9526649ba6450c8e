#!/usr/bin/env bash
# Runs the benchmark against a local stack (`make bench ARGS="..."`).
# Arguments are passed to the bench binary; `--dashboard` first runs the
# dashboard's benchmark in Chromium instead (the rest go to its script).
set -euo pipefail
# shellcheck source=infra/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RSVP_REPO_ROOT"

if [[ "${1:-}" == "--dashboard" ]]; then
  shift
  bash infra/scripts/setup.sh --chromium
  exec cargo run -p e2e --bin browser-tests -- --bench "$@"
fi
bash infra/scripts/setup.sh
exec cargo run -p e2e --bin bench -- "$@"
