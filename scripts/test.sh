#!/usr/bin/env bash
# make test, after `make deps all`:
#
#   1. the C unit tests (cmocka), normal build
#   2. the same under AddressSanitizer and UndefinedBehaviorSanitizer
#   3. every fuzz target for about 30 s
#   4. the integration tests: prove -r t/ (each .t starts its own servers)
#
# The last lines are the counts of each stage.  Exit status is non-zero when
# anything failed.  TEST_STAGES picks stages ("units san fuzz t"), TEST_FILES
# picks .t files, TEST_JOBS sets prove's parallelism (default 2).

set -u
cd "$(dirname "$0")/.."

stages=${TEST_STAGES:-units san fuzz t}
build=${MATRIX_BUILD:-$(pwd)/build}
export MATRIX_BUILD=$build
summary=()
failed=0

# run every unit test binary in $1; a line of counts into summary
run_units() {
    local dir=$1 label=$2 passed=0 bad=0 tests=0 t n log
    for t in "$dir"/t/test_*; do
        [ -x "$t" ] || continue
        case $t in *.o) continue ;; esac
        log=$(mktemp)
        if "$t" > "$log" 2>&1; then
            n=$(grep -ho 'PASSED  \] [0-9]*' "$log" | grep -o '[0-9]*$' | awk '{s+=$1} END {print s+0}')
            tests=$((tests + ${n:-0}))
            passed=$((passed + 1))
            grep -h 'SKIPPED\|skipped:' "$log" | head -5
        else
            bad=$((bad + 1))
            echo "--- $t FAILED:"
            tail -40 "$log"
        fi
        rm -f "$log"
    done
    summary+=("$label: $passed programs passed ($tests tests), $bad failed")
    [ $bad -eq 0 ] || failed=1
}

for stage in $stages; do
    case $stage in

    units)
        echo "=== unit tests"
        run_units "$build" "unit tests"
        ;;

    san)
        echo "=== unit tests and daemons under ASan + UBSan"
        if make -s BUILD="$build" SAN=1 units workers > "$build/san.log" 2>&1; then
            export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
            export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
            run_units "$build/san" "unit tests (ASan+UBSan)"
            log=$(mktemp)
            TEST_DAEMON_BUILD="$build/san" prove -I t/lib t/006-worker.t > "$log" 2>&1
            rc=$?
            if [ $rc -eq 0 ]; then
                summary+=("daemons (ASan+UBSan): $(grep -E '^Files=' "$log")")
            else
                cat "$log"
                summary+=("daemons (ASan+UBSan): FAILED")
                failed=1
            fi
            rm -f "$log"
            unset ASAN_OPTIONS UBSAN_OPTIONS
        else
            tail -30 "$build/san.log"
            summary+=("unit tests (ASan+UBSan): build FAILED")
            failed=1
        fi
        ;;

    fuzz)
        echo "=== fuzzing, briefly"
        if ls t/fuzz/fuzz_*.c >/dev/null 2>&1; then
            if make -s BUILD="$build" fuzz-smoke; then
                summary+=("fuzz: $(ls t/fuzz/fuzz_*.c | wc -l) targets, no crash")
            else
                summary+=("fuzz: FAILED")
                failed=1
            fi
        else
            summary+=("fuzz: no targets")
        fi
        ;;

    t)
        echo "=== integration tests"
        # the real clients the tests drive (package.json pins them)
        if [ ! -d node_modules/matrix-js-sdk ] && command -v npm > /dev/null; then
            npm ci --no-audit --no-fund > /dev/null 2>&1 \
                || echo "test: npm ci failed: the js-sdk test will say it skipped"
        fi
        log=$(mktemp)
        prove -j"${TEST_JOBS:-2}" -I t/lib ${TEST_FILES:-t/} 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        summary+=("integration: $(grep -E '^(Files=|Result:)' "$log" | paste -sd' ')")
        [ "$rc" -eq 0 ] || failed=1
        rm -f "$log"
        ;;
    esac
done

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
[ $failed -eq 0 ] && echo "ALL PASSED" || echo "SOME FAILED"
exit $failed
