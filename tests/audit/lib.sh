# Shared by the audit scripts (sourced, not run): a private PostgreSQL and
# real synod-relay processes on loopback under a scratch directory, and a
# clean-up that stops exactly what was started.
#
# The caller sets: dir (scratch directory, exists), src (top of the
# checkout), R (the synod-relay binary). Functions die on failure.

audit_pids=()

die() { echo "${0##*/}: $*" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free loopback port not in the list given.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    port_free "$p" && [[ " $* " != *" $p "* ]] && { echo "$p"; return; }
  done
}

# Stops the relays started by start_relay, then PostgreSQL (if started).
audit_stop() {
  local pid
  for pid in "${audit_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  audit_pids=()
  if [[ -f $dir/pg/data/postmaster.pid ]]; then
    "$src/deploy/private-pg.sh" stop "$dir/pg" || true
  fi
}

# start_pg [POSTGRES -c OPTIONS...]: a private PostgreSQL in $dir/pg; sets pg
# to the conninfo prefix (host and port). With options, restarts the server
# with them added to its configuration (postgresql.auto.conf).
start_pg() {
  "$src/deploy/private-pg.sh" start "$dir/pg" >/dev/null || die "PostgreSQL did not start"
  pg="host=127.0.0.1 port=$(cat "$dir/pg/port")"
  local opt
  if [[ $# -gt 0 ]]; then
    for opt in "$@"; do
      psql "$pg user=synod dbname=postgres" -qc "ALTER SYSTEM SET $opt" >/dev/null
    done
    "$src/deploy/private-pg.sh" restart "$dir/pg" || die "PostgreSQL did not restart"
  fi
}

# make_relay NAME OPERATOR PORT [EXTRA [relay] LINES]: a database, role,
# configuration ($dir/NAME/relay.conf, without peers), key and schema.
make_relay() {
  local n=$1 op=$2 port=$3 extra=${4:-} db
  db=synod_${n//[^a-z0-9]/_}
  psql "$pg user=synod dbname=postgres" -qc "CREATE ROLE $db LOGIN" \
    -c "CREATE DATABASE $db OWNER $db" >/dev/null || die "cannot create database $db"
  mkdir -p "$dir/$n"
  cat >"$dir/$n/relay.conf" <<EOC
[relay]
name = $n
operator = "$op"
listen = 127.0.0.1:$port
key_file = relay.key
$extra

[database]
conninfo = $pg dbname=$db user=$db
EOC
  chmod 0600 "$dir/$n/relay.conf"
  (umask 077; "$R" keygen -c "$dir/$n/relay.conf" >"$dir/$n/peer-block" 2>"$dir/$n/keygen.log") ||
    die "keygen $n failed"
}

# start_relay NAME PORT: migrate, run in the background (log in
# $dir/NAME/log), wait until it listens.
start_relay() {
  local n=$1 port=$2 pid
  "$R" migrate -c "$dir/$n/relay.conf" >"$dir/$n/migrate.log" 2>&1 ||
    { cat "$dir/$n/migrate.log" >&2; die "migrate $n failed"; }
  "$R" run -c "$dir/$n/relay.conf" >"$dir/$n/log" 2>&1 </dev/null &
  pid=$!
  audit_pids+=("$pid")
  for _ in $(seq 1 200); do
    port_free "$port" || return 0
    kill -0 "$pid" 2>/dev/null || { cat "$dir/$n/log" >&2; die "$n exited"; }
    sleep 0.1
  done
  die "$n does not listen on $port"
}
