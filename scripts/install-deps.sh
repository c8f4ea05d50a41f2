#!/usr/bin/env bash
# Debian packages the build and the tests need (idempotent).
set -euo pipefail
# g++: libFuzzer, which the fuzz targets build (scripts/fuzz.sh).
# docker-registry, apache2-utils (htpasswd), openssl, zstd: the registry tests (tests/registry.rs).
# docker.io (dockerd and its CLI): the docker engine tests (tests/docker_engine.rs).
pkgs=(busybox-static skopeo umoci jq tar git openssh-client openssh-server passt
      libseccomp-dev pkg-config gcc libc6-dev g++ docker-registry apache2-utils openssl zstd docker.io)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
