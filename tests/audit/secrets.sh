#!/usr/bin/env bash
# audit.secrets: the quick-start story at the most verbose logging, then a
# search for every secret in everything it left behind.
#
#   tests/audit/secrets.sh SYNOD-RELAY SYNOD SECRETSCAN
#
# The story (as deploy/quickstart.sh tells it, in a scratch directory): a
# private PostgreSQL logging every statement with its parameters
# (log_statement = all), three relays of three operators peering on
# loopback at log_level = trace, alice enrolled on relay-a and bob on
# relay-b with their one-time codes, both registered, a lookup, a message
# alice -> bob sent and received, a second message purged by bob before he
# reads it, bob's device key rotated, alice re-enrolled by her operator
# (`user reenroll`) and her keys reset with the new code, a third message
# received under the new keys, monitor, trust list and keys devices; and
# two refusals: carol (on relay-c) enrolling with a wrong code, alice
# opening her profile with a wrong passphrase. Every relay log, every
# command's standard output and error (with --json where a command has it;
# the client has no verbose switch) and the PostgreSQL server log are kept;
# after the relays stop, each database is dumped (pg_dump) and PostgreSQL
# is stopped so that its data files and WAL are on disk.
#
# The secrets: each relay's Ed25519 seed, each user's identity seed, X25519
# device key and profile MAC key (read from the profiles with the client
# library and the passphrase), before and after the new keys, the
# passphrases and the wrong one, the four enrolment codes and the wrong one
# (several spellings) and the three plaintexts. secretscan looks for each
# raw, as hex in both cases and as base64 / base64url at every alignment.
#
# First the scanner must find secrets planted in scratch files by other
# tools (coreutils), in every form, and pass a clean file: otherwise the
# audit could not fail. Then none may appear in: the relay logs and the
# relays' other files (their key files excepted), the PostgreSQL server
# log, dumps and whole data directory (heap files and WAL), the profile
# directories (sealed at rest), and the operator commands' output (except
# that of `user add` and `user reenroll`, which print the code by design).
# In the client commands' output, no key, passphrase or code may appear;
# the plaintexts may, in `synod recv` (it is what bob asked to read), and
# the test checks that bob read the first and the third.
#
# Scratch state in a temporary directory, removed at the end unless
# SYNOD_KEEP_STATE=1. Exit status 0 only when nothing leaked.
set -euo pipefail

