#!/usr/bin/env bash
# The conformance suite lives in conformance/ (written for this project; a plain clone runs it).
# Its upstream copy is ../shared/conformance when that exists. This says whether the two differ
# (exit 1, listing what differs) or not (exit 0); with --update it copies upstream's new and
# changed files in (files only upstream has stay; review with git diff and commit).
# Modes are not compared: upstream's copy may have lost its write bits.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${HUSH_SHARED:-../shared}/conformance
if [ ! -d "$shared" ]; then
  echo "conformance-sync: no $shared here: nothing to compare (conformance/ is the suite)"
  exit 0
fi
if [ "${1:-}" = --update ]; then
  cp -r "$shared/." conformance/
  chmod -R u+w conformance
  echo "conformance-sync: copied $shared into conformance/ (see git status)"
fi
if diff -r --no-dereference -q "$shared" conformance; then
  echo "conformance-sync: conformance/ is $shared"
else
  echo "conformance-sync: conformance/ differs from $shared (above): run scripts/conformance-sync.sh --update, review, commit" >&2
  exit 1
fi
