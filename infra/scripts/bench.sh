#!/usr/bin/env bash
# Runs the benchmark against a local stack (`make bench ARGS="..."`).
# Arguments are passed to the bench binary.
set -euo pipefail
# shellcheck source=infra/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RSVP_REPO_ROOT"

bash infra/scripts/setup.sh
exec cargo run -p e2e --bin bench -- "$@"
