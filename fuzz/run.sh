#!/usr/bin/env bash
# Runs cargo-fuzz targets for a given time each, one after the other.
#
#   fuzz/run.sh                      # every target, 600 s each
#   fuzz/run.sh apply_frame 60       # one target, 60 s
#   fuzz/run.sh all 1800             # every target, 1800 s each
#   JOBS=2 fuzz/run.sh all 600       # every target at once (one core each)
#   FUZZ_ARGS="-len_control=0" fuzz/run.sh apply_frame 600   # extra libFuzzer flags
#
# Installs cargo-fuzz if missing; needs the nightly toolchain. The checked-in
# seeds (fuzz/corpus/TARGET) are read only; what the run learns goes to
# fuzz/work/TARGET, crashes to fuzz/artifacts/TARGET, logs to fuzz/logs.
# Exits non-zero if a target found a crash.
set -euo pipefail
cd "$(dirname "$0")"

TARGETS=(decode_frame apply_frame)
target="${1:-all}"
seconds="${2:-600}"
jobs="${JOBS:-1}"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [[ "$target" == all ]]; then
    selected=("${TARGETS[@]}")
else
    selected=("$target")
fi

if [[ ! -d corpus/decode_frame ]]; then
    echo "== writing the seed corpus"
    cargo run --quiet --example make_corpus
fi

echo "== building ${selected[*]}"
for t in "${selected[@]}"; do
    cargo +nightly fuzz build -O "$t"
done

mkdir -p logs
run_one() {
    local t="$1"
    mkdir -p "work/$t" "artifacts/$t" "corpus/$t"
    echo "== $t for ${seconds}s (log: fuzz/logs/$t.log)"
    # First corpus dir is written to; the seeds stay as they are.
    cargo +nightly fuzz run -O "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 \
        ${FUZZ_ARGS:-} >"logs/$t.log" 2>&1
}

status=0
if [[ "$jobs" -gt 1 ]]; then
    pids=()
    for t in "${selected[@]}"; do
        run_one "$t" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || status=1; done
else
    for t in "${selected[@]}"; do run_one "$t" || status=1; done
fi

for t in "${selected[@]}"; do
    echo "== $t"
    grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|Done [0-9]+ runs|SUMMARY|panicked|deadly signal" \
        "logs/$t.log" || true
    crashes=$(find "artifacts/$t" -type f | wc -l)
    echo "crash artifacts: $crashes"
    [[ "$crashes" -eq 0 ]] || status=1
done
exit "$status"
