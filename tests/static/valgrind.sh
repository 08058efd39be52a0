#!/usr/bin/env bash
# Valgrind memcheck over the unit-test executables (tests/unit), built
# without sanitizers (valgrind and ASan do not mix) in a build directory of
# their own. A suite fails on any memcheck error or any definitely or
# indirectly lost block, as well as on a failed test.
# Usage: tests/static/valgrind.sh [BUILD_DIR] [SUITE ...]
#   BUILD_DIR  defaults to build-valgrind/ at the top of the tree;
#   SUITE      e.g. unit.frame: only those (default: every unit suite but
#              the skipped ones below).
# SYNOD_VALGRIND_JOBS (default 2) suites run at once. unit.pg needs
# SYNOD_TEST_PG, as under tests/run.sh. Prints each suite's time.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-valgrind}
[[ $# -gt 0 ]] && shift
jobs=${SYNOD_VALGRIND_JOBS:-2}

# Suites too slow under valgrind for a CI run, by name, with the reason
# (none today: the slowest, unit.keyfile's scrypt vectors, takes about 30 s).
declare -A skip=()
# Single tests left out (SUITE:TEST), with the reason; the other tests of
# the suite then run one process each. None today.
skip_tests=${SYNOD_VALGRIND_SKIP_TESTS-}

mkdir -p "$build"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSYNOD_WERROR=ON \
  -DSYNOD_SANITIZE= >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }

suites=("$@")
if [[ ${#suites[@]} -eq 0 ]]; then
  for src in "$top"/tests/unit/test_*.c; do
    name=$(basename "$src" .c)
    suite=unit.${name#test_}
    if [[ -n ${skip[$suite]:-} ]]; then
      echo "tests/static/valgrind.sh: $suite skipped: ${skip[$suite]}"
      continue
    fi
    for t in $skip_tests; do
      [[ $t == "$suite:"* ]] && echo "tests/static/valgrind.sh: $t skipped (see the script)"
    done
    suites+=("$suite")
  done
fi
targets=()
for s in "${suites[@]}"; do targets+=("test_${s#unit.}"); done
cmake --build "$build" -j"$jobs" --target "${targets[@]}" >"$build/build.log" 2>&1 ||
  { cat "$build/build.log" >&2; exit 1; }

logs=$build/valgrind-logs
rm -rf "$logs"
mkdir -p "$logs"

# One suite (or, with tests left out, each of its other tests): output and
# valgrind's report go to files, shown on failure.
run_one() {
  local suite=$1 exe t0 rc=0 name=${1#unit.} runs=() out
  exe=$(find "$build/tests" -type f -name "test_$name" -perm -u+x | head -1)
  if [[ " $skip_tests " == *" $suite:"* ]]; then
    local t
    for t in $(sed -n 's/^ *{"\([a-z0-9_]*\)", *test_.*/\1/p' \
      "$top/tests/unit/test_$name.c"); do
      [[ " $skip_tests " == *" $suite:$t "* ]] || runs+=("$t")
    done
  else
    runs=("")
  fi
  t0=$(date +%s)
  for t in "${runs[@]}"; do
    out=$logs/$suite${t:+.$t}
    valgrind --tool=memcheck --leak-check=full \
      --show-leak-kinds=definite,indirect \
      --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
      --num-callers=30 --log-file="$out.valgrind" \
      "$exe" ${t:+"$t"} >"$out.out" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]]; then
      if [[ $rc -eq 99 ]]; then
        echo "tests/static/valgrind.sh: $suite${t:+ $t}: memcheck errors or leaks"
      else
        echo "tests/static/valgrind.sh: $suite${t:+ $t}: exit $rc"
      fi
      cat "$out.out" "$out.valgrind"
      return 1
    fi
  done
  echo "tests/static/valgrind.sh: $suite clean in $(($(date +%s) - t0)) s"
}
export -f run_one
export build logs top skip_tests
# Watchdogs in the suites (unit.conn's loop guard) allow for the slowdown.
export SYNOD_TEST_SLOWDOWN=${SYNOD_TEST_SLOWDOWN:-20}

t0=$(date +%s)
status=0
printf '%s\n' "${suites[@]}" | xargs -P"$jobs" -I{} bash -c 'run_one "$1"' _ {} ||
  status=1
echo "tests/static/valgrind.sh: exit $status after $(($(date +%s) - t0)) s"
exit "$status"
