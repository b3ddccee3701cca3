#!/usr/bin/env bash
# Runs each libFuzzer binary given for RR_FUZZ_SECONDS (default 60) seconds,
# starting from its seed corpus tests/fuzz/corpus/<name>/. New inputs go to
# build/fuzz/corpus/<name>/ (the seeds in git stay as they are), crashing
# inputs to build/fuzz/crashes/, the full log to build/fuzz/<name>.log.
# Exits 1 at the first crash, after printing the end of its log.
set -u
cd "$(dirname "$0")/../.."

secs=${RR_FUZZ_SECONDS:-60}
for bin in "$@"; do
    name=$(basename "$bin")
    work=build/fuzz/corpus/$name
    log=build/fuzz/$name.log
    mkdir -p "$work" build/fuzz/crashes
    echo "== $name: ${secs}s"
    if ! "$bin" -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="build/fuzz/crashes/$name-" "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "$name: FAILED; the input is in build/fuzz/crashes/ (reproduce: $bin <file>)"
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|cov: .*ft:' "$log" | tail -n 4
done
