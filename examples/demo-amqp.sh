#!/usr/bin/env bash
# The demo over RabbitMQ: lcmon collates what the example service publishes to the broker.
# Needs RabbitMQ on 127.0.0.1:5672 (guest/guest) or CONTEXTURE_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTEXTURE_URL="${CONTEXTURE_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}"
REQUESTS="${REQUESTS:-2000}"
ready=$(mktemp)
trap 'rm -f "$ready"' EXIT
# lcmon binds its queue first and says so on stderr; it exits by itself after the last object.
npx lcmon -c -r 'example.#' -n "$REQUESTS" 2> >(tee "$ready" >&2) &
lcmon_pid=$!
# The service starts once lcmon listens; if lcmon ends first (no broker, a refused login), the demo
# ends with lcmon's status and starts nothing.
for i in $(seq 1 200); do
  grep -q 'listening' "$ready" && break
  if ! kill -0 "$lcmon_pid" 2>/dev/null; then
    status=0
    wait "$lcmon_pid" || status=$?
    exit "$status"
  fi
  if [ "$i" = 200 ]; then
    echo "demo: lcmon did not start listening within 20 s" >&2
    kill "$lcmon_pid" 2>/dev/null || true
    exit 1
  fi
  sleep 0.1
done
REQUESTS="$REQUESTS" node examples/service.js
wait "$lcmon_pid"
