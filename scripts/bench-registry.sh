#!/usr/bin/env bash
# Pull and push against a loopback registry: hush against skopeo and docker, in the same run,
# interleaved (the order rotates every run), median wall seconds of RUNS runs.
#
#   bash scripts/bench-registry.sh [pull-large] [push-large] [pull-small]   # all three by default
#   RUNS=3 HUSH=target/release/hush WORK=/tmp/hush-bench-registry DOCKER=1 ...
#
# Images: the shared bench's copy-large (busybox + one 1.25 GiB layer: 1 GiB incompressible,
# 256 MiB text) and copy-small-files (busybox + 20,000 files of 1-4 KiB), built by hush, saved as
# docker-archives and pushed by skopeo to a `docker-registry` this script starts on 127.0.0.1
# (so every puller reads skopeo's gzip). What is timed:
#   pull-large, pull-small: `hush pull` into an empty store (every digest checked, decompressed,
#     unpacked into a snapshot), `skopeo copy docker://… oci:DIR` (download and digest check
#     only) and `docker pull` (a dockerd this script starts, its own data root; after `docker
#     rmi`, so it downloads and unpacks everything again);
#   push-large: `hush push` and `skopeo copy docker-archive:… docker://…` (gzip and upload),
#     each to a registry started empty for that run.
# BEFORE=path/to/older/hush adds that binary as a row of its own ("before"), in the same runs.
# DOCKER=0 leaves docker out. Needs docker-registry, skopeo, GNU time; docker.io for docker.
set -euo pipefail
cd "$(dirname "$0")/.."
hush=$(realpath "${HUSH:-target/release/hush}")
runs=${RUNS:-3}
work=${WORK:-/tmp/hush-bench-registry}
bench=${BENCH:-$PWD/../shared/bench}
[ -d "$bench" ] || bench=$PWD/../../shared/bench   # from a worktree under /work/wt
use_docker=${DOCKER:-1}
before=${BEFORE:+$(realpath "$BEFORE")}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(pull-large push-large pull-small)
command -v dockerd >/dev/null || use_docker=0
mkdir -p "$work"
pids=()
cleanup() {
  # Registries are started in command substitutions (subshells): their pids are in files.
  for f in "$work"/reg-*/pid; do [ -e "$f" ] && pids+=("$(cat "$f")"); done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work/reg-"* "$work"/pull-root-* "$work"/oci-*
}
trap cleanup EXIT

# A registry on a free loopback port with empty storage; prints its address.
start_registry() { # NAME
  local dir=$work/reg-$1 port
  rm -rf "$dir"; mkdir -p "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  echo "$!" > "$dir/pid"
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done
  echo "127.0.0.1:$port"
}
stop_registry() { # NAME
  local dir=$work/reg-$1
  kill "$(cat "$dir/pid")" 2>/dev/null || true
  wait "$(cat "$dir/pid")" 2>/dev/null || true
  rm -rf "$dir"
}

# The images, made once per work dir.
src=$work/src-root
if [ ! -e "$work/large.tar" ] || [ ! -e "$work/small.tar" ]; then
  rm -rf "$src"
  bash scripts/make-busybox-rootfs.sh "$work/busybox.tar" >/dev/null
  HUSH_ROOT=$src "$hush" import "$work/busybox.tar" busybox:local >/dev/null
  for wl in copy-large copy-small-files; do
    [ -d "$work/$wl/context" ] || bash "$bench/workloads/$wl/gen.sh" "$work/$wl" >/dev/null
  done
  HUSH_ROOT=$src "$hush" build -q --progress=quiet -t bench/large:1 \
    -f "$bench/workloads/copy-large/Dockerfile" "$work/copy-large/context" >/dev/null
  HUSH_ROOT=$src "$hush" build -q --progress=quiet -t bench/small:1 \
    -f "$bench/workloads/copy-small-files/Dockerfile" "$work/copy-small-files/context" >/dev/null
  HUSH_ROOT=$src "$hush" save bench/large:1 -o "$work/large.tar"
  HUSH_ROOT=$src "$hush" save bench/small:1 -o "$work/small.tar"
fi

reg=$(start_registry main)
for img in large small; do
  skopeo copy -q --dest-tls-verify=false "docker-archive:$work/$img.tar" "docker://$reg/bench/$img:1"