[[ $# -eq 3 ]] || { echo "usage: tests/audit/secrets.sh SYNOD-RELAY SYNOD SECRETSCAN" >&2; exit 2; }
R=$(realpath "$1")
S=$(realpath "$2")
SCAN=$(realpath "$3")
src=$(cd "$(dirname "$0")/../.." && pwd)
source "$src/tests/audit/lib.sh"

names=(relay-a relay-b relay-c)
ops=("Org A" "Org B" "Org C")
plain1="synod-audit plaintext one: the heron leaves Vesterbro at 03:47 (7f3c9e)"
plain2="synod-audit plaintext two, to be purged unread: kingfisher 5d81a0"
plain3="synod-audit plaintext three, after new keys: wagtail 0be4f2"

dir=$(mktemp -d /tmp/synod-audit-secrets.XXXXXX)
chmod 0755 "$dir" # the PostgreSQL server runs as another user under root
mkdir -p "$dir/cli" "$dir/admin" "$dir/codes" "$dir/dump" "$dir/pass" "$dir/plant"
failed=1
finish() {
  audit_stop
  if [[ $failed -ne 0 ]]; then
    echo "audit.secrets: FAILED; relay logs follow" >&2
    for n in "${names[@]}"; do
      echo "--- $n" >&2
      tail -n 40 "$dir/$n/log" >&2 2>/dev/null || true
    done
  fi
  if [[ ${SYNOD_KEEP_STATE:-0} == 1 ]]; then
    echo "audit.secrets: state kept in $dir" >&2
  else
    rm -rf "$dir"
  fi
}
trap finish EXIT

# --- the story ----------------------------------------------------------
start_pg "log_statement = 'all'" "log_parameter_max_length = -1"
ports=()
for i in 0 1 2; do
  ports+=("$(free_port "${ports[@]}")")
  make_relay "${names[$i]}" "${ops[$i]}" "${ports[$i]}" "log_level = trace"
done
for i in 0 1 2; do
  for j in 0 1 2; do
    [[ $i -eq $j ]] || { echo; cat "$dir/${names[$j]}/peer-block"; } >>"$dir/${names[$i]}/relay.conf"
  done
done
for i in 0 1 2; do start_relay "${names[$i]}" "${ports[$i]}"; done

code_a=$("$R" user add alice -c "$dir/relay-a/relay.conf" | tee "$dir/codes/alice" |
  sed -n 's/^enrolment code: //p')
code_b=$("$R" user add bob -c "$dir/relay-b/relay.conf" | tee "$dir/codes/bob" |
  sed -n 's/^enrolment code: //p')
[[ -n $code_a && -n $code_b ]] || die "no enrolment code"

relay_args=()
for i in 0 1 2; do
  key=$("$R" pubkey -k "$dir/${names[$i]}/relay.key")
  relay_args+=(--relay "${names[$i]}=127.0.0.1:${ports[$i]},$key,${ops[$i]}")
done
printf '%s\n' "audit passphrase of alice, 9c4e1b07d2" >"$dir/pass/alice"
printf '%s\n' "audit passphrase of bob, 61fa3d8e50" >"$dir/pass/bob"
chmod 0600 "$dir/pass/alice" "$dir/pass/bob"

step=0
# cli WHO ARGS...: synod as WHO; output in $dir/cli/NN-WHO-COMMAND.{out,err}.
# The passphrase is $dir/pass/WHO, or $passfile when set.
cli() {
  local who=$1 f
  shift
  step=$((step + 1))
  f=$dir/cli/$(printf %02d $step)-$who-$1
  SYNOD_HOME=$dir/$who SYNOD_PASSPHRASE_FILE=${passfile:-$dir/pass/$who} "$S" "$@" >"$f.out" 2>"$f.err" ||
    { cat "$f.out" "$f.err" >&2; die "synod $* (as $who) failed"; }
  last=$f.out
}
# cli_refused WHO ARGS...: as cli, but the command must fail.
cli_refused() {
  local who=$1 f
  shift
  step=$((step + 1))
  f=$dir/cli/$(printf %02d $step)-$who-$1
  if SYNOD_HOME=$dir/$who SYNOD_PASSPHRASE_FILE=${passfile:-$dir/pass/$who} "$S" "$@" >"$f.out" 2>"$f.err"; then
    cat "$f.out" "$f.err" >&2
    die "synod $* (as $who) succeeded; it should have been refused"
  fi
  last=$f.err
}
# admin NAME ARGS...: synod-relay ARGS -c NAME's configuration.
admin() {
  local n=$1
  shift
  step=$((step + 1))
  "$R" "$@" -c "$dir/$n/relay.conf" >"$dir/admin/$(printf %02d $step)-$n-$1.out" 2>&1 ||
    die "synod-relay $* ($n) failed"
  last=$dir/admin/$(printf %02d $step)-$n-$1.out
}

cli alice init --user alice@relay-a --code "$code_a" --device laptop "${relay_args[@]}"
cli bob init --user bob@relay-b --code "$code_b" --device phone "${relay_args[@]}"
cli alice register
cli bob register
# Refusals are where a program is tempted to echo what it was given: carol
# presents a wrong code, alice a wrong passphrase.
code_c=$("$R" user add carol -c "$dir/relay-c/relay.conf" | tee "$dir/codes/carol" |
  sed -n 's/^enrolment code: //p')
[[ -n $code_c ]] || die "no enrolment code for carol"
[[ ${code_c: -1} == A ]] && code_w=${code_c%?}B || code_w=${code_c%?}A
printf '%s\n' "audit passphrase of carol, 3e07a9c1f4" >"$dir/pass/carol"
chmod 0600 "$dir/pass/carol"
cli_refused carol init --user carol@relay-c --code "$code_w" "${relay_args[@]}"
printf '%s\n' "a wrong passphrase for alice, 8d2b66e0a3" >"$dir/pass/wrong"
chmod 0600 "$dir/pass/wrong"
passfile=$dir/pass/wrong cli_refused alice recv
cli alice lookup bob@relay-b
cli alice lookup --json bob@relay-b
cli bob lookup alice@relay-a
cli alice send bob@relay-b "$plain1"
got=
for _ in $(seq 1 60); do
  cli bob recv --json
  if grep -qF "$plain1" "$last"; then got=$last; break; fi
  sleep 0.5
done
[[ -n $got ]] || die "bob did not receive the first message"
echo "audit.secrets: bob received and verified the first message"

cli alice send bob@relay-b "$plain2"
for _ in $(seq 1 60); do
  admin relay-b status
  grep -q '^inbox: 1 messages' "$last" && break
  sleep 0.5
done
grep -q '^inbox: 1 messages' "$last" || die "the second message did not reach relay-b"
cli bob purge --all --json
grep -q '"deleted":1}' "$last" || { cat "$last"; die "bob's purge did not delete the second message"; }
cli bob recv --json
grep -qF "$plain2" "$last" && die "the purged message was delivered"
echo "audit.secrets: bob purged the second message unread"

# New keys: bob rotates his device key; alice loses her device, her operator
# re-enrols her and she resets her keys. The keys they replace are secrets
# too: read them out first (the replaced ones are gone from the profiles).
"$SCAN" --profile alice.old "$dir/alice" "$dir/pass/alice" \
  --profile bob.old "$dir/bob" "$dir/pass/bob" --dump >"$dir/keys-old.hex"
cli bob keys rotate
code_r=$("$R" user reenroll alice -c "$dir/relay-a/relay.conf" 2>"$dir/codes/alice-reenroll.err" |
  tee "$dir/codes/alice-reenroll" | sed -n 's/^enrolment code: //p')
[[ -n $code_r ]] || { cat "$dir/codes/alice-reenroll"*; die "no re-enrolment code"; }
cli alice keys reset --code "$code_r"
cli bob lookup alice@relay-a
cli alice send bob@relay-b "$plain3"
got=
for _ in $(seq 1 60); do
  cli bob recv
  if grep -qF "$plain3" "$last"; then got=$last; break; fi
  sleep 0.5
done
[[ -n $got ]] || die "bob did not receive the message sent after the rotation and the reset"
echo "audit.secrets: after bob's key rotation and alice's key reset, bob received the third message"
cli alice monitor --once --json
cli bob monitor --once
cli alice trust list
cli alice keys devices --json
alice_keys=$last
cli bob keys devices
for n in "${names[@]}"; do
  admin "$n" status
  admin "$n" user list --json
done

# Stop everything; then the databases as pg_dump sees them, and PostgreSQL
# stopped so that its files are complete on disk.
pids=("${audit_pids[@]}")
for pid in "${pids[@]}"; do kill -TERM "$pid"; done
for pid in "${pids[@]}"; do wait "$pid" || die "a relay exited with status $? on SIGTERM"; done
audit_pids=()
for n in "${names[@]}"; do
  db=synod_${n//-/_}
  pg_dump -d "$pg dbname=$db user=$db" -f "$dir/dump/$db.sql" || die "pg_dump $db failed"
done
pg_dumpall -d "$pg user=synod" --globals-only -f "$dir/dump/globals.sql" || die "pg_dumpall failed"
"$src/deploy/private-pg.sh" stop "$dir/pg"

# --- the secrets ----------------------------------------------------------
secrets=()
for n in "${names[@]}"; do secrets+=(--relay-key "$n.key" "$dir/$n/relay.key"); done
for who in alice bob carol; do
  secrets+=(--profile "$who" "$dir/$who" "$dir/pass/$who")
done
for who in alice bob carol wrong; do
  secrets+=(--text "$who.passphrase" "$(head -n 1 "$dir/pass/$who")")
done
while read -r label hex; do secrets+=(--hex "$label" "$hex"); done <"$dir/keys-old.hex"
codes=()
for who in alice bob alice-reenroll carol carol-wrong; do
  case $who in
  alice) c=$code_a ;; bob) c=$code_b ;; carol) c=$code_c ;;
  carol-wrong) c=$code_w ;; *) c=$code_r ;;
  esac
  codes+=(--text "$who.code" "$c" --text "$who.code-nodash" "${c//-/}")
  codes+=(--text "$who.code-lower" "${c,,}" --text "$who.code-lower-nodash" "$(tr -d - <<<"${c,,}")")
