#!/usr/bin/env bash
# The key directory benchmark (issue 4), on one box, on loopback, in one
# command:
#
#   tests/bench/lookup.sh
#
# Builds synod-relay and synod-bench-lookup in Release (build-bench/,
# warnings as errors), starts a private PostgreSQL 15 (durable defaults)
# holding one database per relay, three relays A, B and C of three
# operators, all federated with each other, and one account on A; then
# runs synod-bench-lookup, which registers that account's user (publish at
# A, countersignature, publish at B and C), and prints:
#   ed25519: sign/s=... verify/s=...          the crypto limit, one thread
#   lookup: answers/s=... (x% of sign rate)   relay A under load, every
#                                             answer verified by the client
#   quorum lookup: p50=... ms p99=... ms ...  three relays, k=2, decided
# Everything is torn down at the end.
#
# Knobs (environment): LOOKUP_CONNS load connections (8), LOOKUP_WINDOW
# requests in flight per connection (32), LOOKUP_THREADS client threads
# (1), LOOKUP_DURATION measured seconds (5), LOOKUP_WARMUP (1),
# LOOKUP_FROM from_version of the load's requests (0),
# LOOKUP_QUORUM quorum lookups on open connections (300),
# LOOKUP_HANDSHAKES quorum lookups that open their connections (50),
# LOOKUP_MAX_BATCH the relays' [database] max_batch (256, the default),
# LOOKUP_PERF=1 records `perf record -g` of relay A during the load phase
# (report head in build-bench/lookup-perf.txt), LOOKUP_PGSS=1 prints
# relay A's statements by server time, LOOKUP_KEEP=1 keeps the state
# directory, LOOKUP_VERBOSE=1 prints progress.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BENCH_BUILD:-$root/build-bench}
CONNS=${LOOKUP_CONNS:-8}
WINDOW=${LOOKUP_WINDOW:-32}
THREADS=${LOOKUP_THREADS:-1}
DURATION=${LOOKUP_DURATION:-5}
WARMUP=${LOOKUP_WARMUP:-1}
FROM=${LOOKUP_FROM:-0}
QUORUM=${LOOKUP_QUORUM:-300}
HANDSHAKES=${LOOKUP_HANDSHAKES:-50}
MAX_BATCH=${LOOKUP_MAX_BATCH:-256}

say() { echo "lookup.sh: $*" >&2; }

# --- build ------------------------------------------------------------------------
say "building (Release) in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSYNOD_WERROR=ON \
  -DSYNOD_SANITIZE= >/dev/null
cmake --build "$build" -j"$(nproc)" --target synod-relay synod-bench-lookup >/dev/null
relay_bin=$build/relay/synod-relay
bench_bin=$build/tests/bench/synod-bench-lookup

# --- state and clean-up -----------------------------------------------------------
state=$(mktemp -d /tmp/synod-lookup.XXXXXX)
chmod 0755 "$state"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$root/deploy/private-pg.sh" stop "$state/pg" >/dev/null 2>&1 || true
  if [[ ${LOOKUP_KEEP:-0} == 1 ]]; then say "state kept in $state"; else rm -rf "$state"; fi
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
relays=(a b c)
for r in "${relays[@]}"; do
  psql -q -X -v ON_ERROR_STOP=1 "$admin" -c "CREATE DATABASE lookup_$r"
done
if [[ ${LOOKUP_PGSS:-0} == 1 ]]; then
  psql -q -X "$admin" -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
  "$root/deploy/private-pg.sh" restart "$state/pg"
  psql -q -X "${admin/dbname=postgres/dbname=lookup_a}" -c "CREATE EXTENSION pg_stat_statements"
fi

# --- relays -------------------------------------------------------------------------
declare -A port key
for r in "${relays[@]}"; do
  p=$(free_port)
  for q in "${relays[@]}"; do
    while [[ -n ${port[$q]:-} && ${port[$q]} == "$p" ]]; do p=$(free_port); done
  done
  port[$r]=$p
  mkdir -p "$state/$r"
  "$relay_bin" keygen -k "$state/$r/relay.key" >"$state/$r/key.line" 2>/dev/null
  key[$r]=$(cat "$state/$r/key.line")
done

for r in "${relays[@]}"; do
  cat >"$state/$r/relay.conf" <<CONF
