# Shared by regress.sh, run-long.sh and gen-seeds.sh (sourced, not run).
# Configures build-fuzz/ with clang once (SYNOD_FUZZ=ON, no test suites)
# and builds it incrementally after.
fuzz_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fuzz_dir=$fuzz_top/tests/fuzz
fuzz_build=${SYNOD_FUZZ_BUILD_DIR:-$fuzz_top/build-fuzz}
fuzz_targets=(frame proto announce quorum statement config profile session)

fuzz_configure_and_build() {
  mkdir -p "$fuzz_build"
  if [[ ! -f $fuzz_build/CMakeCache.txt ]]; then
    CC=clang cmake -S "$fuzz_top" -B "$fuzz_build" -DCMAKE_BUILD_TYPE=Debug \
      -DSYNOD_WERROR=ON -DSYNOD_FUZZ=ON -DBUILD_TESTING=OFF \
      >"$fuzz_build/configure.log" 2>&1 ||
      { cat "$fuzz_build/configure.log" >&2; return 1; }
  fi
  cmake --build "$fuzz_build" -j"${SYNOD_FUZZ_JOBS:-$(nproc)}" \
    >"$fuzz_build/build.log" 2>&1 ||
    { tail -n 50 "$fuzz_build/build.log" >&2; return 1; }
}

# The libFuzzer options every run shares: a 10 s per-input timeout, 2 GiB
# of memory, leaks reported (ASan's LeakSanitizer), and the target's
# dictionary when it has one.
fuzz_options() {
  local t=$1
  echo -timeout=10 -rss_limit_mb=2048 -detect_leaks=1
  [[ -f $fuzz_dir/dict/$t.dict ]] && echo "-dict=$fuzz_dir/dict/$t.dict"
  return 0
}
