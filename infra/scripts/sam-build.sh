#!/usr/bin/env bash
# Builds every function the way a deploy does: `sam build` with BuildMethod
# rust-cargolambda (cargo-lambda + zig from the project's venv), offline,
# into .aws-sam/build/<Function>/bootstrap, then prints each binary's size.
# Deploy afterwards with `sam deploy --guided` (or --config-env dev|prod).
# Not part of `make test`: it is a release build of ten binaries (about
# 15 minutes on 2 cores from cold, seconds when cached).
#
# Usage: infra/scripts/sam-build.sh [--arch auto|arm64|x86_64] [SAM BUILD ARGS...]
#   --arch auto    (default) arm64 as template.yaml says, when the Rust target
#                  aarch64-unknown-linux-gnu is installed or `rustup target add`
#                  can install it; otherwise x86_64, with a warning
#   --arch x86_64  builds from a copy of template.yaml saying x86_64 (written
#                  to .aws-sam/template.x86_64.yaml; template.yaml stays arm64).
#                  Such a build measures sizes and proves the build; deploy
#                  only an arm64 build, or deploy that copy on purpose
# Env: SAM_CARGO_TARGET_DIR (default target/sam) keeps release artifacts
#      apart from the debug builds of `make test`, so both can run at once.
set -euo pipefail
# shellcheck source=infra/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RSVP_REPO_ROOT"

arch=auto
if [[ "${1:-}" == "--arch" ]]; then
  arch="${2:?--arch needs auto, arm64 or x86_64}"
  shift 2
fi
case "$arch" in auto | arm64 | x86_64) ;; *) die "unknown --arch $arch (auto, arm64, x86_64)" ;; esac

bash infra/scripts/setup.sh
export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export CARGO_TARGET_DIR="${SAM_CARGO_TARGET_DIR:-$RSVP_REPO_ROOT/target/sam}"

command -v sam >/dev/null || die "sam not found in .venv/bin (infra/requirements.txt)"
command -v cargo-lambda >/dev/null || die "cargo-lambda not found in .venv/bin (infra/requirements.txt)"
# cargo-lambda runs zig as `python3 -m ziglang` when no `zig` is on PATH.
python3 -m ziglang version >/dev/null 2>&1 || die "ziglang missing from the venv (infra/requirements.txt)"

have_arm64_target() {
  rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu
}

if [[ "$arch" != x86_64 ]] && ! have_arm64_target; then
  if command -v rustup >/dev/null; then
    log "installing the Rust target aarch64-unknown-linux-gnu"
    timeout 300 rustup target add aarch64-unknown-linux-gnu >&2 || true
  fi
  if ! have_arm64_target; then
    [[ "$arch" == arm64 ]] && die "the Rust target aarch64-unknown-linux-gnu cannot be installed here"
    log "warning: no aarch64-unknown-linux-gnu target; building for x86_64 instead (template.yaml stays arm64)"
    arch=x86_64
  fi
fi
[[ "$arch" == auto ]] && arch=arm64

template=template.yaml
# arm64 goes where `sam deploy` looks; an x86_64 build elsewhere, so that
# it is never deployed by accident.
build_dir=.aws-sam/build
mkdir -p .aws-sam
if [[ "$arch" == x86_64 ]]; then
  template=.aws-sam/template.x86_64.yaml
  build_dir=.aws-sam/build-x86_64
  # CodeUri made absolute: SAM resolves it against the template's folder.
  sed -e 's/^\( *Architectures: \)\[arm64\]/\1[x86_64]/' \
    -e "s|^\( *CodeUri: \)\./\$|\1$RSVP_REPO_ROOT/|" template.yaml >"$template"
  grep -q 'Architectures: \[x86_64\]' "$template" || die "could not rewrite Architectures in $template"
fi

log "sam build ($arch) with $(cargo lambda --version | cut -d' ' -f1-2), zig $(python3 -m ziglang version); CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
started=$(date +%s)
# --no-cached: SAM's cache hashes every file under CodeUri (the repository
# root, target/ included), which is slow and fails while cargo writes there.
sam build --beta-features --no-cached --template-file "$template" --build-dir "$build_dir" "$@"
log "sam build took $(($(date +%s) - started))s"

# One line per function: logical id, size, zipped size (what Lambda
# stores), and what the binary is.
printf '\n%-24s %10s %8s %12s  %s\n' function bytes MiB "zipped MiB" file >&2
for bootstrap in "$build_dir"/*/bootstrap; do
  fn="$(basename "$(dirname "$bootstrap")")"
  bytes="$(stat -c %s "$bootstrap")"
  kind="$(file -b "$bootstrap" 2>/dev/null | cut -d, -f1-2 || true)"
  zipped="$(gzip -9 -c "$bootstrap" | wc -c)"
  printf '%-24s %10s %8.1f %12.1f  %s\n' "$fn" "$bytes" "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" \
    "$(awk -v b="$zipped" 'BEGIN { print b / 1048576 }')" "$kind" >&2
done