[relay]
name = relay-$r
operator = "Operator $r"
listen = 127.0.0.1:${port[$r]}
key_file = $state/$r/relay.key
log_level = warn

[database]
conninfo = host=127.0.0.1 port=$pgport user=synod dbname=lookup_$r
max_batch = $MAX_BATCH

[limits]
max_connections = 4096
message_rate = 1000000
message_burst = 10000000

[federation]
retry_min = 20ms
retry_max = 500ms
CONF
  for q in "${relays[@]}"; do
    [[ $q == "$r" ]] && continue
    cat >>"$state/$r/relay.conf" <<CONF

[peer "relay-$q"]
address = 127.0.0.1:${port[$q]}
key = ${key[$q]}
operator = "Operator $q"
CONF
  done
  chmod 0600 "$state/$r/relay.conf"
  "$relay_bin" migrate -c "$state/$r/relay.conf" >/dev/null
done

code=$("$relay_bin" user add alice -c "$state/a/relay.conf" | sed -n 's/^enrolment code: //p')
[[ -n $code ]] || { say "no enrolment code"; exit 1; }

for r in "${relays[@]}"; do
  "$relay_bin" run -c "$state/$r/relay.conf" >"$state/$r/log" 2>&1 &
  pids+=($!)
  eval "pid_$r=$!"
done
for r in "${relays[@]}"; do
  pv=pid_$r
  wait_port "${port[$r]}" "${!pv}" "$state/$r/log"
done

# relay-a's PostgreSQL backend(s), for CPU per answer
cpu_args=(--cpu-pid "relay-a:$pid_a")
for _ in $(seq 1 50); do
  bpid=$(psql -X -A -t "${admin/dbname=postgres/dbname=lookup_a}" -c \
    "SELECT pid FROM pg_stat_activity WHERE datname = 'lookup_a' AND pid <> pg_backend_pid() AND backend_type = 'client backend' LIMIT 1")
  [[ -n $bpid ]] && break
  sleep 0.1
done
[[ -n ${bpid:-} ]] && cpu_args+=(--cpu-pid "postgres-a:$bpid")

# --- the run --------------------------------------------------------------------------
perf_pid=""
if [[ ${LOOKUP_PERF:-0} == 1 ]]; then
  # Crypto rates (~2 s) and registration come first; record the load phase.
  ( sleep 3; exec perf record -g -p "$pid_a" -o "$state/perf.data" -- sleep "$DURATION" ) \
    >/dev/null 2>&1 &
  perf_pid=$!
fi
say "running synod-bench-lookup against relay-a (relay-b, relay-c for the quorum)"
status=0
"$bench_bin" -c "$CONNS" -w "$WINDOW" -t "$THREADS" --warmup "$WARMUP" \
  --duration "$DURATION" --from "$FROM" --quorum "$QUORUM" --handshakes "$HANDSHAKES" \
  ${LOOKUP_VERBOSE:+-v} "${cpu_args[@]}" --user "alice:$code" \
  --relay "relay-a:${port[a]}:${key[a]}:Operator a" \
  --relay "relay-b:${port[b]}:${key[b]}:Operator b" \
  --relay "relay-c:${port[c]}:${key[c]}:Operator c" | tee "$state/result" || status=$?
echo "postgres: $(psql -X -A -t "$admin" -c "SELECT 'fsync=' || current_setting('fsync') || ' synchronous_commit=' || current_setting('synchronous_commit')") cores=$(nproc)"
if [[ -n $perf_pid ]]; then
  wait "$perf_pid" || true
  perf report -i "$state/perf.data" --no-children --sort dso,symbol 2>/dev/null |
    grep -v '^$' | head -n 80 >"$build/lookup-perf.txt" || true
  say "perf report head in $build/lookup-perf.txt"
fi
if [[ ${LOOKUP_PGSS:-0} == 1 ]]; then
  psql -X -P pager=off "${admin/dbname=postgres/dbname=lookup_a}" -c "
    SELECT calls, round(total_exec_time) AS ms, round(total_plan_time) AS plan_ms,
           rows, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    ORDER BY total_exec_time DESC LIMIT 8" | tee "$build/lookup-pgss.txt"
fi
cp "$state/result" "$build/lookup-result.txt"
grep -h -E "level=(error|warn)" "$state"/{a,b,c}/log | head -n 5 >&2 || true
exit "$status"
