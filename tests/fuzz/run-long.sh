#!/usr/bin/env bash
# Runs one fuzz target for longer:
#   tests/fuzz/run-long.sh TARGET SECONDS
# into a scratch corpus outside the tree (SYNOD_FUZZ_SCRATCH, default
# /tmp/synod-fuzz-TARGET, kept between runs so a second run goes on from
# the first), seeded from corpus/TARGET and regress/TARGET. Crashing inputs
# land in that directory as crash-* / leak-* / timeout-*. Prints the total
# executions, executions per second, final coverage (cov, ft) and corpus
# size at the end.
set -euo pipefail
. "$(dirname "$0")/common.sh"

if [[ $# -ne 2 || ! $2 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 TARGET SECONDS (TARGET: ${fuzz_targets[*]})" >&2
  exit 2
fi
t=$1
seconds=$2
[[ " ${fuzz_targets[*]} " == *" $t "* ]] || { echo "$0: no target $t" >&2; exit 2; }
fuzz_configure_and_build

scratch=${SYNOD_FUZZ_SCRATCH:-/tmp/synod-fuzz-$t}
mkdir -p "$scratch/corpus"
log=$scratch/run.log
dirs=("$scratch/corpus" "$fuzz_dir/corpus/$t")
[[ -d $fuzz_dir/regress/$t ]] && dirs+=("$fuzz_dir/regress/$t")
rc=0
start=$(date +%s)
# shellcheck disable=SC2046
"$fuzz_build/tests/fuzz/fuzz_$t" $(fuzz_options "$t") \
  -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix="$scratch/" "${dirs[@]}" >"$log" 2>&1 || rc=$?
elapsed=$(( $(date +%s) - start ))

last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")
echo "fuzz_$t: ${elapsed} s of ${seconds}, executions ${execs:-?}, exec/s ${rate:-?}," \
  "cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?} (inputs/bytes), exit $rc"
echo "log: $log; corpus: $scratch/corpus"
if [[ $rc -ne 0 ]]; then
  echo "fuzz_$t FAILED: crashing input in $scratch:" >&2
  ls "$scratch" | grep -E '^(crash|leak|timeout|oom)-' >&2 || true
fi
exit "$rc"
