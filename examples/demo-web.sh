#!/usr/bin/env bash
# The live page over RabbitMQ: lcmon --web shows the example service's requests as they run (each
# takes a few seconds, STEP_MS between its steps) until Ctrl-C. Needs RabbitMQ on 127.0.0.1:5672
# (guest/guest) or CONTEXTURE_URL. PORT sets the page's port (8080).
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTEXTURE_URL="${CONTEXTURE_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}"
ready=$(mktemp)
lcmon_pid=
service_pid=
# Background commands of a script ignore SIGINT: Ctrl-C reaches this script, which stops both with
# SIGTERM (lcmon takes it as it takes Ctrl-C: "Bye.", exit 0).
cleanup() {
  if [ -n "$service_pid" ]; then kill "$service_pid" 2>/dev/null || true; fi
  if [ -n "$lcmon_pid" ]; then
    kill "$lcmon_pid" 2>/dev/null || true
    wait "$lcmon_pid" 2>/dev/null || true
  fi
  rm -f "$ready"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
node packages/lcmon/bin/lcmon.js --web "127.0.0.1:${PORT:-8080}" -r 'example.#' 2> >(tee "$ready" >&2) &
lcmon_pid=$!
for i in $(seq 1 200); do
  grep -q 'web view on' "$ready" && break
  if ! kill -0 "$lcmon_pid" 2>/dev/null; then
    status=0
    wait "$lcmon_pid" || status=$?
    lcmon_pid=
    exit "$status"
  fi
  if [ "$i" = 200 ]; then
    echo "demo: lcmon did not start within 20 s" >&2
    exit 1
  fi
  sleep 0.1
done
echo "demo: open $(grep -o 'http://[^ ]*' "$ready") in a browser; Ctrl-C stops" >&2
REQUESTS="${REQUESTS:-1000000}" CONCURRENCY="${CONCURRENCY:-30}" STEP_MS="${STEP_MS:-1500}" node examples/service.js &
service_pid=$!
wait "$service_pid"
