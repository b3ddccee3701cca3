#!/usr/bin/env bash
# `make run`: starts roomrelay on loopback in the foreground and stops all of
# it on Ctrl-C. For now: roomrelay-spoa + HAProxy with the shipped config and
# its JWT-protected /demo endpoint; backends join when they exist.
#
# Ports can be set from the environment: RR_HTTP_PORT (8080), RR_SPOA_PORT
# (12345), RR_METRICS_PORT (9102).
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_PORT=${RR_HTTP_PORT:-8080}
SPOA_PORT=${RR_SPOA_PORT:-12345}
METRICS_PORT=${RR_METRICS_PORT:-9102}
RUN=build/run
mkdir -p "$RUN"

# A fresh HMAC secret per run, and a demo token signed with it.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/hmac.secret"
TOKEN=$(/usr/bin/python3 - "$RUN/hmac.secret" <<'PY'
import sys, time, jwt
secret = open(sys.argv[1], "rb").read()
now = int(time.time())
print(jwt.encode({"sub": "demo-user", "iss": "roomrelay-demo", "aud": "roomrelay",
                  "iat": now, "exp": now + 24 * 3600}, secret, algorithm="HS256"))
PY
)

pids=()
cleanup() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "roomrelay stopped."
}
trap cleanup INT TERM EXIT

build/roomrelay-spoa --listen "127.0.0.1:$SPOA_PORT" --metrics-listen "127.0.0.1:$METRICS_PORT" \
    --hmac-secret-file "$RUN/hmac.secret" --issuer roomrelay-demo --audience roomrelay &
pids+=($!)

RR_HTTP_BIND="127.0.0.1:$HTTP_PORT" RR_SPOA_ADDR="127.0.0.1:$SPOA_PORT" \
RR_HAPROXY_DIR="$PWD/haproxy" RR_STATS_SOCKET="$PWD/$RUN/haproxy.sock" \
    haproxy -db -f haproxy/haproxy.cfg &
pids+=($!)

for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" && break
    sleep 0.1
done

cat <<TXT

roomrelay is running on loopback:
  HAProxy     http://127.0.0.1:$HTTP_PORT   (frontend fe_ws, JWT checked by the agent)
  agent       127.0.0.1:$SPOA_PORT (SPOP), metrics http://127.0.0.1:$METRICS_PORT/metrics

A demo token (HS256, sub=demo-user, valid 24 h) is in $RUN/demo.token. Try:
  curl -i -H "Authorization: Bearer \$(cat $RUN/demo.token)" http://127.0.0.1:$HTTP_PORT/demo
  curl -i "http://127.0.0.1:$HTTP_PORT/demo?access_token=\$(cat $RUN/demo.token)"
  curl -i http://127.0.0.1:$HTTP_PORT/demo            # 401, X-RR-Auth-Err: missing
  curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep check_token

Ctrl-C stops everything.
TXT
printf '%s\n' "$TOKEN" >"$RUN/demo.token"
wait -n "${pids[@]}"
