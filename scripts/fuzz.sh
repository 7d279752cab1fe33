#!/bin/sh
# fuzz.sh SECONDS FUZZER...
#
# Runs each libFuzzer target for SECONDS, starting from its seeds in
# t/fuzz/seeds/<name>/ and the corpus it grew before in build/fuzz/corpus/.
# Exits non-zero on the first crash, leak or sanitizer report; the input
# that caused it is left in build/fuzz/ as crash-* (or leak-*, timeout-*).

secs=$1
shift
out=${FUZZ_OUT:-build/fuzz}

status=0
for f in "$@"; do
    name=$(basename "$f")
    corpus=$out/corpus/$name
    seeds=t/fuzz/seeds/$name
    mkdir -p "$corpus"
    [ -d "$seeds" ] || seeds=
    printf 'fuzz: %s for %ss ... ' "$name" "$secs"
    if "$f" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=$out/ \
        -max_len=65536 -timeout=10 "$corpus" $seeds > "$out/$name.log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$name.log" | grep -o '[0-9]*$')
        echo "ok, ${runs:-?} runs"
    else
        echo "FAILED (see $out/$name.log)"
        tail -30 "$out/$name.log"
        status=1
    fi
done
exit $status
