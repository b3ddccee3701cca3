#!/usr/bin/env bash
# Runs the test suites and ends with one line "N passed, N failed".
# Every suite speaks TAP ("ok N - name" / "not ok N - name"): cmocka programs
# through CMOCKA_MESSAGE_OUTPUT=TAP, integration tests through tests/integration/tap.py.
# A suite that exits non-zero without reporting a failure counts as one failure.
# Usage: tests/run.sh [unit|integration|conformance]...
set -u
cd "$(dirname "$0")/.."

what=("$@")
[ ${#what[@]} -eq 0 ] && what=(unit integration conformance)

PY=/usr/bin/python3
pass=0
fail=0
failed_names=()

run_suite() {
    local name=$1; shift
    local out rc p f
    out=$(mktemp)
    echo "== $name"
    "$@" >"$out" 2>&1
    rc=$?
    p=$(grep -cE '^ok ' "$out")
    f=$(grep -cE '^not ok ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "not ok - $name exited with status $rc" >>"$out"
    fi
    if [ "$f" -gt 0 ] || [ "${RR_TEST_VERBOSE:-0}" = 1 ]; then
        cat "$out"
    else
        grep -E '^(ok|not ok) ' "$out"
    fi
    [ "$f" -gt 0 ] && failed_names+=("$name")
    pass=$((pass + p))
    fail=$((fail + f))
    rm -f "$out"
}

for w in "${what[@]}"; do
    case "$w" in
    unit)
        for t in build/asan/tests/test_*; do
            [ -x "$t" ] || continue
            CMOCKA_MESSAGE_OUTPUT=TAP ASAN_OPTIONS=detect_leaks=1 run_suite "unit/$(basename "$t")" "$t"
        done
        ;;
    integration | conformance)
        for t in tests/"$w"/test_*.py; do
            [ -f "$t" ] || continue
            run_suite "$w/$(basename "$t" .py)" "$PY" "$t"
        done
        ;;
    *)
        echo "unknown suite kind: $w" >&2
        exit 2
        ;;
    esac
done

[ ${#failed_names[@]} -gt 0 ] && echo "failed suites: ${failed_names[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
