#!/usr/bin/env bash
# `make bench-backend`: roomrelay-backend's fan-out beside bench/raw-fanout
# (plain epoll, one writev per socket per pass: what this machine can do) and
# node `ws` (when node and node_modules/ws are there), all in this run:
#   1. idle: 10 000 connections, the server's user-space RSS per connection;
#   2. latency: one room of 5 000 members, 100-byte data, 200 publishes/s
#      (1M deliveries/s): missing messages, p50/p99/p99.9 publish -> deliver;
#   3. saturation: the same room, publish rate raised step by step until
#      deliveries/s stops growing or a message goes missing; the peak.
# Writes bench/results/backend.json and backend.md and the tables of
# docs/benchmarks.md between the backend-results markers.
#
# `bench/backend.sh peers` (`make bench-peers`) runs the same load against
# node `ws` and nchan (nginx + libnginx-mod-nchan, installed through
# scripts/deps.sh bench-peers) beside the backend and the baseline, and
# writes bench/results/backend-peers.json and .md instead.
#
# Pinning (two cores): the server on core 0, roomrelay-bench (all its worker
# processes) on core 1. A benchmark, not a test: `make test` never runs it.
#
# The latency test runs RR_BENCH_LATENCY_RUNS times per server, the servers
# taking turns, and the report keeps each server's median p99: one run's
# p99 on this machine moves by tens of percent from run to run.
#
# Knobs: RR_BENCH_IDLE_CONNS (10000), RR_BENCH_MEMBERS (5000), RR_BENCH_RATE
# (200), RR_BENCH_SIZE (100), RR_BENCH_DURATION (5, seconds measured at the
# fixed rate), RR_BENCH_LATENCY_RUNS (3), RR_BENCH_STEP_DURATION (3, per
# ladder step), RR_BENCH_LADDER (publishes/s per step), RR_BENCH_BACKEND (the
# backend binary).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-backend}
PY=/usr/bin/python3
BACKEND=${RR_BENCH_BACKEND:-build/roomrelay-backend}
LOAD=build/roomrelay-bench
RAW=build/bench/raw-fanout
IDLE_CONNS=${RR_BENCH_IDLE_CONNS:-10000}
MEMBERS=${RR_BENCH_MEMBERS:-5000}
RATE=${RR_BENCH_RATE:-200}
SIZE=${RR_BENCH_SIZE:-100}
DURATION=${RR_BENCH_DURATION:-5}
LATENCY_RUNS=${RR_BENCH_LATENCY_RUNS:-3}
STEP_DURATION=${RR_BENCH_STEP_DURATION:-3}
LADDER=${RR_BENCH_LADDER:-10,20,50,100,200,400,800,1200,1600,2400,3200}
SUT_CORE=0
LOAD_CORE=1

case $MODE in
backend | peers) ;;
*)
    echo "usage: bench/backend.sh [peers]" >&2
    exit 2
    ;;
esac
for tool in "$BACKEND" "$LOAD" "$RAW"; do
    [ -x "$tool" ] || { echo "bench-backend: $tool is missing: run make first" >&2; exit 1; }
done
for tool in taskset "$PY"; do
    command -v "$tool" >/dev/null || { echo "bench-backend: $tool is not installed" >&2; exit 1; }
done
if [ "$(nproc)" -lt 2 ]; then
    echo "bench-backend: needs two cores (server on core 0, load on core 1)" >&2
    exit 1
fi

tmp=$(mktemp -d /tmp/rr-bench-backend.XXXXXX)
raw=$tmp/raw
mkdir -p "$raw"
server_pid=

cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() {
    printf 'bench-backend: %s\n' "$*" >&2
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

tcp_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Which servers run, and how each is started: start_NAME PORT LOGFILE.
servers=(backend raw)
proto_of() { [ "$1" = nchan ] && echo raw || echo rr; }

start_backend() {
    taskset -c "$SUT_CORE" "$BACKEND" --listen "127.0.0.1:$1" --allow-anonymous \
        --publish-rate 0 --max-connections 20000 --log-level warn >"$2" 2>&1 &
    server_pid=$!
}

start_raw() {
    taskset -c "$SUT_CORE" "$RAW" --listen "127.0.0.1:$1" >"$2" 2>&1 &
    server_pid=$!
}

start_node_ws() {
    taskset -c "$SUT_CORE" node bench/peers/ws-server.mjs "$1" >"$2" 2>&1 &
    server_pid=$!
}

start_nchan() {
    mkdir -p "$tmp/nginx"
    sed -e "s|@PORT@|$1|g" -e "s|@DIR@|$tmp/nginx|g" bench/peers/nchan.conf >"$tmp/nginx/nginx.conf"
    taskset -c "$SUT_CORE" nginx -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" >"$2" 2>&1 &
    server_pid=$!
}

if command -v node >/dev/null && [ -d node_modules/ws ]; then
    servers+=(node_ws)
else
    echo '{"server":"node_ws","skipped":"node or node_modules/ws not installed (make deps)"}' \
        >"$raw/skipped-node_ws.json"
fi
if [ "$MODE" = peers ]; then
    if scripts/deps.sh bench-peers && [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
        servers+=(nchan)
    else
        echo '{"server":"nchan","skipped":"libnginx-mod-nchan not installed"}' \
            >"$raw/skipped-nchan.json"
    fi
fi

# start NAME: starts the server on core 0 and waits until it listens.
start() {
    port=$(free_port)
    "start_$1" "$port" "$tmp/$1.log"
    local i
    for ((i = 0; i < 200; i++)); do
        tcp_open "$port" && return 0
        if ! kill -0 "$server_pid" 2>/dev/null; then
            log "$1 exited while starting:"
            tail -5 "$tmp/$1.log" >&2
            server_pid=
            return 1
        fi
        sleep 0.05
    done
    log "$1 not listening after 10 s"
    return 1
}

stop() {
    [ -n "$server_pid" ] || return 0
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

# run NAME TEST ARGS...: roomrelay-bench on core 1 against the running server.
run() {
    local name=$1 test=$2 size=$SIZE
    shift 2
    # nchan relays `data` alone: pad it to the size of the backend's whole
    # `message` event so that every server sends frames of the same size.
    [ "$name" = nchan ] && size=$((SIZE + 104))
    log "$name: $test"
    taskset -c "$LOAD_CORE" "$LOAD" --server "127.0.0.1:$port" --server-pid "$server_pid" \
        --proto "$(proto_of "$name")" --size "$size" --label "$name/$test" "$@" \
        >"$raw/$name-$test.json" 2>"$tmp/$name-$test.err" || true
    if ! "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$raw/$name-$test.json" \
        2>/dev/null; then
        log "$name $test: no result:"
        tail -5 "$tmp/$name-$test.err" >&2
        rm -f "$raw/$name-$test.json"
    fi
}

printf '{"mode":"%s","idle_connections":%d,"members":%d,"rate":%s,"size":%d,"duration_s":%d,' \
    "$MODE" "$IDLE_CONNS" "$MEMBERS" "$RATE" "$SIZE" "$DURATION" >"$raw/params.json"
printf '"latency_runs":%d,"step_duration_s":%d,"ladder":"%s","backend":"%s",' \
    "$LATENCY_RUNS" "$STEP_DURATION" "$LADDER" "$BACKEND" >>"$raw/params.json"
printf '"date":"%s","loadavg_before":"%s"}\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw/params.json"

# 1. idle connections, 1 000 rooms of 10
for s in "${servers[@]}"; do
    if start "$s"; then
        run "$s" idle --connections "$IDLE_CONNS" --rooms 1000 --hold 3
    fi
    stop
done
# 2. the fixed rate, each server started afresh for each run
for ((k = 1; k <= LATENCY_RUNS; k++)); do
    for s in "${servers[@]}"; do
        if start "$s"; then
            run "$s" "latency$k" --connections "$MEMBERS" --rooms 1 --rates "$RATE" --warmup 1 \
                --duration "$DURATION" --hold 1
        fi
        stop
    done
done
# 3. the ladder
for s in "${servers[@]}"; do
    if start "$s"; then
        run "$s" saturation --connections "$MEMBERS" --rooms 1 --rates "$LADDER" --ladder \
            --warmup 1 --duration "$STEP_DURATION" --drain-ms 3000 --hold 1
    fi
    stop
done

mkdir -p bench/results
if [ "$MODE" = peers ]; then
    out=bench/results/backend-peers
else
    out=bench/results/backend
fi
"$PY" bench/backend-report.py "$raw" "$out.json" "$out.md" docs/benchmarks.md "$MODE"
log "wrote $out.json and $out.md"
cat "$out.md"
