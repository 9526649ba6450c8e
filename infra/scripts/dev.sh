#!/usr/bin/env bash
# Starts the whole local stack on 127.0.0.1 (`make dev`): the AWS emulators,
# the Twilio simulator, and the API + webhook + dashboard on $PORT (default
# 3000). The local-stack binary documents the rest of its environment.
# Arguments are passed to the local-stack binary.
set -euo pipefail
# shellcheck source=infra/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RSVP_REPO_ROOT"

bash infra/scripts/setup.sh
log "cargo build -p local-stack -p twilio-sim"
cargo build -p local-stack -p twilio-sim --bins
exec cargo run -q -p local-stack --bin local-stack -- "$@"
