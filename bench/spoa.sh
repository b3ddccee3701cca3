#!/usr/bin/env bash
# `make bench-spoa`: how fast roomrelay-spoa answers check-token, alone and
# behind HAProxy, beside (a) HAProxy without authentication and (b) HAProxy's
# native jwt_verify, all measured in this run. Writes bench/results/spoa.json
# and bench/results/spoa.md, and copies the table into docs/benchmarks.md.
# A benchmark, not a test: nothing here gates CI, and `make test` never runs it.
#
# Pinning (two cores): what is measured runs on core 0 (the agent alone; or
# HAProxy with nbthread 1, and in (c) the agent with --threads 1 beside it, so
# that (a), (b) and (c) all get the same one core), the load generator
# (spop-load or wrk) runs on core 1. docs/benchmarks.md explains the figures.
#
# Environment knobs: RR_BENCH_DURATION (seconds per saturated point, 10),
# RR_BENCH_LIGHT_DURATION (seconds per one-connection point, 5),
# RR_BENCH_ROUNDS (rounds of the end-to-end points, 3),
# RR_BENCH_WRK_CONNECTIONS (64), RR_BENCH_TOKENS (unique tokens, 20000),
# RR_BENCH_AGENT (the agent binary, build/roomrelay-spoa: to compare builds).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
AGENT=${RR_BENCH_AGENT:-build/roomrelay-spoa}
LOAD=build/bench/spop-load
DURATION=${RR_BENCH_DURATION:-10}
LIGHT_DURATION=${RR_BENCH_LIGHT_DURATION:-5}
WRK_CONNS=${RR_BENCH_WRK_CONNECTIONS:-64}
ROUNDS=${RR_BENCH_ROUNDS:-3}
NTOKENS=${RR_BENCH_TOKENS:-20000}
SUT_CORE=0
LOAD_CORE=1
CLK_TCK=$(getconf CLK_TCK)

for tool in "$AGENT" "$LOAD"; do
    [ -x "$tool" ] || { echo "bench-spoa: $tool is missing: run make first" >&2; exit 1; }
done
for tool in haproxy wrk taskset curl "$PY"; do
    command -v "$tool" >/dev/null || { echo "bench-spoa: $tool is not installed" >&2; exit 1; }
done
if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ ]]; then
    echo "bench-spoa: RR_BENCH_ROUNDS must be a whole number of rounds, 1 or more" >&2
    exit 2
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "bench-spoa: needs two cores (system under test on core 0, load on core 1)" >&2
    exit 1
fi

tmp=$(mktemp -d /tmp/rr-bench-spoa.XXXXXX)
raw=$tmp/raw
keys=$tmp/keys
mkdir -p "$raw" "$keys"
pids=()
agent_pid=
haproxy_pid=

cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() {
    printf 'bench-spoa: %s\n' "$*" >&2
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts "$@" in the background on the system-under-test core; sets started_pid.
start_bg() {
    local logfile=$1
    shift
    taskset -c "$SUT_CORE" "$@" >"$logfile" 2>&1 &
    started_pid=$!
    pids+=("$started_pid")
}

stop_pid() {
    local pid=$1 p keep=()
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${pids[@]}"; do
        [ "$p" = "$pid" ] || keep+=("$p")
    done
    pids=("${keep[@]+"${keep[@]}"}")
}

# Polls until the check (the rest of the arguments) succeeds. Fails after
# 10 s or when pid has exited: the points that needed it are then reported
# as having no result, and the run goes on.
wait_ready() {
    local what=$1 pid=$2 logfile=$3
    shift 3
    local i
    for ((i = 0; i < 200; i++)); do
        if "$@"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$what exited while starting:"
            tail -5 "$logfile" >&2
            return 1
        fi
        sleep 0.05
    done
    log "$what not ready after 10 s:"
    tail -5 "$logfile" >&2
    return 1
}

tcp_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# http_200 URL [TOKEN]
http_200() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
        ${2:+-H "Authorization: Bearer $2"} "$1" 2>/dev/null) || true
    [ "$code" = 200 ]
}

unix_open() {
    "$PY" -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$1" \
        2>/dev/null
}

# start_agent CACHE_SIZE [unix]: one worker thread, on the system-under-test
# core, listening on a free TCP port, or with "unix" on a Unix socket. Sets
# spoa_addr (HAProxy's RR_SPOA_ADDR) and, for TCP, spoa_port.
start_agent() {
    local ready
    if [ "${2:-}" = unix ]; then
        spoa_port='' spoa_addr=unix@$tmp/spoa.sock ready=(unix_open "$tmp/spoa.sock")
    else
        spoa_port=$(free_port)
        spoa_addr=127.0.0.1:$spoa_port ready=(tcp_open "$spoa_port")
    fi
    start_bg "$tmp/agent.log" "$AGENT" --listen "$spoa_addr" --threads 1 \
        --cache-size "$1" --hmac-secret-file "$keys/hmac.secret" \
        --pem-key "$keys/rsa.pub.pem" --log-level warn
    agent_pid=$started_pid
    wait_ready roomrelay-spoa "$agent_pid" "$tmp/agent.log" "${ready[@]}"
}

