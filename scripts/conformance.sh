#!/usr/bin/env bash
# Run the conformance suite (conformance/, in this repository) against hush (release build) in a
# private store. Cases listed in conformance-known-failures may fail (with the reason there);
# exits non-zero on any other failure. First says whether conformance/ is in step with
# ../shared/conformance, when that exists (scripts/conformance-sync.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/conformance-sync.sh || echo "warning: the cases run are conformance/'s, not ../shared's"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
HUSH_ROOT="$work/root" HUSH="$PWD/target/release/hush" bash conformance/run.sh hush "${1:-*}" | tee "$work/out"
known=$(grep -v '^#' scripts/conformance-known-failures | cut -d' ' -f1)
bad=0
while read -r name; do
  if ! grep -qx "$name" <<<"$known"; then echo "unexpected failure: $name"; bad=1; fi
done < <(sed -n 's/^FAIL \([^:]*\):.*/\1/p' "$work/out")
exit $bad
