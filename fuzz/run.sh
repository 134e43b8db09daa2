#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20) from the committed
# seeds, into a temporary corpus (the seeds are not changed). Needs a nightly
# toolchain (rustup) and cargo-fuzz; installs cargo-fuzz if it is missing.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
toolchain=+nightly
rustup run nightly rustc --version >/dev/null 2>&1 || {
  # No nightly: the stable compiler accepts the nightly flags with RUSTC_BOOTSTRAP.
  toolchain=; export RUSTC_BOOTSTRAP=1; }
corpus=$(mktemp -d /var/tmp/ncp-fuzz.XXXXXX)
trap 'rm -rf "$corpus"' EXIT
for t in $(cargo $toolchain fuzz list); do
  mkdir -p "$corpus/$t"
  echo "==> fuzz $t for ${secs}s" >&2
  log=$corpus/$t.log
  if ! cargo $toolchain fuzz run "$t" "$corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -max_len=65536 -print_final_stats=1 > "$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz target $t failed" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|DONE' "$log" >&2 || true
done
