#!/usr/bin/env bash
# The synod benchmark, on one box, on loopback, in one command:
#
#   tests/bench/run.sh
#
# Builds synod-relay and synod-bench in Release (build-bench/, warnings as
# errors), starts a private PostgreSQL 15 with its durable defaults
# (fsync on, synchronous_commit on) holding one database per relay, two
# relays A and B federated with each other, N sender accounts on A and N
# recipients on B, and a mosquitto broker (persistence on); then runs
# synod-bench, which drives synod and then mosquitto at full load and at
# half of it, and prints the figures. Everything is torn down at the end.
#
# Knobs (environment): BENCH_N sessions per side (32), BENCH_WINDOW
# in-flight sends per session (64), BENCH_SIZE ciphertext bytes (256),
# BENCH_DURATION measured seconds per phase (8), BENCH_WARMUP (2),
# BENCH_LINK_WINDOW the relays' federation window (4096),
# BENCH_MAX_BATCH the relays' [database] max_batch (256, the default),
# BENCH_DRAIN most seconds to wait for stragglers after a phase (30),
# BENCH_KEEP=1 keeps the state directory, BENCH_PERF=1 records
# `perf record -a -g` of the whole box during the synod run,
# BENCH_PGSS=1 loads pg_stat_statements and prints each relay's
# statements by server time after the run,
# BENCH_SKIP_MQTT=1 measures synod alone, BENCH_VERBOSE=1 prints
# progress every second.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BENCH_BUILD:-$root/build-bench}
N=${BENCH_N:-32}
WINDOW=${BENCH_WINDOW:-64}
SIZE=${BENCH_SIZE:-256}
DURATION=${BENCH_DURATION:-8}
WARMUP=${BENCH_WARMUP:-2}
LINK_WINDOW=${BENCH_LINK_WINDOW:-4096}
DRAIN=${BENCH_DRAIN:-30}
MAX_BATCH=${BENCH_MAX_BATCH:-256}

say() { echo "run.sh: $*" >&2; }

# --- mosquitto, as Debian ships it ---------------------------------------------
if ! command -v mosquitto >/dev/null || [[ ! -f /usr/include/mosquitto.h ]]; then
  say "installing mosquitto and libmosquitto-dev"
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    mosquitto libmosquitto-dev >/dev/null
fi
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)

# --- build ------------------------------------------------------------------------
say "building (Release) in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSYNOD_WERROR=ON \
  -DSYNOD_SANITIZE= >/dev/null
cmake --build "$build" -j"$(nproc)" --target synod-relay synod-bench >/dev/null
relay_bin=$build/relay/synod-relay
bench_bin=$build/tests/bench/synod-bench

# --- state and clean-up -----------------------------------------------------------
state=$(mktemp -d /tmp/synod-bench.XXXXXX)
chmod 0755 "$state"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$root/deploy/private-pg.sh" stop "$state/pg" >/dev/null 2>&1 || true
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "state kept in $state"; else rm -rf "$state"; fi
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 30000))
    port_free "$p" && { echo "$p"; return; }
  done
  say "no free port"; exit 1
}
wait_port() { # PORT PID LOG
  for _ in $(seq 1 300); do
    port_free "$1" || return 0
    kill -0 "$2" 2>/dev/null || { say "process $2 died; log:"; cat "$3" >&2; exit 1; }
    sleep 0.1
  done
  say "port $1 never opened; log:"; cat "$3" >&2; exit 1
}

# --- PostgreSQL -------------------------------------------------------------------
say "starting PostgreSQL"
admin=$("$root/deploy/private-pg.sh" start "$state/pg")
pgport=$(cat "$state/pg/port")
psql -q -X -v ON_ERROR_STOP=1 "$admin" -c "CREATE DATABASE bench_a" -c "CREATE DATABASE bench_b"
if [[ ${BENCH_PGSS:-0} == 1 ]]; then
  psql -q -X "$admin" -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
  "$root/deploy/private-pg.sh" restart "$state/pg"
  for d in bench_a bench_b; do
    psql -q -X "${admin/dbname=postgres/dbname=$d}" -c "CREATE EXTENSION pg_stat_statements"
  done
fi
durability=$(psql -X -A -t "$admin" -c "SELECT 'fsync=' || current_setting('fsync') || ' synchronous_commit=' || current_setting('synchronous_commit')")

# --- relays -------------------------------------------------------------------------
port_a=$(free_port)
port_b=$(free_port)
while [[ $port_b == "$port_a" ]]; do port_b=$(free_port); done
for r in a b; do
  mkdir -p "$state/$r"
  "$relay_bin" keygen -k "$state/$r/relay.key" >"$state/$r/key.line" 2>/dev/null
done
key_a=$(cat "$state/a/key.line")
key_b=$(cat "$state/b/key.line")

