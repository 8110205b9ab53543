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
for _ in $(seq 1 100); do grep -q 'listening' "$ready" && break; sleep 0.1; done
REQUESTS="$REQUESTS" node examples/service.js
wait "$lcmon_pid"
