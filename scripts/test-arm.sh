#!/usr/bin/env bash
# The integration tests (and, with --clients, the boto3 / AWS CLI / rclone
# suite) against larder built for ARM and run under qemu-user: the tests
# stay native, the server is the ARM binary (LARDER_BIN, LARDER_RUNNER).
# (`larder bench --json` among them, on each ARM binary.)
#
#   scripts/test-arm.sh [--clients] [--large] [aarch64|armv7]...   (default: both)
#
# --large adds the objects past 4 GiB (tests/server/large_objects.rs: 9.5
# GiB written, minutes under emulation), where a 32-bit usize would wrap.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

clients=no
large=0
arches=()
for arg in "$@"; do
    case "$arg" in
        --clients) clients=yes ;;
        --large) large=1 ;;
        aarch64 | armv7) arches+=("$arg") ;;
        *) echo "usage: $0 [--clients] [--large] [aarch64|armv7]..." >&2; exit 2 ;;
    esac
done
[ ${#arches[@]} -gt 0 ] || arches=(aarch64 armv7)

for arch in "${arches[@]}"; do
    case "$arch" in
        aarch64) target=aarch64-unknown-linux-gnu; runner="qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
        armv7) target=armv7-unknown-linux-gnueabihf; runner="qemu-arm -L /usr/arm-linux-gnueabihf" ;;
    esac
    echo "== $arch: building larder for $target"
    cargo build --bin larder --target "$target"
    binary="$PWD/target/$target/debug/larder"
    file "$binary" | grep -q "ARM" || { echo "$binary is not an ARM binary" >&2; exit 1; }
    # Fails loudly if qemu cannot run it at all.
    $runner "$binary" --version

    echo "== $arch: integration tests against the $arch server under qemu-user"
    # Two tests at a time: emulation is slow, and the tests' time limits
    # are meant for a real core each.
    LARDER_BIN="$binary" LARDER_RUNNER="$runner" LARDER_LARGE_OBJECTS=$large cargo test --test server -- --test-threads=2

    if [ "$clients" = yes ]; then
        echo "== $arch: boto3, AWS CLI and rclone against the $arch server"
        LARDER_BIN="$binary" LARDER_RUNNER="$runner" .venv/bin/python -m pytest tests/compat -q -p no:cacheprovider
    fi
done
