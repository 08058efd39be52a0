#!/usr/bin/env bash
# The synod quick start: from a fresh Debian 12 machine to a verified
# cross-relay message, on loopback.
#
#   deploy/quickstart.sh        install what is missing, build (Release, into
#                               build-quickstart/), start a private PostgreSQL
#                               and three relays of three operators (relay-a,
#                               relay-b, relay-c, all peering, free ports),
#                               enrol alice on relay-a and bob on relay-b,
#                               register both, show alice's quorum lookup of
#                               bob, send alice -> bob, show bob receiving
#                               and verifying it. Leaves the federation
#                               running and prints how to use it by hand.
#   deploy/quickstart.sh stop   stop the relays and PostgreSQL (pid files).
#
# State lives under $SYNOD_QUICKSTART_DIR (default /tmp/synod-quickstart),
# replaced on every start. $SYNOD_QUICKSTART_BUILD names an existing build
# directory to use instead of building (e.g. for development).
# Exit status: 0 only when the whole story worked.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
dir=${SYNOD_QUICKSTART_DIR:-/tmp/synod-quickstart}
names=(relay-a relay-b relay-c)
ops=("Org A" "Org B" "Org C")

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "quickstart: $*" >&2; exit 1; }

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_all() {
  local n pf pid
  for n in "${names[@]}"; do
    pf=$dir/$n/relay.pid
    if alive "$pf"; then
      pid=$(cat "$pf")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
      echo "stopped $n (pid $pid)"
    fi
    rm -f "$pf"
  done
  if [[ -f $dir/pg/data/postmaster.pid ]]; then
    "$src/deploy/private-pg.sh" stop "$dir/pg" && echo "stopped PostgreSQL"
  fi
}

if [[ ${1:-} == stop ]]; then
  stop_all
  exit 0
