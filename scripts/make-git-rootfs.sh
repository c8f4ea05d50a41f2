#!/usr/bin/env bash
# A base image rootfs with git and an ssh client (ssh, ssh-add), made offline from the host's binaries and the
# shared libraries they need, on top of the busybox rootfs. Usage: make-git-rootfs.sh OUT.tar
set -euo pipefail
out=${1:?usage: make-git-rootfs.sh OUT.tar}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$here/make-busybox-rootfs.sh" "$tmp/bb.tar"
mkdir "$tmp/rootfs"
tar -C "$tmp/rootfs" -xf "$tmp/bb.tar"
git=$(command -v git) || { echo "git not found: apt-get install -y git" >&2; exit 1; }
ssh=$(command -v ssh) || { echo "ssh not found: apt-get install -y openssh-client" >&2; exit 1; }
ssh_add=$(command -v ssh-add) || { echo "ssh-add not found: apt-get install -y openssh-client" >&2; exit 1; }
copy() { # copy a file to the same path in the rootfs, with its parent dirs
  mkdir -p "$tmp/rootfs$(dirname "$1")"
  cp -L "$1" "$tmp/rootfs$1"
}
for bin in "$git" "$ssh" "$ssh_add"; do
  copy "$bin"
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | while read -r lib; do copy "$lib"; done
done
# git runs its subcommands through its exec path
exec_path=$("$git" --exec-path)
mkdir -p "$tmp/rootfs$exec_path"
ln -sf "$git" "$tmp/rootfs$exec_path/git"
mkdir -p "$tmp/rootfs/root" "$tmp/rootfs/usr/bin"
[ -e "$tmp/rootfs/usr/bin/git" ] || ln -s "$git" "$tmp/rootfs/usr/bin/git"
echo 'root:x:0:' > "$tmp/rootfs/etc/group"
tar -C "$tmp/rootfs" --numeric-owner --owner=0 --group=0 -cf "$out" .
