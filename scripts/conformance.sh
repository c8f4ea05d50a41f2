#!/usr/bin/env bash
# Run ../shared/conformance against hush (release build) in a private store.
# The shared copy of the cases has lost its write bits (git keeps 0644/0755 only, so u+w gives
# them back exactly) and its symlinks (listed in conformance-known-failures with the reason).
# Exits non-zero on any other failure.
set -uo pipefail
cd "$(dirname "$0")/.."
shared=${HUSH_SHARED:-../shared}
if [ ! -x "$shared/conformance/run.sh" ] && [ ! -f "$shared/conformance/run.sh" ]; then
  echo "SKIP: $shared/conformance not found"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$shared/conformance" "$work/conformance"
chmod -R u+w "$work/conformance"
HUSH_ROOT="$work/root" HUSH="$PWD/target/release/hush" bash "$work/conformance/run.sh" hush "${1:-*}" | tee "$work/out"
known=$(grep -v '^#' scripts/conformance-known-failures | cut -d' ' -f1)
bad=0
while read -r name; do
  if ! grep -qx "$name" <<<"$known"; then echo "unexpected failure: $name"; bad=1; fi
done < <(sed -n 's/^FAIL \([^:]*\):.*/\1/p' "$work/out")
exit $bad
