#!/usr/bin/env bash
# A 3-master Redis Cluster on loopback for the tests, beside the single Redis on 6379:
#   test/cluster/redis-cluster.sh start   # ports 7000-7002 (REDIS_CLUSTER_PORT sets the first)
#   test/cluster/redis-cluster.sh stop    # shuts the nodes down and removes their directories
#   test/cluster/redis-cluster.sh status  # exit 0 when all three answer and the cluster is ok
# Each node keeps its files in its own directory under REDIS_CLUSTER_DIR (default
# ${TMPDIR:-/tmp}/contexture-redis-cluster); nothing is persisted. `start` on a running cluster
# does nothing.
set -euo pipefail
first=${REDIS_CLUSTER_PORT:-7000}
ports=("$first" "$((first + 1))" "$((first + 2))")
base=${REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/contexture-redis-cluster}

up() { redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }
ok() { redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; }
all_ok() { for p in "${ports[@]}"; do ok "$p" || return 1; done; }

case "${1:-}" in
  start)
    command -v redis-server >/dev/null || { echo "redis-cluster: redis-server is not installed" >&2; exit 1; }
    if all_ok; then exit 0; fi
    for p in "${ports[@]}"; do
      if up "$p"; then continue; fi
      rm -rf "$base/$p" && mkdir -p "$base/$p"
      redis-server --port "$p" --bind 127.0.0.1 --daemonize yes --cluster-enabled yes \
        --cluster-config-file "$base/$p/nodes.conf" --cluster-node-timeout 2000 --dir "$base/$p" \
        --save "" --appendonly no --logfile "$base/$p/redis.log" --pidfile "$base/$p/redis.pid"
    done
    for i in $(seq 1 50); do
      n=0; for p in "${ports[@]}"; do up "$p" && n=$((n + 1)); done
      [ "$n" = 3 ] && break
      [ "$i" = 50 ] && { echo "redis-cluster: the nodes did not start (see $base/*/redis.log)" >&2; exit 1; }
      sleep 0.2
    done
    if ! redis-cli -h 127.0.0.1 -p "$first" cluster info | grep -q 'cluster_known_nodes:3'; then
      redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null
    fi
    for i in $(seq 1 100); do
      all_ok && exit 0
      sleep 0.2
    done
    echo "redis-cluster: the cluster did not reach state ok" >&2
    exit 1
    ;;
  stop)
    for p in "${ports[@]}"; do
      redis-cli -h 127.0.0.1 -p "$p" shutdown nosave >/dev/null 2>&1 || true
    done
    for p in "${ports[@]}"; do
      for i in $(seq 1 50); do up "$p" || break; sleep 0.1; done
      rm -rf "${base:?}/$p"
    done
    rmdir "$base" 2>/dev/null || true
    ;;
  status)
    all_ok
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
