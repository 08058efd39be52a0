#!/usr/bin/env bash
# Static checks, each of which must report nothing:
#   format     clang-format --dry-run -Werror over every tracked C file
#              (.clang-format);
#   clang-tidy over every translation unit of BUILD_DIR/compile_commands.json
#              but the generated protobuf-c code (.clang-tidy, tests/.clang-tidy);
#   cppcheck   over the same compile database (tests/static/cppcheck.supp).
# Usage: tests/static/check.sh BUILD_DIR [format|tidy|cppcheck ...]
# BUILD_DIR is any configured build (tests/run.sh passes build-test). With
# step names, only those steps run. SYNOD_STATIC_JOBS (default 2) sets the
# parallelism. Prints each tool's time; exits non-zero on any finding.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: tests/static/check.sh BUILD_DIR [format|tidy|cppcheck ...]}
shift
build=$(cd "$build" && pwd) || exit 2
db=$build/compile_commands.json
jobs=${SYNOD_STATIC_JOBS:-2}
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(format tidy cppcheck)
cd "$top" || exit 2

# Tools by their Debian 12 names; the format check needs version 14 exactly,
# as other versions lay some lines out differently.
clang_format=${CLANG_FORMAT:-clang-format-14}
clang_tidy=${CLANG_TIDY:-clang-tidy-14}

# The C files under version control (all of them when this is no checkout).
c_files() {
  if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$top" ls-files -z -- '*.c' '*.h'
  else
    find lib relay client include tests -name '*.[ch]' -print0
  fi
}

# Every translation unit of the compile database, generated code left out.
units() {
  sed -n 's/^ *"file": "\(.*\)",\{0,1\}$/\1/p' "$db" | grep -v '\.pb-c\.c$'
}

run_format() {
  c_files | xargs -0 -r "$clang_format" --dry-run -Werror
}

run_tidy() {
  [[ -f $db ]] || { echo "check.sh: no $db" >&2; return 2; }
  local out rc=0
  out=$(mktemp)
  units | xargs -r -P"$jobs" -n1 "$clang_tidy" -p "$build" --quiet \
    >"$out" 2>&1 || rc=$?
  # clang-tidy's chatter ("N warnings generated") goes; findings stay.
  grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' "$out"
  rm -f "$out"
  return "$rc"
}

run_cppcheck() {
  [[ -f $db ]] || { echo "check.sh: no $db" >&2; return 2; }
  local cache
  cache=$(mktemp -d)
  cppcheck --project="$db" -i"$build/proto" \
    --enable=warning,style,performance,portability --std=c11 \
    --library=posix --inline-suppr \
    --suppressions-list="$top/tests/static/cppcheck.supp" \
    --error-exitcode=1 --quiet -j"$jobs" --cppcheck-build-dir="$cache" \
    --template='{file}:{line}:{column}: {severity}: {message} [{id}]'
  local rc=$?
  rm -rf "$cache"
  return "$rc"
}

status=0
for step in "${steps[@]}"; do
  case $step in
  format | tidy | cppcheck) ;;
  *)
    echo "check.sh: unknown step $step (format, tidy, cppcheck)" >&2
    exit 2
    ;;
  esac
  t0=$(date +%s)
  rc=0
  "run_$step" || rc=$?
  echo "tests/static/check.sh: $step exit $rc in $(($(date +%s) - t0)) s"
  [[ $rc -eq 0 ]] || status=1
done
exit "$status"
