#!/usr/bin/env bash
# What isolation costs a RUN: two hush binaries (BEFORE, AFTER) built cold on the shared bench's
# run-overhead (30 RUNs) and secret-mounts (20 RUNs with a secret) workloads, interleaved
# (before, after, after, before, ...), RUNS times each; prints the median wall seconds and the
# ratio. AFTER_EXTRA adds flags to AFTER's builds (e.g. `--network=none` to leave pasta out).
# Usage: BEFORE=old/hush AFTER=target/release/hush [RUNS=5] scripts/bench-isolation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
before=${BEFORE:?set BEFORE=/path/to/old/hush}
after=${AFTER:-$PWD/target/release/hush}
runs=${RUNS:-5}
bench=${BENCH:-$PWD/../shared/bench}
work=$(mktemp -d /tmp/hush-bench-iso.XXXXXX)
trap 'rm -rf "$work"' EXIT
bash scripts/make-busybox-rootfs.sh "$work/busybox.tar"
for who in before after; do
  bin=$before; [ $who = after ] && bin=$after
  HUSH_ROOT=$work/$who-root "$bin" import "$work/busybox.tar" busybox:local >/dev/null
done
time_build() { # BIN ROOT WORKLOAD EXTRA...
  local bin=$1 root=$2 wl=$3; shift 3
  local args=()
  for s in "$work/$wl/secrets"/*; do [ -e "$s" ] && args+=(--secret "id=$(basename "$s"),src=$s"); done
  local t0 t1
  t0=$(date +%s.%N)
  HUSH_ROOT=$root "$bin" build --progress=quiet --no-cache -q "${args[@]}" "$@" \
    -f "$bench/workloads/$wl/Dockerfile" "$work/$wl/context" >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "| workload | before s | after s | after ÷ before |"
echo "|---|---|---|---|"
for wl in run-overhead secret-mounts; do
  bash "$bench/workloads/$wl/gen.sh" "$work/$wl" >/dev/null
  : > "$work/$wl.before"; : > "$work/$wl.after"
  for i in $(seq "$runs"); do
    order="before after"; [ $((i % 2)) = 0 ] && order="after before"
    for who in $order; do
      if [ $who = before ]; then
        time_build "$before" "$work/before-root" "$wl" >> "$work/$wl.before"
      else
        # shellcheck disable=SC2086
        time_build "$after" "$work/after-root" "$wl" ${AFTER_EXTRA:-} >> "$work/$wl.after"
      fi
    done
  done
  b=$(median < "$work/$wl.before"); a=$(median < "$work/$wl.after")
  printf '| %s | %.3f | %.3f | %.3f |\n' "$wl" "$b" "$a" "$(echo "$a / $b" | bc -l)"
done
