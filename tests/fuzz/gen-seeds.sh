#!/usr/bin/env bash
# Regenerates the seed corpora corpus/TARGET/ from real protocol traffic:
# builds build-fuzz/ and runs fuzz_gen_seeds (gen_seeds.c), which signs
# announcements, countersignatures, lookup answers, proofs, purges and
# delivery failures and seals messages with the library under the fixture's
# keys (fixture.c), and writes the profile files as the client library
# writes them. The old seeds are replaced; regress/ is left alone.
set -euo pipefail
. "$(dirname "$0")/common.sh"
fuzz_configure_and_build
out=$(mktemp -d /tmp/synod-fuzz-seeds.XXXXXX)
"$fuzz_build/tests/fuzz/fuzz_gen_seeds" "$out"
for t in "${fuzz_targets[@]}"; do
  rm -rf "$fuzz_dir/corpus/$t"
  mkdir -p "$fuzz_dir/corpus/$t"
  cp "$out/$t"/* "$fuzz_dir/corpus/$t/"
  echo "corpus/$t: $(ls "$fuzz_dir/corpus/$t" | wc -l) seeds," \
    "$(cat "$fuzz_dir/corpus/$t"/* | wc -c) bytes"
done
rm -rf "$out"
