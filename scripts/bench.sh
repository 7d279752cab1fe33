#!/usr/bin/env bash
# make bench: print the figures.  Each HTTP figure is measured with wrk
# against a server started here, beside a baseline measured in the same run
# (nginx answering a static `return 200`), and given as a ratio to it, so the
# numbers compare across machines.  Then every program in $MATRIX_BUILD/bench/ runs
# and prints its own figures.
#
# BENCH_SECS (default 10) is the length of each wrk run, BENCH_CONNS (64) the
# connections, BENCH_ONLY a list of sections ("http core").

set -u
cd "$(dirname "$0")/.."
repo=$(pwd)
build=${MATRIX_BUILD:-$repo/build}
export MATRIX_BUILD=$build

secs=${BENCH_SECS:-10}
conns=${BENCH_CONNS:-64}
only=${BENCH_ONLY:-http core}

command -v wrk >/dev/null || { echo "bench: wrk is missing (make deps)"; exit 1; }

port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'; }

# wrk URL [header]: prints "requests/s p50_ms p99_ms"
run_wrk() {
    local url=$1 header=${2:-} out
    if [ -n "$header" ]; then
        out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency -H "$header" "$url" 2>&1)
    else
        out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "$url" 2>&1)
    fi
    if echo "$out" | grep -q 'Non-2xx'; then
        echo "bench: $url answered errors:" >&2
        echo "$out" >&2
    fi
    local rps p50 p99
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    echo "$rps $(ms "$p50") $(ms "$p99")"
}

# wrk latency ("812.00us", "1.20ms", "2.00s") in milliseconds
ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000
        printf "%.2f", n }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

http_bench() {
    local data=$build/bench-data cport fport pid token hash
    rm -rf "$data"
    mkdir -p "$data/conf.d/client"
    echo 'location = /_bench/static { return 200 "{}"; }' > "$data/conf.d/client/bench.conf"

    cport=$(port)
    fport=$(port)
    MATRIX_DATA=$data MATRIX_CLIENT_PORT=$cport MATRIX_FED_PORT=$fport \
        MATRIX_LOG_LEVEL=error scripts/mx-run > "$data.log" 2>&1 &
    pid=$!

    # an access token in the server's format (core/mx_token.h)
    b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
    token="mxa_$(printf '@bench:localhost' | b64url)_$(head -c 32 /dev/urandom | b64url)"
    hash=$(printf '%s' "$token" | openssl dgst -sha256 -binary | base64 | tr -d '=')

    for _ in $(seq 1 100); do
        [ -S "$data/run/redis.sock" ] && \
            curl -sf -o /dev/null "http://127.0.0.1:$cport/_matrix/client/versions" && break
        sleep 0.1
    done
    redis-cli -s "$data/run/redis.sock" HSET "mx:{@bench:localhost}:token:$hash" user_id @bench:localhost \
        device_id BENCH guest 0 > /dev/null

    local base="http://127.0.0.1:$cport"
    echo "== HTTP: wrk, 1 thread, $conns connections, ${secs}s each; 2 nginx workers, $(nproc) cores"
    read -r s_rps s_p50 s_p99 < <(run_wrk "$base/_bench/static")
    read -r v_rps v_p50 v_p99 < <(run_wrk "$base/_matrix/client/versions")
    read -r w_rps w_p50 w_p99 < <(run_wrk "$base/_matrix/client/v3/account/whoami" \
                                          "Authorization: Bearer $token")

    printf '%-38s %12s %9s %9s %9s\n' "endpoint" "requests/s" "p50 ms" "p99 ms" "ratio"
    printf '%-38s %12s %9s %9s %9s\n' "static return 200 (baseline)" "$s_rps" "$s_p50" "$s_p99" "1.00"
    printf '%-38s %12s %9s %9s %9s\n' "GET /_matrix/client/versions" "$v_rps" "$v_p50" "$v_p99" "$(ratio "$v_rps" "$s_rps")"
    printf '%-38s %12s %9s %9s %9s\n' "GET /account/whoami (Redis lookup)" "$w_rps" "$w_p50" "$w_p99" "$(ratio "$w_rps" "$s_rps")"
    echo "target: whoami at least 0.40 of the static baseline"

    kill -TERM "$pid"
    wait "$pid"
}

core_bench() {
    local b
    for b in "$build"/bench/*; do
        [ -x "$b" ] || continue
        echo
        echo "== $(basename "$b")"
        "$b" || echo "bench: $b failed"
    done
}

for s in $only; do
    case $s in
        http) http_bench ;;
        core) core_bench ;;
    esac
done