elif [[ $# -gt 0 ]]; then
  echo "usage: deploy/quickstart.sh [stop]" >&2
  exit 2
fi

for n in "${names[@]}"; do
  alive "$dir/$n/relay.pid" && die "a quick start is already running in $dir; run 'deploy/quickstart.sh stop' first"
done
[[ -f $dir/pg/data/postmaster.pid ]] && die "PostgreSQL of an earlier quick start runs in $dir/pg; run 'deploy/quickstart.sh stop' first"

# Whatever fails from here on leaves nothing running.
trap 'rc=$?; if [[ $rc -ne 0 ]]; then echo "quickstart: FAILED (logs in $dir); stopping what was started" >&2; stop_all >&2 || true; fi' EXIT

say "state directory: $dir"
rm -rf "$dir"
mkdir -p "$dir"
chmod 0755 "$dir"

if [[ -n ${SYNOD_QUICKSTART_BUILD:-} ]]; then
  build=$SYNOD_QUICKSTART_BUILD
else
  say "installing missing packages (deploy/install-deps.sh)"
  "$src/deploy/install-deps.sh"
  say "building (Release, build-quickstart/)"
  build=$src/build-quickstart
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >"$dir/build.log" 2>&1 ||
    { cat "$dir/build.log" >&2; die "cmake failed"; }
  cmake --build "$build" -j"$(nproc)" >>"$dir/build.log" 2>&1 ||
    { tail -n 40 "$dir/build.log" >&2; die "the build failed (see $dir/build.log)"; }
fi
R=$build/relay/synod-relay
S=$build/client/synod
[[ -x $R && -x $S ]] || die "no synod-relay or synod in $build"

say "a private PostgreSQL (deploy/private-pg.sh)"
ci=$("$src/deploy/private-pg.sh" start "$dir/pg")
pg="host=127.0.0.1 port=$(cat "$dir/pg/port")"
echo "$ci"
for n in "${names[@]}"; do
  db=synod_${n#relay-}
  psql "$pg user=synod dbname=postgres" -qc "CREATE ROLE $db LOGIN" -c "CREATE DATABASE $db OWNER $db" >/dev/null
done

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=()
while [[ ${#ports[@]} -lt 3 ]]; do
  p=$((20000 + RANDOM % 30000))
  port_free "$p" && [[ " ${ports[*]} " != *" $p "* ]] && ports+=("$p")
done

say "three relays of three operators, all peering"
for i in 0 1 2; do
  n=${names[$i]}
  mkdir -p "$dir/$n"
  cat >"$dir/$n/relay.conf" <<EOF
[relay]
name = $n
operator = "${ops[$i]}"
listen = 127.0.0.1:${ports[$i]}
key_file = relay.key

[database]
conninfo = $pg dbname=synod_${n#relay-} user=synod_${n#relay-}
EOF
  chmod 0600 "$dir/$n/relay.conf"
  (umask 077; "$R" keygen -c "$dir/$n/relay.conf" >"$dir/$n/peer-block" 2>/dev/null)
done
for i in 0 1 2; do
  for j in 0 1 2; do
    [[ $i -eq $j ]] || { echo; cat "$dir/${names[$j]}/peer-block"; } >>"$dir/${names[$i]}/relay.conf"
  done
  "$R" migrate -c "$dir/${names[$i]}/relay.conf" >/dev/null
done
for i in 0 1 2; do
  n=${names[$i]}
  setsid "$R" run -c "$dir/$n/relay.conf" >"$dir/$n/log" 2>&1 </dev/null &
  echo $! >"$dir/$n/relay.pid"
done
for i in 0 1 2; do
  for _ in $(seq 1 100); do
    port_free "${ports[$i]}" || break
    alive "$dir/${names[$i]}/relay.pid" || { cat "$dir/${names[$i]}/log" >&2; die "${names[$i]} exited"; }
    sleep 0.1
  done
  port_free "${ports[$i]}" && die "${names[$i]} does not listen on ${ports[$i]}"
  echo "${names[$i]} (${ops[$i]}) on 127.0.0.1:${ports[$i]}, pid $(cat "$dir/${names[$i]}/relay.pid")"
done

say "accounts: alice on relay-a, bob on relay-b"
code_a=$("$R" user add alice -c "$dir/relay-a/relay.conf" | sed -n 's/^enrolment code: //p')
code_b=$("$R" user add bob -c "$dir/relay-b/relay.conf" | sed -n 's/^enrolment code: //p')
[[ -n $code_a && -n $code_b ]] || die "no enrolment code"

relay_args=()
for i in 0 1 2; do
  key=$("$R" pubkey -k "$dir/${names[$i]}/relay.key")
  relay_args+=(--relay "${names[$i]}=127.0.0.1:${ports[$i]},$key,${ops[$i]}")
done

# run USER ARGS...: synod as USER, echoed.
run() {
  local who=$1; shift
  echo "\$ synod $*    # as $who" >&2
  SYNOD_HOME=$dir/$who SYNOD_PASSPHRASE_FILE=$dir/$who.pass "$S" "$@"
}
for who in alice bob; do
  (umask 077; head -c 24 /dev/urandom | base64 >"$dir/$who.pass")
done

say "synod init: new keys on each device, enrolled with the operator's code"
run alice init --user alice@relay-a --code "$code_a" --device laptop "${relay_args[@]}"
run bob init --user bob@relay-b --code "$code_b" --device phone "${relay_args[@]}"

say "synod register: publish each key to every relay"
run alice register
run bob register

say "alice looks bob up: a key is accepted only if 2 operators agree"
run alice lookup bob@relay-b

say "alice sends bob an end-to-end encrypted message"
run alice send bob@relay-b "Hello bob, this is alice on relay-a."

say "bob receives and verifies it"
echo "\$ synod recv    # as bob" >&2
got=
for _ in $(seq 1 20); do
  # the message travels relay-a -> relay-b on its own: poll until it is there
  out=$(SYNOD_HOME=$dir/bob SYNOD_PASSPHRASE_FILE=$dir/bob.pass "$S" recv 2>&1) ||
    { echo "$out" >&2; die "synod recv failed"; }
  if [[ $out != "0 messages received" ]]; then
    echo "$out"
    got=$out
    break
  fi
  sleep 0.5
done
[[ $got == *"Hello bob, this is alice on relay-a."* && $got == *"(verified)"* ]] ||
  die "bob did not receive the message"

say "it worked. The federation keeps running."
cat <<EOF
Talk to it by hand, as alice (or bob: replace alice by bob):

  export SYNOD_HOME=$dir/alice SYNOD_PASSPHRASE_FILE=$dir/alice.pass
  $S lookup bob@relay-b
  $S send bob@relay-b 'another message'
  SYNOD_HOME=$dir/bob SYNOD_PASSPHRASE_FILE=$dir/bob.pass $S recv

  $S --help           every command; 'synod COMMAND --help' for one

Relay logs: $dir/relay-{a,b,c}/log; configurations next to them.
Stop everything:   $src/deploy/quickstart.sh stop
EOF
