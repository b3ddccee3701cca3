#!/usr/bin/env bash
# `make run`: a whole roomrelay cluster on loopback, in the foreground, and the
# demo page (web/) to use it with. Ctrl-C stops all of it.
#
# Started here: Redis (private port, no persistence), roomrelay-spoa, three
# roomrelay-backends ws1..ws3 on that Redis, HAProxy with the shipped config,
# and a static file server for web/ (the page connects to HAProxy's ws:// URL;
# WebSockets need no CORS, and the backends have no --origin list).
# Not a deployment: secrets are generated per run into build/run/, every
# process logs into build/run/NAME.log.
#
# Ports from the environment: RR_HTTP_PORT (8080, HAProxy), RR_WEB_PORT (8090,
# the page), RR_SPOA_PORT (12345), RR_METRICS_PORT (9102), RR_REDIS_PORT
# (6390), RR_WS_PORT (8081: ws1..ws3 on 8081..8083, their agent-check ports
# on 8181..8183). RR_RUN_DIR (build/run) holds the secrets and logs;
# RR_DRAIN_TIMEOUT (10) is the backends' --drain-timeout in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_PORT=${RR_HTTP_PORT:-8080}
WEB_PORT=${RR_WEB_PORT:-8090}
SPOA_PORT=${RR_SPOA_PORT:-12345}
METRICS_PORT=${RR_METRICS_PORT:-9102}
REDIS_PORT=${RR_REDIS_PORT:-6390}
WS_PORT=${RR_WS_PORT:-8081}
PY=/usr/bin/python3
RUN=${RR_RUN_DIR:-build/run}
mkdir -p "$RUN"
rm -f "$RUN"/*.log

# Fresh secrets per run: the HMAC secret the agent and the backends verify
# tokens with, the backends' admin token, and two demo users' tokens.
umask 077
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/hmac.secret"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/admin.token"
token() {
    "$PY" - "$RUN/hmac.secret" "$1" <<'PY'
import sys, time, jwt
secret = open(sys.argv[1], "rb").read()
now = int(time.time())
print(jwt.encode({"sub": sys.argv[2], "iss": "roomrelay-demo", "aud": "roomrelay",
                  "iat": now, "exp": now + 24 * 3600}, secret, algorithm="HS256"))
PY
}
token alice >"$RUN/demo.token"
token bob >"$RUN/bob.token"
umask 022
KEYS=(--hmac-secret-file "$RUN/hmac.secret" --issuer roomrelay-demo --audience roomrelay)

pids=()
backend_pids=()
cleanup() {
    trap - INT TERM EXIT
    # A backend's SIGTERM drains for up to --drain-timeout; SIGINT stops it now.
    for p in "${backend_pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "roomrelay stopped."
}
trap cleanup INT TERM EXIT

# start NAME CMD...: runs CMD in the background, its output in $RUN/NAME.log.
start() {
    local name=$1
    shift
    "$@" >"$RUN/$name.log" 2>&1 &
    last_pid=$!
    pids+=("$last_pid")
}

# ready NAME PID CMD...: polls CMD until it succeeds; fails if PID died first.
ready() {
    local name=$1 pid=$2
    shift 2
    for _ in $(seq 200); do
        "$@" >/dev/null 2>&1 && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name exited; its log ($RUN/$name.log):" >&2
            tail -20 "$RUN/$name.log" >&2
            exit 1
        fi
        sleep 0.05
    done
    echo "$name is not ready after 10 s; see $RUN/$name.log" >&2
    exit 1
}

start redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$RUN" --protected-mode no
ready redis "$last_pid" redis-cli -p "$REDIS_PORT" ping

start spoa build/roomrelay-spoa --listen "127.0.0.1:$SPOA_PORT" \
    --metrics-listen "127.0.0.1:$METRICS_PORT" --redis "127.0.0.1:$REDIS_PORT" "${KEYS[@]}"
ready spoa "$last_pid" curl -sf "http://127.0.0.1:$METRICS_PORT/health"

haproxy_env=()
for i in 1 2 3; do
    port=$((WS_PORT + i - 1))
    agent=$((WS_PORT + 100 + i - 1))
    start "ws$i" build/roomrelay-backend --listen "127.0.0.1:$port" --instance-id "ws$i" \
        --redis "127.0.0.1:$REDIS_PORT" --trusted-proxy 127.0.0.1/32 \
        --agent-check-listen "127.0.0.1:$agent" --admin-token-file "$RUN/admin.token" \
        --drain-timeout "${RR_DRAIN_TIMEOUT:-10}" "${KEYS[@]}"
    backend_pids+=("$last_pid")
    haproxy_env+=("RR_WS${i}_ADDR=127.0.0.1:$port" "RR_WS${i}_AGENT=$agent")
done
for i in 1 2 3; do
    ready "ws$i" "${backend_pids[$((i - 1))]}" \
        curl -sf "http://127.0.0.1:$((WS_PORT + i - 1))/health"
done

start haproxy env RR_HTTP_BIND="127.0.0.1:$HTTP_PORT" RR_SPOA_ADDR="127.0.0.1:$SPOA_PORT" \
    RR_HAPROXY_DIR="$PWD/haproxy" RR_STATS_SOCKET="$(realpath "$RUN")/haproxy.sock" \
    "${haproxy_env[@]}" \
    haproxy -db -f haproxy/haproxy.cfg
# Ready when the agent answers through it: a good token gets 200 from /demo.
ready haproxy "$last_pid" curl -sf -H "Authorization: Bearer $(cat "$RUN/demo.token")" \
    "http://127.0.0.1:$HTTP_PORT/demo"

start web "$PY" -m http.server --bind 127.0.0.1 --directory web "$WEB_PORT"
ready web "$last_pid" curl -sf "http://127.0.0.1:$WEB_PORT/roomrelay.js"

page="http://127.0.0.1:$WEB_PORT/#ws=ws://127.0.0.1:$HTTP_PORT/ws&room=lobby&token"
cat <<TXT

roomrelay is running on loopback (logs: $RUN/*.log):
  HAProxy   ws://127.0.0.1:$HTTP_PORT/ws   (JWT checked and room routed by the agent)
  agent     127.0.0.1:$SPOA_PORT, metrics http://127.0.0.1:$METRICS_PORT/metrics
  backends  ws1..ws3 on 127.0.0.1:$WS_PORT..$((WS_PORT + 2)) (/health, /metrics, /status, /rooms)
  Redis     127.0.0.1:$REDIS_PORT

Open the demo page, as alice and (in another window) as bob:
  $page=$(cat "$RUN/demo.token")
  $page=$(cat "$RUN/bob.token")

Then drain the backend that serves you (the page says which) and watch the
page move to another one and catch up:
  build/roomrelayctl --redis 127.0.0.1:$REDIS_PORT status
  build/roomrelayctl --redis 127.0.0.1:$REDIS_PORT drain ws2
  build/roomrelayctl --redis 127.0.0.1:$REDIS_PORT undrain ws2
  # or drain ws2 through its own admin endpoint:
  curl -X POST -H "Authorization: Bearer \$(cat $RUN/admin.token)" \\
       http://127.0.0.1:$((WS_PORT + 1))/admin/drain

Ctrl-C stops everything.
TXT
wait -n "${pids[@]}"
