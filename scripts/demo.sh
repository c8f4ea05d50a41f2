#!/usr/bin/env bash
# The README's first command: set up, then build examples/secret-demo with a secret mount on an
# offline busybox base, and show the secret is used by the build but absent from the image.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release -q
hush=$PWD/target/release/hush
export HUSH_ROOT=${HUSH_ROOT:-/var/lib/hush}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash scripts/make-busybox-rootfs.sh "$work/busybox.tar"
"$hush" import "$work/busybox.tar" busybox:local >/dev/null
"$hush" build --progress=plain --secret id=mysecret,src=examples/secret-demo/secrets.json \
  -t secret-demo:latest --output "type=docker,dest=$work/secret-demo.tar" examples/secret-demo
echo
"$hush" history secret-demo:latest
echo
mkdir "$work/x" && tar -xf "$work/secret-demo.tar" -C "$work/x"
if grep -rq mypassword123 "$work/x" "$HUSH_ROOT"; then
  echo "FAIL: the secret is in the image or the store" >&2; exit 1
fi
skopeo inspect "docker-archive:$work/secret-demo.tar" >/dev/null
echo "OK: the build used the secret; it is in no layer, no history entry, no config and not in $HUSH_ROOT."
