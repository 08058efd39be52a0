#!/usr/bin/env bash
# A throw-away PostgreSQL 15 server for tests and the quick start.
#   deploy/private-pg.sh start DIR   initdb in DIR/data, listen on a free
#                                    loopback port, print its conninfo
#   deploy/private-pg.sh stop DIR    stop it (fast shutdown)
#   deploy/private-pg.sh restart DIR restart on the same port
# PostgreSQL refuses to run as root, so as root the server runs as the
# 'postgres' system user (created by the Debian package) and DIR is given
# to it. Durability settings are the defaults (fsync, synchronous_commit on).
set -euo pipefail

cmd=${1:?usage: private-pg.sh start|stop|restart DIR}
dir=${2:?usage: private-pg.sh start|stop|restart DIR}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x "$bindir/pg_ctl" ]] || { echo "private-pg: PostgreSQL server binaries not found" >&2; exit 1; }

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [[ $(id -u) -eq 0 ]] && chown postgres: "$dir" && chmod 0700 "$dir"
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    as_owner "$bindir/initdb" -D "$dir/data" -U synod --auth=trust \
      --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 30000))
    port_free "$port" || continue
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
         -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=200" \
         start >/dev/null 2>&1; then
      echo "$port" >"$dir/port"
      echo "host=127.0.0.1 port=$port user=synod dbname=postgres"
      exit 0
    fi
    grep -q 'already in use' "$dir/server.log" 2>/dev/null || break
  done
  echo "private-pg: could not start PostgreSQL; log follows" >&2
  cat "$dir/server.log" >&2 || true
  exit 1
  ;;
stop)
  [[ -f "$dir/data/postmaster.pid" ]] || exit 0
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
  ;;
restart)
  port=$(cat "$dir/port")
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -m fast \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=200" \
    restart >/dev/null
  ;;
*)
  echo "usage: private-pg.sh start|stop|restart DIR" >&2
  exit 2
  ;;
esac
