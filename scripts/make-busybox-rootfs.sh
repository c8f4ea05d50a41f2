#!/usr/bin/env bash
# Make an offline base image rootfs tarball from the host's busybox-static:
# /bin with every applet, /etc/passwd with root only, /tmp. Usage: make-busybox-rootfs.sh OUT.tar
set -euo pipefail
out=${1:?usage: make-busybox-rootfs.sh OUT.tar}
bb=$(command -v busybox) || { echo "busybox not found: apt-get install -y busybox-static" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/rootfs/bin" "$tmp/rootfs/etc" "$tmp/rootfs/tmp"
cp "$bb" "$tmp/rootfs/bin/busybox"
for a in $("$tmp/rootfs/bin/busybox" --list); do
  [ "$a" = busybox ] || ln -sf busybox "$tmp/rootfs/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$tmp/rootfs/etc/passwd"
chmod 1777 "$tmp/rootfs/tmp"
tar -C "$tmp/rootfs" --numeric-owner --owner=0 --group=0 -cf "$out" .
