#!/usr/bin/env bash
# make bench: print the figures.  Each HTTP figure is measured with wrk
# against a server started here, beside a baseline measured in the same run
# (nginx answering a static `return 200`), and given as a ratio to it, so the
# numbers compare across machines.  Then every program in $MATRIX_BUILD/bench/ runs
# and prints its own figures.
#
# BENCH_SECS (default 10) is the length of each wrk run, BENCH_CONNS (64) the
# connections, BENCH_ONLY a list of sections ("http login rooms sync fed
# fedjoin core").

set -u
cd "$(dirname "$0")/.."
repo=$(pwd)
build=${MATRIX_BUILD:-$repo/build}
export MATRIX_BUILD=$build

secs=${BENCH_SECS:-10}
conns=${BENCH_CONNS:-64}
only=${BENCH_ONLY:-http login rooms sync fed fedjoin core}

command -v wrk >/dev/null || { echo "bench: wrk is missing (make deps)"; exit 1; }

port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'; }

# wrk URL [header]: prints "requests/s p50_ms p99_ms"
run_wrk() {
    local url=$1 header=${2:-} out conns=${BENCH_CONNS:-$conns}
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

server_start() {
    data=$build/bench-data
    rm -rf "$data"
    mkdir -p "$data/conf.d/client" "$data/ca"
    echo 'location = /_bench/static { return 200 "{}"; }' > "$data/conf.d/client/bench.conf"

    # a CA of the run, trusted for outbound federation: the remote server
    # the fedjoin section plays has a certificate of it, on loopback
    openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 2 \
        -subj "/CN=Bench CA $$" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign \
        -keyout "$data/ca/ca.key" -out "$data/ca/ca.crt" > /dev/null 2>&1

    cport=$(port)
    fport=$(port)
    MATRIX_DATA=$data MATRIX_CLIENT_PORT=$cport MATRIX_FED_PORT=$fport \
        MATRIX_FED_CA_FILE=$data/ca/ca.crt MATRIX_FED_ALLOW_PRIVATE=on \
        MATRIX_LOG_LEVEL=${BENCH_LOG_LEVEL:-error} MATRIX_RATE_LIMIT=off scripts/mx-run > "$data.log" 2>&1 &
    server_pid=$!
    base="http://127.0.0.1:$cport"

    for _ in $(seq 1 100); do
        [ -S "$data/run/redis.sock" ] && \
            curl -sf -o /dev/null "$base/_matrix/client/versions" && break
        sleep 0.1
    done
}

server_stop() {
    kill -TERM "$server_pid"
    wait "$server_pid"
}

http_bench() {
    local token hash

    # an access token in the server's format (core/mx_token.h)
    b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
    token="mxa_$(printf '@bench:localhost' | b64url)_$(head -c 32 /dev/urandom | b64url)"
    hash=$(printf '%s' "$token" | openssl dgst -sha256 -binary | base64 | tr -d '=')
    redis-cli -s "$data/run/redis.sock" HSET "mx:{@bench:localhost}:token:$hash" user_id @bench:localhost \
        device_id BENCH guest 0 > /dev/null

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
}

# logins per second (argon2id in the thread pool) and, at the same time,
# the latency of /versions: the event loop keeps answering
login_bench() {
    local script=$build/bench-login.lua session out_login out_versions
    local body='{"type":"m.login.password","identifier":{"type":"m.id.user","user":"bench"},"password":"bench-password"}'

    session=$(curl -s -XPOST "$base/_matrix/client/v3/register" \
        -d '{"username":"bench","password":"bench-password"}' | sed 's/.*"session":"\([^"]*\)".*/\1/')
    curl -s -o /dev/null -XPOST "$base/_matrix/client/v3/register" \
        -d '{"username":"bench","password":"bench-password","auth":{"type":"m.login.dummy","session":"'"$session"'"}}'

    cat > "$script" <<EOS
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
EOS

    read -r v0_rps v0_p50 v0_p99 < <(BENCH_CONNS=4 run_wrk "$base/_matrix/client/versions")

    out_login=$(mktemp)
    wrk -t1 -c16 -d"${secs}s" -s "$script" "$base/_matrix/client/v3/login" > "$out_login" 2>&1 &
    local wrk_pid=$!
    read -r v_rps v_p50 v_p99 < <(BENCH_CONNS=4 run_wrk "$base/_matrix/client/versions")
    wait $wrk_pid

    local l_rps
    l_rps=$(awk '/Requests\/sec/ {print $2}' "$out_login")
    if grep -q 'Non-2xx' "$out_login"; then
        echo "bench: logins answered errors:"; cat "$out_login"
    fi
    rm -f "$out_login" "$script"

    echo
    echo "== logins: argon2id t=2 m=19MiB p=1, 4 hashing threads, 16 clients, ${secs}s"
    printf '%-44s %12s\n' "POST /login (password checked)" "$l_rps/s"
    printf '%-44s %9s ms p50 %9s ms p99\n' "GET /versions alone (4 connections)" "$v0_p50" "$v0_p99"
    printf '%-44s %9s ms p50 %9s ms p99\n' "GET /versions during the login load" "$v_p50" "$v_p99"
    echo "target: versions p99 under 10 ms during the login load"
}

# sends, end to end (a 200 means the roomserver accepted the event and the
# syncer placed it): one busy room, then 100 rooms; 50 connections; the
# latency at a light load (4 connections); Redis memory per stored event
rooms_bench() {
    local script=$build/bench-send.lua token hash rooms room i n out
    local body='{"msgtype":"m.text","body":"A message of about the size people send, with a few words in it."}'

    b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
    token="mxa_$(printf '@sender:localhost' | b64url)_$(head -c 32 /dev/urandom | b64url)"
    hash=$(printf '%s' "$token" | openssl dgst -sha256 -binary | base64 | tr -d '=')
    redis-cli -s "$data/run/redis.sock" HSET "mx:{@sender:localhost}:token:$hash" user_id @sender:localhost \
        device_id BENCH guest 0 > /dev/null

    rooms=()
    for i in $(seq 1 100); do
        room=$(curl -s -XPOST -H "Authorization: Bearer $token" "$base/_matrix/client/v3/createRoom" -d '{}' \
               | sed 's/.*"room_id":"\([^"]*\)".*/\1/')
        rooms+=("$room")
    done

    # rooms_lua N [PAUSE_MS]: a wrk script sending to the first N rooms in
    # turn, each connection pausing PAUSE_MS before each request (a paced
    # load: about connections / (pause + latency) requests a second)
    rooms_lua() {
        local list
        list=$(printf '"%s",' "${rooms[@]:0:$1}" | sed 's/!/%21/g')
        cat > "$script" <<EOS
local rooms = { ${list%,} }
local run = "$(date +%s%N)-$1"
local n = 0
local pause = ${2:-0}
if pause > 0 then
    delay = function() return pause end
end
request = function()
    n = n + 1
    local room = rooms[(n % #rooms) + 1]
    return wrk.format("PUT", "/_matrix/client/v3/rooms/" .. room ..
        "/send/m.room.message/" .. run .. "-" .. n,
        { ["Authorization"] = "Bearer $token",
          ["Content-Type"] = "application/json" }, '$body')
end
local shown = 0
response = function(status, headers, body)
    if status ~= 200 and shown < 3 then
        shown = shown + 1
        io.stderr:write("send: " .. status .. " " .. body .. "\n")
    end
end
EOS
    }

    local mem0 mem1 events0 events1
    mem0=$(redis-cli -s "$data/run/redis.sock" INFO memory | awk -F: '/^used_memory:/ {print $2+0}')
    events0=$(redis-cli -s "$data/run/redis.sock" GET mx:stream)

    read -r w_rps w_p50 w_p99 < <(run_wrk "$base/_matrix/client/v3/account/whoami" "Authorization: Bearer $token")

    rooms_lua 1
    read -r one_rps one_p50 one_p99 < <(run_wrk_script "$base" "$script")
    read -r onel_rps onel_p50 onel_p99 < <(BENCH_CONNS=4 run_wrk_script "$base" "$script")

    # half the one-room rate, paced: 32 connections, each pausing so that
    # together they ask for half of what the room took
    local pause
    pause=$(awk -v r="$one_rps" 'BEGIN { printf "%d", (r > 0 ? 32000 / (r / 2) : 100) }')
    rooms_lua 1 "$pause"
    read -r half_rps half_p50 half_p99 < <(BENCH_CONNS=32 run_wrk_script "$base" "$script")
    rooms_lua 100
    read -r many_rps many_p50 many_p99 < <(run_wrk_script "$base" "$script")

    mem1=$(redis-cli -s "$data/run/redis.sock" INFO memory | awk -F: '/^used_memory:/ {print $2+0}')
    events1=$(redis-cli -s "$data/run/redis.sock" GET mx:stream)
    n=$((events1 - events0))
    local size
    size=$(redis-cli -s "$data/run/redis.sock" HRANDFIELD "mx:{${rooms[0]}}:pdu" 20 WITHVALUES \
           | awk 'NR % 2 == 0 && /m.room.message/ {s += length($0); c++} END {printf "%d", (c ? s / c : 0)}')

    echo
    echo "== sends, end to end: wrk, 1 thread, $conns connections, ${secs}s each"
    printf '%-44s %12s %9s %9s %9s\n' "" "events/s" "p50 ms" "p99 ms" "÷ whoami"
    printf '%-44s %12s %9s %9s %9s\n' "GET /account/whoami (baseline)" "$w_rps" "$w_p50" "$w_p99" "1.00"
    printf '%-44s %12s %9s %9s %9s\n' "PUT send, one room" "$one_rps" "$one_p50" "$one_p99" "$(ratio "$one_rps" "$w_rps")"
    printf '%-44s %12s %9s %9s %9s\n' "PUT send, one room, 4 connections" "$onel_rps" "$onel_p50" "$onel_p99" "$(ratio "$onel_rps" "$w_rps")"
    printf '%-44s %12s %9s %9s %9s\n' "PUT send, one room, paced at half its rate" "$half_rps" "$half_p50" "$half_p99" "$(ratio "$half_rps" "$w_rps")"
    printf '%-44s %12s %9s %9s %9s\n' "PUT send, 100 rooms" "$many_rps" "$many_p50" "$many_p99" "$(ratio "$many_rps" "$w_rps")"
    echo "Redis: $(( (mem1 - mem0) / (n > 0 ? n : 1) )) bytes per stored event ($n events), the event's JSON ${size} bytes:" \
         "$(ratio $(( (mem1 - mem0) / (n > 0 ? n : 1) )) "$size")x"
    echo "targets: 3,000 events/s in one room; p99 under 50 ms at half that rate; at most 3x the JSON size"
    rm -f "$script"

    # BENCH_DEBUG=1: where Redis spent its time
    [ -n "${BENCH_DEBUG:-}" ] && redis-cli -s "$data/run/redis.sock" INFO commandstats \
        | sort -t= -k3 -n -r | awk -F'[:,=]' '/usec=/ {print $1, "calls", $3, "usec", $5, "per call", $7}' | sort -k5 -n -r | head -12
}

# wrk with a script: "requests/s p50_ms p99_ms"
run_wrk_script() {
    local out c=${BENCH_CONNS:-$conns}
    out=$(wrk -t1 -c"$c" -d"${secs}s" --latency -s "$2" "$1" 2>&1)
    if echo "$out" | grep -q 'Non-2xx'; then
        echo "bench: sends answered errors:" >&2
        echo "$out" >&2
    fi
    echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
         "$(ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")" \
         "$(ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")"
}

sync_bench() {
    echo
    ( ulimit -n 16384 2>/dev/null || ulimit -n 8192 2>/dev/null
      BENCH_DATA=$data perl scripts/bench-sync.pl "$base" "$data/run/redis.sock" ) \
        || echo "bench: sync failed"
}

# inbound federation: PDUs a second through /send from a simulated remote
# server, beside local sends in one room measured in the same run
fed_bench() {
    local token hash room script=$build/bench-fedlocal.lua local_rps p50 p99 out inbound

    b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
    token="mxa_$(printf '@fedlocal:localhost' | b64url)_$(head -c 32 /dev/urandom | b64url)"
    hash=$(printf '%s' "$token" | openssl dgst -sha256 -binary | base64 | tr -d '=')
    redis-cli -s "$data/run/redis.sock" HSET "mx:{@fedlocal:localhost}:token:$hash" user_id @fedlocal:localhost \
        device_id BENCH guest 0 > /dev/null
    room=$(curl -s -XPOST -H "Authorization: Bearer $token" "$base/_matrix/client/v3/createRoom" -d '{}' \
           | sed 's/.*"room_id":"\([^"]*\)".*/\1/; s/!/%21/')
    cat > "$script" <<EOS
local n = 0
local run = "$(date +%s%N)"
request = function()
    n = n + 1
    return wrk.format("PUT", "/_matrix/client/v3/rooms/$room/send/m.room.message/" .. run .. "-" .. n,
        { ["Authorization"] = "Bearer $token", ["Content-Type"] = "application/json" },
        '{"msgtype":"m.text","body":"A message of about the size people send, with a few words in it."}')
end
EOS
    read -r local_rps p50 p99 < <(run_wrk_script "$base" "$script")
    rm -f "$script"

    echo
    out=$(BENCH_CLIENT_URL=$base perl scripts/bench-fed.pl "https://127.0.0.1:$fport" \
              "$data/run/redis.sock" localhost 2>&1) || { echo "bench: fed failed: $out"; return; }
    echo "$out"
    inbound=$(echo "$out" | awk '/PDUs\/s accepted/ {print $1}')
    echo "  local sends in one room, $conns connections, same run: $local_rps events/s;" \
         "inbound ÷ local: $(ratio "${inbound:-0}" "$local_rps") (target at least 0.5)"
}

# joining a remote room of 1,000 members: a simulated resident server
# (scripts/bench-fedjoin.pl; BENCH_JOIN_MEMBERS, BENCH_JOIN_RUNS)
fedjoin_bench() {
    echo
    perl scripts/bench-fedjoin.pl "$base" "$data/run/redis.sock" "$data/ca" 2>&1 \
        || echo "bench: fedjoin failed"
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

case " $only " in
    *" http "*|*" login "*|*" rooms "*|*" sync "*|*" fed "*|*" fedjoin "*) server_start ;;
esac

for s in $only; do
    case $s in
        http) http_bench ;;
        login) login_bench ;;
        rooms) rooms_bench ;;
        sync) sync_bench ;;
        fed) fed_bench ;;
        fedjoin) fedjoin_bench ;;
    esac
done

case " $only " in
    *" http "*|*" login "*|*" rooms "*|*" sync "*|*" fed "*|*" fedjoin "*) server_stop ;;
esac

case " $only " in
    *" core "*) core_bench ;;
esac