done

if [ "$use_docker" = 1 ]; then
  dx=/tmp/hbr-exec.$$
  mkdir -p "$work/docker" "$dx"
  dockerd --data-root "$work/docker" --exec-root "$dx" --host "unix://$dx/sock" \
    --pidfile "$dx/pid" --iptables=false --bridge=none >"$work/dockerd.log" 2>&1 &
  pids+=($!)
  export DOCKER_HOST=unix://$dx/sock
  for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
  docker version >/dev/null
fi

# One timed run: prints "wall cpu" (cpu = user + sys of the client's process tree).
timed() {
  sync
  /usr/bin/time -f "%e %U %S" -o "$work/t" "$@" >"$work/out" 2>&1 || {
    echo "failed: $*" >&2; cat "$work/out" >&2; exit 1
  }
  tail -1 "$work/t" | awk '{printf "%.2f %.2f\n", $1, $2 + $3}'
}

# Each run pulls into a store (or directory) of its own, removed when the workload ends: on ext4
# without a journal, creating files right after deleting many is slower run after run (see
# the shared bench's README, Filesystem).
run=0
pull_hush() {
  run=$((run + 1))
  HUSH_ROOT=$work/pull-root-$run timed "${bin:-$hush}" pull -q "$reg/bench/$1:1"
}
pull_before() { bin=$before pull_hush "$@"; }
pull_skopeo() {
  run=$((run + 1))
  timed skopeo copy -q --src-tls-verify=false "docker://$reg/bench/$1:1" "oci:$work/oci-$run:x"
}
pull_docker() {
  docker rmi -f "$reg/bench/$1:1" >/dev/null 2>&1 || true
  timed docker pull -q "$reg/bench/$1:1"
}
push_hush() {
  local r; r=$(start_registry push)
  HUSH_ROOT=$src timed "${bin:-$hush}" push -q bench/large:1 "$r/bench/large:1"
  stop_registry push >/dev/null
}
push_before() { bin=$before push_hush "$@"; }
push_skopeo() {
  local r; r=$(start_registry push)
  timed skopeo copy -q --dest-tls-verify=false "docker-archive:$work/large.tar" "docker://$r/bench/large:1"
  stop_registry push >/dev/null
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
range() { sort -n | awk 'NR==1{lo=$1} {hi=$1} END {printf "%s-%s", lo, hi}'; }

echo "| workload | tool | wall s median (min-max) | CPU s (client) | wall vs anchor |"
echo "|---|---|---|---|---|"
for wl in "${workloads[@]}"; do
  case $wl in
    pull-large) tools=(hush skopeo); img=large; kind=pull ;;
    pull-small) tools=(hush skopeo); img=small; kind=pull ;;
    push-large) tools=(hush skopeo); img=large; kind=push ;;
    *) echo "unknown workload $wl" >&2; exit 2 ;;
  esac
  [ -n "$before" ] && tools+=(before)
  [ "$use_docker" = 1 ] && [ $kind = pull ] && tools+=(docker)
  for t in "${tools[@]}"; do : > "$work/$wl.$t"; done
  for i in $(seq "$runs"); do
    n=${#tools[@]}
    for k in $(seq 0 $((n - 1))); do
      t=${tools[$(((i + k) % n))]}
      "${kind}_$t" $img >> "$work/$wl.$t"
    done
  done
  rm -rf "$work"/pull-root-* "$work"/oci-*
  anchor=skopeo; [ $wl = pull-small ] && [ "$use_docker" = 1 ] && anchor=docker
  a=$(cut -d' ' -f1 < "$work/$wl.$anchor" | median)
  for t in "${tools[@]}"; do
    w=$(cut -d' ' -f1 < "$work/$wl.$t" | median)
    c=$(cut -d' ' -f2 < "$work/$wl.$t" | median)
    printf '| %s | %s | %.2f (%s) | %.2f | %.2fx %s |\n' "$wl" "$t" "$w" \
      "$(cut -d' ' -f1 < "$work/$wl.$t" | range)" "$c" "$(echo "$w / $a" | bc -l)" "$anchor"
  done
done
if [ "$use_docker" = 1 ]; then
  docker rmi -f "$reg/bench/large:1" "$reg/bench/small:1" >/dev/null 2>&1 || true
fi
