#!/usr/bin/env bash
# Installs what the local stack and the tests need, idempotently:
#   - .venv/ (repo root): a Python venv with infra/requirements.txt
#   - infra/node/node_modules: npm ci from infra/node/package-lock.json
# Each is redone only when its requirement file (or the interpreter) changed:
# a stamp file holds a hash of them. Adding a line to infra/requirements.txt or
# a package to infra/node/package.json (then `npm install` there to update the
# lock) is all it takes to get a new tool installed everywhere.
#
# Usage: infra/scripts/setup.sh [--chromium] [--force]
#   --chromium  also install Debian's chromium (browser tests); same as calling
#               ensure_chromium after sourcing this file
#   --force     ignore the stamps and reinstall
# Env: PYTHON (default python3) picks the interpreter for the venv.
#
# Sourcing this file defines the ensure_* functions without running anything.
set -euo pipefail

# shellcheck source=infra/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SETUP_FORCE="${SETUP_FORCE:-0}"
STAMP_NAME=".rsvp-setup-stamp"

# hash_of FILE... STRING: sha256 over the files' contents and a trailing string
# (interpreter version), so a change in either triggers a reinstall.
hash_of() {
  local extra="${!#}"
  local files=("${@:1:$#-1}")
  { cat "${files[@]}"; printf '\n%s\n' "$extra"; } | sha256sum | cut -d' ' -f1
}

stamp_matches() { # STAMP_FILE HASH
  [[ "$SETUP_FORCE" != 1 && -f "$1" && "$(cat "$1")" == "$2" ]]
}

# apt_install PKG...: Debian packages, non-interactive; apt-get update first
# when the package lists are empty or the install fails once.
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install $*"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  local -a get=("${sudo[@]}" apt-get -y -q -o Dpkg::Use-Pty=0)
  local out
  out="$(mktemp)"
  log "apt-get install $*"
  if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    "${get[@]}" update >"$out" 2>&1 || { cat "$out" >&2; rm -f "$out"; die "apt-get update failed"; }
  fi
  if ! "${get[@]}" install --no-install-recommends "$@" >"$out" 2>&1; then
    # Stale package lists: refresh once and retry.
    if ! { "${get[@]}" update && "${get[@]}" install --no-install-recommends "$@"; } >"$out" 2>&1; then
      cat "$out" >&2
      rm -f "$out"
      die "apt-get install $* failed"
    fi
  fi
  rm -f "$out"
}

# PATH without .venv/bin (lib.sh puts it first), to find the base interpreter.
path_without_venv() {
  local IFS=: dir out=()
  for dir in $PATH; do
    [[ "$dir" == "$RSVP_VENV/bin" ]] || out+=("$dir")
  done
  printf '%s' "${out[*]}"
}

ensure_python_venv() {
  local py req="$RSVP_REPO_ROOT/infra/requirements.txt"
  py="$(PATH="$(path_without_venv)" command -v "${PYTHON:-python3}")" ||
    die "${PYTHON:-python3} not found (need Python >= 3.9)"
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
    die "$py is $("$py" -V 2>&1); need Python >= 3.9"
  local pyver
  pyver="$("$py" -c 'import sys; print(sys.version.split()[0])')"

  # A venv from another interpreter version (or a broken one) is rebuilt.
  if [[ -d "$RSVP_VENV" ]] &&
    [[ "$("$RSVP_VENV/bin/python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)" != "$pyver" ]]; then
    log "python venv: interpreter changed or venv broken; recreating .venv"
    rm -rf "$RSVP_VENV"
  fi

  local hash stamp="$RSVP_VENV/$STAMP_NAME"
  hash="$(hash_of "$req" "python $pyver")"
  if stamp_matches "$stamp" "$hash"; then
    log "python venv: up to date (infra/requirements.txt unchanged), skipped"
    return
  fi

  local start
  start=$(date +%s)
  if [[ ! -x "$RSVP_VENV/bin/python" ]]; then
    # Debian's python3 ships venv/ensurepip separately.
    "$py" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
    "$py" -m venv "$RSVP_VENV"
  fi
  log "python venv: pip install -r infra/requirements.txt (python $pyver)"
  rm -f "$stamp"
  "$RSVP_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-input -r "$req"
  printf '%s\n' "$hash" >"$stamp"
  log "python venv: installed in $(($(date +%s) - start))s"
}

ensure_node_modules() {
  command -v node >/dev/null || die "node not found (need Node.js >= 20 with npm)"
  command -v npm >/dev/null || die "npm not found (need Node.js >= 20 with npm)"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [[ "$major" -ge 20 ]] || die "node is $(node --version); need Node.js >= 20"

  local lock="$RSVP_NODE_DIR/package-lock.json" hash stamp="$RSVP_NODE_DIR/node_modules/$STAMP_NAME"
  [[ -f "$lock" ]] || die "missing $lock (run npm install in infra/node and commit the lock)"
  hash="$(hash_of "$RSVP_NODE_DIR/package.json" "$lock" "node $major")"
  if stamp_matches "$stamp" "$hash"; then
    log "node modules: up to date (infra/node/package-lock.json unchanged), skipped"
    return
  fi

  local start
  start=$(date +%s)
  log "node modules: npm ci in infra/node"
  # npm ci wipes node_modules (and so the stamp) first.
  (cd "$RSVP_NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  printf '%s\n' "$hash" >"$stamp"
  log "node modules: installed in $(($(date +%s) - start))s"
}

# Debian's Chromium for browser tests (playwright-core drives it with
# executablePath /usr/bin/chromium; no browser download).
ensure_chromium() {
  if [[ -x /usr/bin/chromium ]]; then
    log "chromium: /usr/bin/chromium present, skipped"
    return
  fi
  apt_install chromium
  [[ -x /usr/bin/chromium ]] || die "chromium installed but /usr/bin/chromium missing"
}

setup_main() {
  local with_chromium=0
  for arg in "$@"; do
    case "$arg" in
      --chromium) with_chromium=1 ;;
      --force) SETUP_FORCE=1 ;;
      -h | --help)
        sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        return 0
        ;;
      *) die "unknown argument: $arg (see --help)" ;;
    esac
  done

  # One setup at a time (make dev and make test started together).
  mkdir -p "$RSVP_REPO_ROOT/target"
  exec 9>"$RSVP_REPO_ROOT/target/.setup.lock"
  flock 9

  ensure_python_venv
  ensure_node_modules
  if [[ $with_chromium -eq 1 ]]; then
    ensure_chromium
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  setup_main "$@"
fi
