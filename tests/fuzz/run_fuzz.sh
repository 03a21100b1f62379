#!/bin/sh
# Run libFuzzer harnesses for a fixed time each (`make fuzz`; docs/fuzzing.md):
#   sh tests/fuzz/run_fuzz.sh SECONDS NAME...
# Each build-fuzz/fuzz_NAME runs under nice -n 19 on build-fuzz/corpus/NAME (grown run after run),
# its seeds tests/fuzz/corpus/NAME and its regression inputs tests/corpus/NAME. A crash, leak,
# timeout (20 s an input) or out-of-memory (2 GiB) stops it: the input is saved as
# build-fuzz/artifacts/NAME-crash-* and the run fails. One summary line a harness (executions,
# coverage, corpus); full logs in build-fuzz/logs/NAME.log. Exits non-zero if any harness failed.
secs=${1:?usage: run_fuzz.sh SECONDS NAME...}
shift
cd "${FEDHPC_ROOT:-$(dirname "$0")/../..}" || exit 1
B=build-fuzz
mkdir -p "$B/logs" "$B/artifacts"
fail=0
for h in "$@"; do
    mkdir -p "$B/corpus/$h"
    dirs="$B/corpus/$h tests/fuzz/corpus/$h"
    [ -d "tests/corpus/$h" ] && dirs="$dirs tests/corpus/$h"
    dict=""
    [ -f "tests/fuzz/$h.dict" ] && dict="-dict=tests/fuzz/$h.dict"
    log="$B/logs/$h.log"
    # shellcheck disable=SC2086
    nice -n 19 "$B/fuzz_$h" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -max_len=16384 \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$h-" $dict $dirs >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/cov \1, features \2, corpus \3/p')
    if [ "$rc" = 0 ]; then
        echo "fuzz $h: ok, ${secs}s, ${execs:-?} executions, ${cov:-?}"
    else
        fail=1
        echo "fuzz $h: FAILED (exit $rc) after ${execs:-?} executions; see $log"
        grep -E "ERROR:|SUMMARY:|Test unit written|fuzz: " "$log" | head -8 | sed 's/^/    /'
    fi
done
exit $fail