stop_agent() {
    stop_pid "$agent_pid"
    agent_pid=
}

# start_haproxy CONFIG READY_PATH READY_TOKEN: HAProxy with nbthread 1.
start_haproxy() {
    http_port=$(free_port)
    RR_HTTP_BIND=127.0.0.1:$http_port RR_SPOA_ADDR=${spoa_addr:-127.0.0.1:1} \
        RR_HAPROXY_DIR=$PWD/haproxy RR_STATS_SOCKET=$tmp/haproxy.sock \
        start_bg "$tmp/haproxy.log" haproxy -db -f bench/haproxy-bench-global.cfg -f "$1"
    haproxy_pid=$started_pid
    wait_ready haproxy "$haproxy_pid" "$tmp/haproxy.log" \
        http_200 "http://127.0.0.1:$http_port$2" "$3"
}

stop_haproxy() {
    stop_pid "$haproxy_pid"
    haproxy_pid=
}

# CPU ticks (user + system) a process has used so far; 0 once it is gone.
proc_ticks() {
    local s
    if [ -z "$1" ] || ! read -r s 2>/dev/null <"/proc/$1/stat"; then
        echo 0
        return
    fi
    s=${s##*) }
    # shellcheck disable=SC2086 # split the fields on purpose
    set -- $s
    echo $((${12} + ${13}))
}

# CPU time of this shell's waited-for children: what the load generator used.
children_ticks() {
    local s
    read -r s <"/proc/$$/stat"
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    echo $((${14} + ${15}))
}

busy_ticks() {
    local _cpu user nice sys _idle _iowait irq softirq steal _rest
    read -r _cpu user nice sys _idle _iowait irq softirq steal _rest </proc/stat
    echo $((user + nice + sys + irq + softirq + steal))
}

# run_point NAME COMMAND...: runs the load generator on its core and keeps
# its JSON line (NAME.json) and the CPU, in cores, that the agent, HAProxy,
# the load generator and everything else used meanwhile (NAME.cpu.json).
run_point() {
    local name=$1
    shift
    local t0 t1 a0 a1 h0 h1 l0 l1 b0 b1 rc=0
    log "$name"
    t0=$(date +%s%N)
    a0=$(proc_ticks "$agent_pid")
    h0=$(proc_ticks "$haproxy_pid")
    l0=$(children_ticks)
    b0=$(busy_ticks)
    taskset -c "$LOAD_CORE" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
    b1=$(busy_ticks)
    l1=$(children_ticks)
    h1=$(proc_ticks "$haproxy_pid")
    a1=$(proc_ticks "$agent_pid")
    t1=$(date +%s%N)
    grep '^{' "$tmp/$name.out" | tail -1 >"$raw/$name.json" || true
    awk -v w="$(((t1 - t0) / 1000))" -v hz="$CLK_TCK" -v rc="$rc" \
        -v a="$((a1 - a0))" -v h="$((h1 - h0))" -v l="$((l1 - l0))" -v b="$((b1 - b0))" \
        'function c(t) { return t / hz / (w / 1e6) }
         BEGIN { if (a < 0) a = 0; if (h < 0) h = 0  # the process died meanwhile
                 o = b - a - h - l; if (o < 0) o = 0
                 printf "{\"exit\":%d,\"wall_s\":%.3f,\"agent\":%.3f,\"haproxy\":%.3f,\"load\":%.3f,\"other\":%.3f}\n",
                        rc, w / 1e6, c(a), c(h), c(l), c(o) }' >"$raw/$name.cpu.json"
    if [ ! -s "$raw/$name.json" ]; then
        log "$name: no result (exit $rc):"
        tail -5 "$tmp/$name.err" >&2
    fi
}

wrk_point() {
    local name=$1 conns=$2 secs=$3
    shift 3
    run_point "$name" wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s "$@"
}

printf '{"duration_s":%d,"light_duration_s":%d,"rounds":%d,"wrk_connections":%d,"unique_tokens":%d,' \
    "$DURATION" "$LIGHT_DURATION" "$ROUNDS" "$WRK_CONNS" "$NTOKENS" >"$raw/params.json"
printf '"spop_connections":4,"spop_pipeline":20,"agent":"%s","loadavg_before":"%s"}\n' \
    "$AGENT" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw/params.json"

log "keys and $NTOKENS unique tokens per algorithm (python3-jwt)"
"$PY" bench/spoa-tokens.py "$keys" "$NTOKENS"
hs_one=$(cat "$keys/hs256-one.txt")
rs_one=$(cat "$keys/rs256-one.txt")

# 1. The agent alone: spop-load pipelining NOTIFYs, 4 connections x 20 in flight.
for alg in hs256 rs256; do
    for mode in hit miss; do
        if [ "$mode" = hit ]; then
            cache=65536 tokens=$keys/$alg-one.txt
        else
            cache=0 tokens=$keys/$alg-many.txt
        fi
        if start_agent "$cache"; then
            run_point "agent-$alg-$mode" "$LOAD" --agent "127.0.0.1:$spoa_port" \
                --connections 4 --pipeline 20 --warmup 1 --duration "$DURATION" \
                --tokens "$tokens" --json
        fi
        stop_agent
    done
done

# 2. End to end, wrk through HAProxy. Every request carries a token, in (a)
#    too, so that requests are the same size everywhere. A saturated point
#    uses $WRK_CONNS connections, a light one a single connection.
sat() {
    wrk_point "$1$sfx" "$WRK_CONNS" "$DURATION" "${@:2}"
}
light() {
    wrk_point "$1$sfx" 1 "$LIGHT_DURATION" "${@:2}"
}
url() {
    echo "http://127.0.0.1:$http_port/demo"
}

# One round: every end-to-end configuration once, each point named NAME.rN.
# Rounds follow each other, so that a slow spell of the machine (other
# virtual machines on the host) falls on every configuration alike rather
# than on one; the report compares (c) with (a) and (b) round by round and
# keeps the median.
e2e_round() {
    # (a) no auth
    if start_haproxy bench/haproxy-noauth.cfg /demo ""; then
        sat e2e-a-noauth -s bench/wrk-report.lua -H "Authorization: Bearer $rs_one" "$(url)"
        light e2e-a-noauth-light -s bench/wrk-report.lua -H "Authorization: Bearer $rs_one" "$(url)"
    fi
    stop_haproxy

    # (b) HAProxy's jwt_verify, RS256 then HS256
    export RR_BENCH_JWT_ALG RR_BENCH_JWT_KEY
    RR_BENCH_JWT_ALG=RS256 RR_BENCH_JWT_KEY=$keys/rsa.pub.pem
    if start_haproxy bench/haproxy-jwt-native.cfg /demo "$rs_one"; then
        sat e2e-b-rs256 -s bench/wrk-report.lua -H "Authorization: Bearer $rs_one" "$(url)"
        light e2e-b-rs256-light -s bench/wrk-report.lua -H "Authorization: Bearer $rs_one" "$(url)"
    fi
    stop_haproxy
    RR_BENCH_JWT_ALG=HS256 RR_BENCH_JWT_KEY=$(cat "$keys/hmac.secret.txt")
    if start_haproxy bench/haproxy-jwt-native.cfg /demo "$hs_one"; then
        sat e2e-b-hs256 -s bench/wrk-report.lua -H "Authorization: Bearer $hs_one" "$(url)"
    fi
    stop_haproxy
    # (b+) the same, plus the exp check and sub header a user adds by hand
    if start_haproxy bench/haproxy-jwt-native-claims.cfg /demo "$hs_one"; then
        sat e2e-bplus-hs256 -s bench/wrk-report.lua -H "Authorization: Bearer $hs_one" "$(url)"
    fi
    stop_haproxy

    # (c) the agent behind bench/haproxy-spoa.cfg (the shipped authentication
    #     step, answering as (a) and (b) do), both on core 0; cache hits with one
    #     token, then misses with unique tokens and no cache. Then, for
    #     reference, the shipped haproxy/haproxy.cfg itself with cache hits.
    if start_agent 65536; then
        if start_haproxy bench/haproxy-spoa.cfg /demo "$hs_one"; then
            sat e2e-c-hs256-hit -s bench/wrk-report.lua -H "Authorization: Bearer $hs_one" "$(url)"
            sat e2e-c-rs256-hit -s bench/wrk-report.lua -H "Authorization: Bearer $rs_one" "$(url)"
            light e2e-c-rs256-hit-light -s bench/wrk-report.lua \
                -H "Authorization: Bearer $rs_one" "$(url)"
        fi
        stop_haproxy
        if start_haproxy haproxy/haproxy.cfg /demo "$hs_one"; then
            sat e2e-c-hs256-hit-shipped -s bench/wrk-report.lua -H "Authorization: Bearer $hs_one" \
                "$(url)"
        fi
        stop_haproxy
    fi
    stop_agent
    if start_agent 65536 unix && start_haproxy bench/haproxy-spoa.cfg /demo "$hs_one"; then
        sat e2e-c-hs256-hit-unix -s bench/wrk-report.lua -H "Authorization: Bearer $hs_one" "$(url)"
    fi
    stop_haproxy
    stop_agent
    if start_agent 0 && start_haproxy bench/haproxy-spoa.cfg /demo "$hs_one"; then
        sat e2e-c-hs256-miss -s bench/wrk-tokens.lua "$(url)" -- "$keys/hs256-many.txt"
        sat e2e-c-rs256-miss -s bench/wrk-tokens.lua "$(url)" -- "$keys/rs256-many.txt"
        light e2e-c-rs256-miss-light -s bench/wrk-tokens.lua "$(url)" -- "$keys/rs256-many.txt"
    fi
    stop_haproxy
    stop_agent
}

for ((round = 1; round <= ROUNDS; round++)); do
    log "end to end, round $round of $ROUNDS"
    sfx=.r$round
    e2e_round
done

mkdir -p bench/results
"$PY" bench/spoa-report.py "$raw" bench/results/spoa.json bench/results/spoa.md \
    docs/benchmarks.md
log "wrote bench/results/spoa.json and bench/results/spoa.md"
cat bench/results/spoa.md
