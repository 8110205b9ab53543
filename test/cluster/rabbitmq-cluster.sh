#!/usr/bin/env bash
# A 3-node RabbitMQ cluster on loopback for the tests, beside the single broker on 5672:
#   test/cluster/rabbitmq-cluster.sh start   # AMQP on 5681-5683 (RABBITMQ_CLUSTER_PORT sets the first)
#   test/cluster/rabbitmq-cluster.sh stop    # stops the three nodes and removes their directories
#   test/cluster/rabbitmq-cluster.sh status  # exit 0 when all three nodes run and form one cluster
#   test/cluster/rabbitmq-cluster.sh ctl NODE ARGS…  # rabbitmqctl -n NODE ARGS… (stop_app, start_app)
# Nodes rabbit-c1@localhost … rabbit-c3@localhost, Erlang distribution on 25681-25683, their files
# under RABBITMQ_CLUSTER_DIR (default ${TMPDIR:-/tmp}/contexture-rabbitmq-cluster); no plugins
# (so no management port), their own config file (so not the system broker's listeners), the
# user's ~/.erlang.cookie (created as Erlang would when missing) shared with rabbitmqctl. The
# system broker and its epmd are left alone. `start` on a running cluster does nothing; on a node
# whose app was stopped (stop_app), it starts the app again.
set -euo pipefail
first=${RABBITMQ_CLUSTER_PORT:-5681}
ports=("$first" "$((first + 1))" "$((first + 2))")
names=(rabbit-c1@localhost rabbit-c2@localhost rabbit-c3@localhost)
base=${RABBITMQ_CLUSTER_DIR:-${TMPDIR:-/tmp}/contexture-rabbitmq-cluster}

# The distribution's own scripts: the /usr/sbin wrappers of the Debian package switch to the
# rabbitmq user (and its cookie); these run as the caller, with the caller's cookie.
bindir=${RABBITMQ_BIN_DIR:-}
if [ -z "$bindir" ]; then
  if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    bindir=/usr/lib/rabbitmq/bin
  elif command -v rabbitmq-server >/dev/null; then
    bindir=$(dirname "$(command -v rabbitmq-server)")
  else
    echo "rabbitmq-cluster: rabbitmq-server is not installed" >&2
    exit 1
  fi
fi

# What every server and CLI invocation here shares: no system env file, loopback epmd.
common_env() {
  export RABBITMQ_CONF_ENV_FILE="$base/rabbitmq-env.conf"
  export ERL_EPMD_ADDRESS=127.0.0.1
  # A node that fails to boot writes its crash dump here, not into the caller's working directory.
  export ERL_CRASH_DUMP="$base/erl_crash.dump"
  unset RABBITMQ_NODENAME NODENAME || true
}

ctl() { (common_env && "$bindir/rabbitmqctl" -q -n "$@"); }
node_up() { ctl "$1" ping >/dev/null 2>&1; }
# 3 when the node's app runs and sees the other two running.
running() { ctl "$1" eval 'length(rabbit_nodes:all_running()).' 2>/dev/null | tr -d '[:space:]'; }
all_ok() { for n in "${names[@]}"; do [ "$(running "$n")" = 3 ] || return 1; done; }

cookie() {
  local f="$HOME/.erlang.cookie"
  if [ ! -f "$f" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 20 | tr 'a-f' 'A-F' >"$f")
    chmod 400 "$f"
  fi
}

start_node() {
  local i=$1 name=${names[$1]} port=${ports[$1]} dir="$base/node$(($1 + 1))"
  mkdir -p "$dir/mnesia" "$dir/log"
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$port
vm_memory_high_watermark.relative = 0.1
disk_free_limit.absolute = 50MB
log.file.level = warning
log.console = false
EOF
  (
    common_env
    export RABBITMQ_NODENAME=$name RABBITMQ_NODE_PORT=$port RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_DIST_PORT=$((port + 20000))
    export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins" RABBITMQ_PLUGINS_EXPAND_DIR="$dir/plugins"
    export RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_PID_FILE="$dir/pid"
    # Two cores shared with everything else: one scheduler each keeps three nodes light.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 1:1 +A 4 -kernel inet_dist_use_interface {127,0,0,1}"
    nohup "$bindir/rabbitmq-server" >"$dir/log/startup.log" 2>&1 &
    echo $! >"$dir/launcher.pid"
  )
  : "$i"
}

case "${1:-}" in
  start)
    if all_ok; then exit 0; fi
    mkdir -p "$base"
    : >"$base/rabbitmq-env.conf"
    echo '[].' >"$base/enabled_plugins"
    cookie
    for i in 0 1 2; do
      n=${names[$i]}
      if node_up "$n"; then
        ctl "$n" start_app >/dev/null 2>&1 || true
      else
        start_node "$i"
      fi
    done
    for n in "${names[@]}"; do
      # await_startup fails at once on a node not yet registered with epmd: wait for that first.
      for _ in $(seq 1 150); do node_up "$n" && break; sleep 0.4; done
      if ! ctl "$n" --timeout 90 await_startup >/dev/null 2>&1; then
        echo "rabbitmq-cluster: $n did not start (see $base/node*/log)" >&2
        exit 1
      fi
    done
    for n in "${names[@]:1}"; do
      if [ "$(running "$n")" != 3 ] && ! ctl "$n" eval 'rabbit_nodes:all().' | grep -q "${names[0]}"; then
        # Said only when it fails: a joining node logs its peers' boot as errors meanwhile.
        for step in stop_app "join_cluster ${names[0]}" start_app; do
          # shellcheck disable=SC2086
          if ! out=$(ctl "$n" $step 2>&1); then
            echo "rabbitmq-cluster: $n: $step failed: $out" >&2
            exit 1
          fi
        done
      fi
    done
    for i in $(seq 1 100); do
      all_ok && exit 0
      sleep 0.3
    done
    echo "rabbitmq-cluster: the three nodes did not form one cluster (see $base/node*/log)" >&2
    exit 1
    ;;
  stop)
    for n in "${names[@]}"; do ctl "$n" stop >/dev/null 2>&1 || true; done
    for i in 1 2 3; do
      f="$base/node$i/launcher.pid"
      if [ -f "$f" ]; then
        pid=$(cat "$f")
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      fi
      rm -rf "${base:?}/node$i"
    done
    rm -f "$base/rabbitmq-env.conf" "$base/enabled_plugins" "$base/erl_crash.dump"
    rmdir "$base" 2>/dev/null || true
    ;;
  status)
    all_ok
    ;;
  ctl)
    shift
    ctl "$@"
    ;;
  *)
    echo "usage: $0 start|stop|status|ctl NODE ARGS..." >&2
    exit 2
    ;;
esac
