# shellcheck shell=bash
# Common helpers for infra/scripts/*.sh. Source it; don't run it.
#
# Sets and exports:
#   RSVP_REPO_ROOT  absolute path of the repository root (Rust tests use it to
#                   find .venv/bin/moto_server and infra/node/fauxqs-server.mjs)
#   PATH            with $RSVP_REPO_ROOT/.venv/bin first (moto_server, and later
#                   sam, cfn-lint, cargo-lambda, ziglang's zig wrapper)

RSVP_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export RSVP_REPO_ROOT
# shellcheck disable=SC2034 # used by the scripts that source this file
RSVP_VENV="$RSVP_REPO_ROOT/.venv"
# shellcheck disable=SC2034
RSVP_NODE_DIR="$RSVP_REPO_ROOT/infra/node"

case ":$PATH:" in
  *":$RSVP_VENV/bin:"*) ;;
  *) export PATH="$RSVP_VENV/bin:$PATH" ;;
esac

# log MSG...: one line on stderr, prefixed with the calling script's name.
log() {
  printf '[%s] %s\n' "$(basename "${0:-rsvp}" .sh)" "$*" >&2
}

die() {
  log "error: $*"
  exit 1
}

# run_step NAME CMD...: runs one named step with a header and its duration.
run_step() {
  local name="$1" start rc=0
  shift
  printf '\n==> %s\n' "$name" >&2
  start=$(date +%s)
  "$@" || rc=$?
  if [[ $rc -ne 0 ]]; then
    printf '==> %s FAILED (exit %d) after %ss\n' "$name" "$rc" "$(($(date +%s) - start))" >&2
    return "$rc"
  fi
  printf '==> %s ok (%ss)\n' "$name" "$(($(date +%s) - start))" >&2
}
