#!/usr/bin/env bash
# hush audit against detect-secrets (PyPI) on the same image: a rootfs of real files (by default
# the host's Python standard library and Perl modules, ~75 MB of text, where credential-shaped
# strings are common) with a few planted credentials, imported as an image.
#
#   bash scripts/bench-audit.sh [DIR...]      # HUSH=path/to/hush to pick the binary
#
# Prints wall and CPU seconds for `hush audit` on the store image and on its docker-archive
# (median of 3) and for `detect-secrets scan --all-files` on the unpacked files (one run: it is
# slow), the throughput per core, the ratio, and what each found. detect-secrets is installed in
# a venv under $WORK (default /tmp/hush-bench-audit) on first use.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
hush=${HUSH:-$here/target/release/hush}
work=${WORK:-/tmp/hush-bench-audit}
dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(/usr/lib/python3.11 /usr/share/perl)
mkdir -p "$work"
venv=$work/venv
if [ ! -x "$venv/bin/detect-secrets" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q detect-secrets
fi

rm -rf "$work/rootfs" "$work/root" "$work/image.tar"
mkdir -p "$work/rootfs/planted"
for d in "${dirs[@]}"; do cp -a "$d" "$work/rootfs/"; done
# Planted credentials, assembled from parts so that this script holds none.
{
  echo "aws_access_key_id = AKIA""Z7Q4X2M9P0LK3J7R"
  echo "token: ghp_""aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
  echo "url = https://deploy:Zq8kP2vLm9@git.example/repo.git"
  printf -- '-----BEGIN OPENSSH ''PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH ''PRIVATE KEY-----\n'
} > "$work/rootfs/planted/config.txt"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
bytes=$(du -sb "$work/rootfs" | cut -f1)
files=$(find "$work/rootfs" -type f | wc -l)
export HUSH_ROOT=$work/root
"$hush" import "$work/rootfs.tar" bench-audit:1 >/dev/null
"$hush" save bench-audit:1 -o "$work/image.tar"
rm -f "$work/rootfs.tar"

# median of 3: "wall cpu" of `hush audit TARGET`
time_hush() {
  for _ in 1 2 3; do
    /usr/bin/time -f "%e %U %S" -o "$work/t" "$hush" audit --format json "$1" >"$work/hush.json" || true
    # (time's first line is "Command exited with non-zero status 1" when there are findings)
    tail -1 "$work/t" | awk '{printf "%.3f %.3f\n", $1, $2 + $3}'
  done | sort -n | sed -n 2p
}
read -r store_wall store_cpu < <(time_hush bench-audit:1)
read -r arch_wall arch_cpu < <(time_hush "$work/image.tar")
hush_found=$(jq length "$work/hush.json")
hush_planted=$(jq '[.[] | select(.location | startswith("/planted/"))] | length' "$work/hush.json")

cd "$work/rootfs"
/usr/bin/time -f "%e %U %S" -o "$work/t" "$venv/bin/detect-secrets" scan --all-files . >"$work/ds.json"
read -r ds_wall ds_cpu < <(tail -1 "$work/t" | awk '{printf "%.3f %.3f\n", $1, $2 + $3}')
ds_found=$(jq '[.results[] | length] | add // 0' "$work/ds.json")
ds_planted=$(jq '.results["planted/config.txt"] // [] | length' "$work/ds.json")

mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "corpus: $files files, $mb MB (${dirs[*]} + 4 planted credentials); $(nproc) cores"
printf '%-34s %9s %9s %12s %9s %8s\n' "" "wall s" "cpu s" "MB/s/core" findings planted
row() { printf '%-34s %9.3f %9.3f %12.1f %9s %8s\n' "$1" "$2" "$3" "$(awk -v b="$bytes" -v c="$3" 'BEGIN { print b / 1e6 / c }')" "$4" "$5"; }
row "hush audit (store image)" "$store_wall" "$store_cpu" "$hush_found" "$hush_planted"
row "hush audit (docker-archive)" "$arch_wall" "$arch_cpu" "$hush_found" "$hush_planted"
row "detect-secrets scan --all-files" "$ds_wall" "$ds_cpu" "$ds_found" "$ds_planted"
awk -v d="$ds_wall" -v h="$store_wall" -v a="$arch_wall" \
  'BEGIN { printf "detect-secrets / hush (wall): %.0fx (store), %.0fx (archive)\n", d / h, d / a }'