done
plains=(--text plaintext1 "$plain1" --text plaintext2 "$plain2" --text plaintext3 "$plain3")

# --- the scanner can fail: planted secrets, written by other tools ---------
"$SCAN" "${secrets[@]}" "${codes[@]}" "${plains[@]}" --dump >"$dir/secrets.hex"
hexof() { awk -v l="$1" '$1 == l { print $2 }' "$dir/secrets.hex"; }
bytes() { printf "$(sed 's/../\\x&/g' <<<"$1")"; }
p=$dir/plant
{ head -c 100 /dev/urandom; bytes "$(hexof alice.identity)"; head -c 50 /dev/urandom; } >"$p/raw-identity"
echo "key=$(hexof relay-b.key | tr a-f A-F)" >"$p/hex-upper-relay-key"
echo "seed $(hexof bob.mac)" >"$p/hex-lower-mac"
{ printf x; bytes "$(hexof bob.device)"; printf abc; } | basenc --base64url >"$p/base64url-1-device"
{ printf xy; bytes "$(hexof alice.device)"; printf z; } | base64 -w 0 >"$p/base64-2-device"
printf '{"body":"%s"}' "$plain1" | base64 -w 0 >"$p/base64-plaintext"
echo "level=debug pass=\"$(head -n 1 "$dir/pass/bob")\"" >"$p/raw-passphrase"
echo "code=$(tr -d - <<<"${code_a,,}")" >"$p/raw-code"
printf '%s\n' "nothing to see: $(head -c 64 /dev/urandom | base64 -w 0)" >"$p/clean"
rc=0
"$SCAN" "${secrets[@]}" "${codes[@]}" "${plains[@]}" -- "$p" >"$dir/plant.out" || rc=$?
cat "$dir/plant.out"
[[ $rc -eq 1 ]] || die "the scanner did not report the planted secrets (exit $rc)"
for f in "$p"/*; do
  [[ $f == */clean ]] && continue
  grep -q " in $f at " "$dir/plant.out" || die "the scanner missed ${f##*/}"
