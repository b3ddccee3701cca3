#!/usr/bin/env bash
# Installs the Debian packages that roomrelay's build, tests, benchmarks and
# `make run` need, when they are missing. Idempotent and quiet when everything
# is there already; run by `make` before the first build. `deps.sh bench-peers`
# also installs nginx with nchan, which only `make bench-peers` uses.
set -euo pipefail

pkgs=(
  build-essential pkg-config
  libev-dev libhiredis-dev libjwt-dev libjansson-dev libssl-dev zlib1g-dev
  libcmocka-dev node-llhttp
  haproxy redis-server
  python3 python3-websockets python3-jwt python3-cryptography
  wrk curl chromium
  clang libclang-rt-14-dev clang-format clang-tidy cppcheck
)
# Node is on this project's machines already (a newer one than Debian's);
# Debian's is the fallback where there is none.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm)
if [ "${1:-}" = bench-peers ]; then
  pkgs+=(nginx libnginx-mod-nchan)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
  else
    SUDO=
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start their services on install where an init system runs;
  # tests start their own Redis and HAProxy on free loopback ports.
  for svc in redis-server haproxy nginx; do
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

# Node clients for the interop tests: the exact versions in package-lock.json,
# installed again only when the lock file is newer than node_modules/.
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  echo "deps: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  touch node_modules
fi
