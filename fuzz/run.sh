#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded number of inputs and time, then prints a table of
# inputs run and corpus size per target. Called by `make fuzz`; cargo-fuzz must be on PATH.
#
#   FUZZ_RUNS     inputs per target (default 2000000; at least 1,000,000 must run in total)
#   FUZZ_SECONDS  time bound per target (default 120)
#
# The working corpus grows in fuzz/corpus/<target> (not committed); the committed seeds and
# regression cases in fuzz/seeds/<target> are read as a second corpus. A crash stops the run
# with libFuzzer's report; its input lands in fuzz/artifacts/<target>/ and belongs, once fixed,
# in fuzz/seeds/<target>/ as a regression case.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${FUZZ_RUNS:-2000000}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-120}
TARGETS=(native_event chatlayer_webhook provider_callback signatures bot_config)
LOGS=fuzz/corpus/logs
mkdir -p "$LOGS"

# libFuzzer on the stable toolchain: no sanitizer (address sanitizing needs nightly), debug
# assertions and overflow checks on, coverage instrumentation from cargo-fuzz.
cargo fuzz build --sanitizer none --debug-assertions --release

total=0
rows=()
started=$(date +%s)
for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t"
    echo "fuzzing $t: up to $RUNS inputs or ${SECONDS_PER_TARGET} s"
    if ! cargo fuzz run --sanitizer none --debug-assertions --release "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -runs="$RUNS" -max_total_time="$SECONDS_PER_TARGET" -max_len=16384 -timeout=10 \
        -print_final_stats=1 >"$LOGS/$t.log" 2>&1; then
        tail -n 40 "$LOGS/$t.log"
        echo "FAIL: $t crashed or hung; the input is in fuzz/artifacts/$t/ (log: $LOGS/$t.log)" >&2
        exit 1
    fi
    runs=$(grep -oE '^Done [0-9]+ runs' "$LOGS/$t.log" | awk '{print $2}' | tail -n1)
    secs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$LOGS/$t.log" | awk '{print $5}' | tail -n1)
    cov=$(grep -oE 'cov: [0-9]+' "$LOGS/$t.log" | tail -n1 | awk '{print $2}')
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    seeds=$(find "fuzz/seeds/$t" -type f | wc -l)
    total=$((total + ${runs:-0}))
    rows+=("$(printf '%-20s %12s %8s %10s %8s %8s' "$t" "${runs:-0}" "${secs:-?}" "${cov:-?}" "$corpus" "$seeds")")
done

echo
printf '%-20s %12s %8s %10s %8s %8s\n' target inputs seconds coverage corpus seeds
for r in "${rows[@]}"; do echo "$r"; done
printf '%-20s %12s %8s\n' total "$total" "$(( $(date +%s) - started ))"
if (( total < 1000000 )) && [[ -z "${FUZZ_RUNS:-}" ]]; then
    echo "FAIL: only $total inputs ran within the time bound (at least 1,000,000 expected)" >&2
    exit 1
fi
echo "no crash, no hang, no failed property"