done
grep -q "/clean at " "$dir/plant.out" && die "the scanner reported the clean file"
echo "audit.secrets: the scanner finds every planted form"

# --- the audit -------------------------------------------------------------
targets=("$dir/pg" "$dir/dump" "$dir/alice" "$dir/bob" "$dir/carol" "$dir/admin")
for n in "${names[@]}"; do
  for f in "$dir/$n"/*; do
    [[ $f == */relay.key ]] || targets+=("$f")
  done
  [[ -s $dir/$n/log ]] || die "$n wrote no log"
done
grep -q 'level=trace' "$dir/relay-b/log" || die "relay-b logged nothing at trace level"
grep -q 'statement: ' "$dir/pg/server.log" || die "PostgreSQL logged no statement"
# ... and it reads what the relays stored: alice's public keys are in every
# relay's announcements, so in the data files and the dumps.
for pub in identity_key 'devices[0].key'; do
  hex=$(jq -r ".$pub" "$alice_keys")
  for where in "$dir/pg/data/base" "$dir/dump"; do
    rc=0
    "$SCAN" --hex "alice.$pub (public)" "$hex" -- "$where" >"$dir/control.out" || rc=$?
    [[ $rc -eq 1 ]] || { cat "$dir/control.out"; die "alice's public $pub not found in $where: the scan does not see the databases"; }
  done
done
echo "audit.secrets: the scanner finds alice's public keys in the data files and the dumps"

status=0
echo "audit.secrets: relay logs and files, PostgreSQL (log, dumps, data directory), profiles, operator output:"
"$SCAN" "${secrets[@]}" "${codes[@]}" "${plains[@]}" -- "${targets[@]}" || status=1
echo "audit.secrets: client command output (plaintexts allowed):"
"$SCAN" "${secrets[@]}" "${codes[@]}" -- "$dir/cli" || status=1
[[ $status -eq 0 ]] || die "secrets leaked (FOUND lines above)"
echo "audit.secrets: passed: no private key, passphrase, enrolment code or plaintext found"
failed=0
