#!/usr/bin/env bash
# Fuzzes ganfit's parsers with cargo-fuzz (libFuzzer, nightly Rust): `make fuzz`, or
# `scripts/fuzz.sh [TARGET ...]`. Each target runs FUZZ_RUNS executions (default 1,000,000)
# from the committed seeds in fuzz/corpus/TARGET; the growing corpus lives outside the clone
# (FUZZ_WORK, default ~/.cache/ganfit/fuzz) so runs resume where the last one stopped, and
# only inputs that add coverage are merged back into fuzz/corpus. A crash is left in
# FUZZ_WORK/artifacts/TARGET and stops the script: copy it into fuzz/regressions/TARGET (which
# `make test` replays through tests/fuzz_corpus.rs), fix it, rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${FUZZ_RUNS:-1000000}
WORK=${FUZZ_WORK:-$HOME/.cache/ganfit/fuzz}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(photo face_model texture_model options obj)

if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

# Not clippy (the Makefile's compiler wrapper) and not the stable target dir: the fuzz build is
# nightly with coverage instrumentation, cached in a target dir of its own.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$HOME/.cache/ganfit/target-fuzz}
# No sanitizer: the crate forbids unsafe code, and libFuzzer still catches panics, aborts
# (failed allocations), timeouts and memory over the RSS limit; throughput is what matters here.
FLAGS=(--release --sanitizer none --fuzz-dir fuzz)

cargo +nightly fuzz build "${FLAGS[@]}"
for target in "${TARGETS[@]}"; do
  corpus="$WORK/corpus/$target"
  artifacts="$WORK/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  cp -n fuzz/corpus/"$target"/* "$corpus"/
  start=$(date +%s)
  echo "== $target: $RUNS executions"
  cargo +nightly fuzz run "${FLAGS[@]}" "$target" "$corpus" -- \
    -runs="$RUNS" -max_len=65536 -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=20 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" 2>&1 | grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|==|INFO: (Running with|Seed))|panicked|ERROR|SUMMARY' || true
  if compgen -G "$artifacts/*" >/dev/null; then
    echo "$target: crash inputs in $artifacts" >&2
    exit 1
  fi
  echo "$target: $(( $(date +%s) - start )) s"
  # Merge back only what adds coverage, so the committed corpus stays small.
  cargo +nightly fuzz run "${FLAGS[@]}" "$target" fuzz/corpus/"$target" "$corpus" -- -merge=1 2>&1 | grep -E 'MERGE-OUTER: [0-9]+ new files' || true
done
