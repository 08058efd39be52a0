#!/usr/bin/env bash
# The whole test run, on a fresh Debian 12 machine:
#   1. installs missing packages (as root, or through sudo);
#   2. builds with AddressSanitizer + UndefinedBehaviorSanitizer and
#      warnings as errors, in build-test/ (SYNOD_BUILD_DIR overrides);
#   3. starts a private PostgreSQL on a free loopback port, exported to the
#      tests as SYNOD_TEST_PG;
#   4. runs every test through ctest;
#   5. runs the fuzz targets for a short bounded time each (tests/fuzz/);
#   6. runs the static checks: format, clang-tidy, cppcheck (tests/static/);
#   7. runs the unit suites under valgrind memcheck, built without
#      sanitizers in build-valgrind/ (tests/static/valgrind.sh);
#   8. stops PostgreSQL whatever happened, and exits non-zero on any failure.
# Extra arguments are passed to ctest (e.g. tests/run.sh -R unit.frame);
# with arguments, the fuzz, static and valgrind stages are skipped.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${SYNOD_BUILD_DIR:-$top/build-test}
start=$(date +%s)

"$top/deploy/install-deps.sh" --test

mkdir -p "$build"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSYNOD_WERROR=ON \
  -DSYNOD_SANITIZE=address,undefined >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)"

pgdir=$(mktemp -d /tmp/synod-test-pg.XXXXXX)
cleanup() {
  "$top/deploy/private-pg.sh" stop "$pgdir" || true
  rm -rf "$pgdir"
}
trap cleanup EXIT INT TERM
conninfo=$("$top/deploy/private-pg.sh" start "$pgdir")
psql "$conninfo" -qAt -c "CREATE DATABASE synod_test" >/dev/null
export SYNOD_TEST_PG="${conninfo/dbname=postgres/dbname=synod_test}"
export SYNOD_TEST_PG_ADMIN="$conninfo"
export SYNOD_TEST_PG_DIR="$pgdir"
export SYNOD_PG_CTL="$top/deploy/private-pg.sh"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
stage() {
  local name=$1 t0 rc=0
  shift
  t0=$(date +%s)
  "$@" || rc=$?
  echo "tests/run.sh: $name exit $rc in $(( $(date +%s) - t0 )) s"
  [[ $rc -eq 0 ]] || status=1
}
stage ctest bash -c 'cd "$1" && shift && ctest --output-on-failure --timeout 900 "$@"' \
  ctest "$build" "$@"
if [[ $# -eq 0 ]]; then
  [[ -x "$top/tests/fuzz/regress.sh" ]] && stage fuzz "$top/tests/fuzz/regress.sh"
  [[ -x "$top/tests/static/check.sh" ]] && stage static "$top/tests/static/check.sh" "$build"
  [[ -x "$top/tests/static/valgrind.sh" ]] && stage valgrind "$top/tests/static/valgrind.sh"
fi
echo "tests/run.sh: exit $status after $(( $(date +%s) - start )) s"
exit "$status"
