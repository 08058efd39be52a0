#!/usr/bin/env bash
# The fuzz regression stage of tests/run.sh: builds build-fuzz/ with clang
# (configured once, incremental after), then runs every target for a
# bounded time (SYNOD_FUZZ_SECONDS, default 20) over its seed corpus
# (corpus/TARGET) and its regression inputs (regress/TARGET). New inputs go
# to a scratch directory, never into the tree. Exits non-zero on any
# crash, sanitizer report, leak or timeout, naming the target; its output
# is in the scratch directory printed at the end.
set -euo pipefail
. "$(dirname "$0")/common.sh"

seconds=${SYNOD_FUZZ_SECONDS:-20}
command -v clang >/dev/null || { echo "regress.sh: clang is missing" >&2; exit 1; }
fuzz_configure_and_build

# The protobuf target must list every top-level message of the .proto.
want=$(grep -c '^message ' "$fuzz_top/proto/synod.proto")
have=$(grep -c '^    M(' "$fuzz_dir/fuzz_proto.c")
if [[ $want -ne $have ]]; then
  echo "regress.sh: fuzz_proto.c lists $have messages, synod.proto has $want" >&2
  exit 1
fi

scratch=$(mktemp -d /tmp/synod-fuzz-regress.XXXXXX)
failed=()
for t in "${fuzz_targets[@]}"; do
  mkdir -p "$scratch/$t"
  dirs=("$scratch/$t" "$fuzz_dir/corpus/$t")
  [[ -d $fuzz_dir/regress/$t ]] && dirs+=("$fuzz_dir/regress/$t")
  # shellcheck disable=SC2046
  if "$fuzz_build/tests/fuzz/fuzz_$t" $(fuzz_options "$t") \
      -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$scratch/$t-" "${dirs[@]}" >"$scratch/$t.log" 2>&1; then
    line=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$scratch/$t.log" | tail -n 1)
    echo "fuzz_$t: ok: ${line:-no progress line}"
  else
    echo "fuzz_$t: FAILED, see $scratch/$t.log" >&2
    grep -E 'ERROR|SUMMARY|fuzz_[a-z]+: ' "$scratch/$t.log" | head -n 5 >&2 || true
    failed+=("$t")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "regress.sh: failed: ${failed[*]} (logs and crashing inputs in $scratch)" >&2
  exit 1
fi
rm -rf "$scratch"
