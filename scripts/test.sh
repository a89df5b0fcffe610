#!/usr/bin/env bash
# larder's whole test suite: unit and integration tests, the real-client
# compatibility suite (boto3, AWS CLI, rclone), the unit tests built for
# aarch64 and armv7 and the integration tests against the aarch64 and
# armv7 servers, all under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

scripts/install-deps.sh

echo "== unit and integration tests"
cargo test --all-targets

# The binary `cargo test` just built: the clients' suite runs against it
# before the failpoints build below replaces it.
echo "== compatibility suite: boto3, AWS CLI, rclone against the real server"
LARDER_BIN="$PWD/target/debug/larder" .venv/bin/python -m pytest tests/compat -q -p no:cacheprovider

echo "== crash injection: the server aborted at every step of every kind of write"
cargo test --features failpoints --test server failpoints

for target in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
    echo "== unit tests for $target under qemu-user"
    cargo test --lib --target "$target"
done

echo "== integration tests against the aarch64 and armv7 servers under qemu-user"
scripts/test-arm.sh aarch64 armv7

# The release profile's fat LTO takes minutes per target: CI builds the
# same code with release-check, which is enough to check the packaging.
echo "== release files and Debian packages: built, taken apart, installed"
scripts/release.sh --profile release-check
scripts/test-packages.sh

echo "== fuzzing: each target briefly on its seeds"
scripts/fuzz.sh 20

echo "== power cuts: larder in a VM killed mid-workload, every acknowledged write checked"
scripts/power-cut-test.sh 3 full
