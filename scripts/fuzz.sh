#!/usr/bin/env bash
# Bounded fuzzing of decode, film and the whole read (cargo-fuzz / libFuzzer) from the committed seed corpus.
# Usage: scripts/fuzz.sh [seconds per target, default 60] [targets...]. Stable Rust: cargo-fuzz needs
# RUSTC_BOOTSTRAP=1 for its -Z flags and runs without a sanitizer (-s none); Rust's own checks still panic.
# Findings land in fuzz/artifacts/<target>/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(decode film read)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked || cargo install cargo-fuzz --version 0.13.2
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none -O
for t in "${TARGETS[@]}"; do
  work=$(mktemp -d)
  cp corpus/"$t"/seed-* "$work"/
  echo "fuzzing $t for ${SECONDS_PER_TARGET}s"
  cargo fuzz run -s none -O "$t" "$work" -- -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=3072 \
    -timeout=20 -print_final_stats=1 2>&1 | grep -E "^(Done|stat::number_of_executed_units|==|ERROR|SUMMARY)|panicked" || true
  rm -rf "$work"
  if compgen -G "artifacts/$t/*" >/dev/null; then
    echo "fuzz target $t found a failing input: fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
