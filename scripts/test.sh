#!/usr/bin/env bash
# The README's second command: every test — formatting, lints, unit tests (BuildKit's parser and
# expansion data included), end-to-end builds as root (real containers, skopeo/umoci, a real
# ssh-agent/sshd/git), 45 s of fuzzing per fuzz target (scripts/fuzz.sh), and the shared
# conformance suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets -q -- -D warnings
# Every doc link resolves (the binary's doc comments are its --help text, not rustdoc).
RUSTDOCFLAGS="-D warnings -A rustdoc::private_intra_doc_links" \
  cargo doc -q --workspace --exclude hush --no-deps --document-private-items
cargo build --release -q
HUSH_BIN=$PWD/target/release/hush cargo test --release -q --workspace --no-fail-fast 2>&1
bash scripts/fuzz.sh
bash scripts/conformance.sh
