#!/usr/bin/env bash
# The README's second command: every test (formatting, lints, unit, BuildKit data, end-to-end as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets -q -- -D warnings
cargo build --release -q
HUSH_BIN=$PWD/target/release/hush cargo test --release -q --workspace 2>&1