write_conf() { # SELF PORT OTHER OTHERPORT OTHERKEY
  cat >"$state/$1/relay.conf" <<EOF
[relay]
name = relay-$1
operator = "Bench $1"
listen = 127.0.0.1:$2
key_file = $state/$1/relay.key
log_level = warn

[database]
conninfo = host=127.0.0.1 port=$pgport user=synod dbname=bench_$1
max_batch = $MAX_BATCH

[limits]
max_connections = 4096
message_rate = 1000000
message_burst = 10000000
quota_bytes = 1GiB

[federation]
window = $LINK_WINDOW
retry_min = 20ms
retry_max = 500ms

[peer "relay-$3"]
address = 127.0.0.1:$4
key = $5
operator = "Bench $3"
EOF
  chmod 0600 "$state/$1/relay.conf"
}
write_conf a "$port_a" b "$port_b" "$key_b"
write_conf b "$port_b" a "$port_a" "$key_a"

say "migrating and adding $N users on each relay"
for r in a b; do
  "$relay_bin" migrate -c "$state/$r/relay.conf" >/dev/null
  prefix=$([[ $r == a ]] && echo s || echo r)
  : >"$state/$r/users"
  for i in $(seq 1 "$N"); do
    name=$(printf '%s%04d' "$prefix" "$i")
    code=$("$relay_bin" user add "$name" -c "$state/$r/relay.conf" |
             sed -n 's/^enrolment code: //p')
    echo "$name $code" >>"$state/$r/users"
  done
done

for r in a b; do
  "$relay_bin" run -c "$state/$r/relay.conf" >"$state/$r/log" 2>&1 &
  pids+=($!)
  eval "pid_$r=$!"
done
wait_port "$port_a" "$pid_a" "$state/a/log"
wait_port "$port_b" "$pid_b" "$state/b/log"

# --- mosquitto ----------------------------------------------------------------------
mport=$(free_port)
mkdir -p "$state/mqtt"
muser=""
if [[ $(id -u) -eq 0 ]]; then chown mosquitto: "$state/mqtt" 2>/dev/null && muser="user mosquitto"; fi
cat >"$state/mqtt/mosquitto.conf" <<EOF
$muser
listener $mport 127.0.0.1
allow_anonymous true
persistence true
persistence_location $state/mqtt/
max_inflight_messages $WINDOW
max_queued_messages 1000000
log_dest file $state/mqtt/log
EOF
"$mosquitto_bin" -c "$state/mqtt/mosquitto.conf" >"$state/mqtt/stdout" 2>&1 &
pid_m=$!
pids+=("$pid_m")
wait_port "$mport" "$pid_m" "$state/mqtt/stdout"

# --- the run --------------------------------------------------------------------------
say "PostgreSQL: $durability; running synod-bench"
perf_pid=""
if [[ ${BENCH_PERF:-0} == 1 ]]; then
  perf record -a -g -o "$state/perf.data" -- sleep $((WARMUP + DURATION)) \
    >/dev/null 2>&1 &
  perf_pid=$!
fi
mqtt_args=(--mqtt-port "$mport" --pid-mqtt "$pid_m")
[[ ${BENCH_SKIP_MQTT:-0} == 1 ]] && mqtt_args=()
status=0
"$bench_bin" -n "$N" -w "$WINDOW" -s "$SIZE" --warmup "$WARMUP" --duration "$DURATION" \
  --drain "$DRAIN" ${BENCH_VERBOSE:+-v} \
  --relay-a "relay-a:$port_a:$key_a:$state/a/users" \
  --relay-b "relay-b:$port_b:$key_b:$state/b/users" \
  --pid-a "$pid_a" --pid-b "$pid_b" \
  "${mqtt_args[@]}" | tee "$state/result" || status=$?
echo "postgres: $durability"
echo "mosquitto: persistence=true qos=1 version=$("$mosquitto_bin" -h 2>/dev/null | sed -n 's/^mosquitto version //p')"
if [[ -n $perf_pid ]]; then
  wait "$perf_pid" || true
  perf report -i "$state/perf.data" --no-children --sort comm,dso,symbol 2>/dev/null |
    head -n 60 >"$build/bench-perf.txt" || true
  say "perf report head in $build/bench-perf.txt"
fi
if [[ ${BENCH_PGSS:-0} == 1 ]]; then
  for d in bench_a bench_b; do
    echo "== $d: statements by server time (pg_stat_statements)"
    psql -X -P pager=off "${admin/dbname=postgres/dbname=$d}" -c "
      SELECT calls, round(total_exec_time) AS ms, round(total_plan_time) AS plan_ms,
             rows, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
      FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY total_exec_time DESC LIMIT 8"
  done | tee "$build/bench-pgss.txt"
fi
cp "$state/result" "$build/bench-result.txt"
grep -h -E "level=(error|warn)" "$state/a/log" "$state/b/log" | head -n 5 >&2 || true
exit "$status"
