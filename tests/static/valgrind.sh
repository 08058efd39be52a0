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

# Suites too slow under valgrind for a CI run, by name, with the reason.
declare -A skip=(
  [unit.keyfile]="scrypt at the vectors' costs (N up to 2^20) takes minutes under memcheck; ASan/LSan still runs it in ctest"
)

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

# One suite: its output and valgrind's report go to files, shown on failure.
run_one() {
  local suite=$1 exe t0 rc=0
  exe=$(find "$build/tests" -type f -name "test_${suite#unit.}" -perm -u+x | head -1)
  t0=$(date +%s)
  valgrind --tool=memcheck --leak-check=full \
    --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
    --num-callers=30 --log-file="$logs/$suite.valgrind" \
    "$exe" >"$logs/$suite.out" 2>&1 || rc=$?
  local took=$(($(date +%s) - t0))
  if [[ $rc -eq 0 ]]; then
    echo "tests/static/valgrind.sh: $suite clean in $took s"
    return 0
  fi
  if [[ $rc -eq 99 ]]; then
    echo "tests/static/valgrind.sh: $suite: memcheck errors or leaks ($took s)"
  else
    echo "tests/static/valgrind.sh: $suite: exit $rc ($took s)"
  fi
  cat "$logs/$suite.out" "$logs/$suite.valgrind"
  return 1
}
export -f run_one
export build logs

t0=$(date +%s)
status=0
printf '%s\n' "${suites[@]}" | xargs -P"$jobs" -I{} bash -c 'run_one "$1"' _ {} ||
  status=1
echo "tests/static/valgrind.sh: exit $status after $(($(date +%s) - t0)) s"
exit "$status"
