#!/usr/bin/env bash
# Builds what a board owner installs, into dist/:
#
#   larder-VERSION-aarch64   static (musl): any 64-bit ARM Linux
#   larder-VERSION-armv7     glibc 2.28 or newer (Raspberry Pi OS 32-bit, Debian 10+)
#   larder-VERSION-x86_64    glibc 2.28 or newer (for trying it on a PC)
#   larder_VERSION-1_{arm64,armhf,amd64}.deb
#   SHA256SUMS
#
# Binaries are stripped; zig is the linker (cargo zigbuild), which pins
# the glibc version and needs no cross gcc. The manual pages and shell
# completions in the packages are generated from the command line's own
# definition (examples/man_and_completions.rs).
#
#   scripts/release.sh [--profile PROFILE] [aarch64|armv7|x86_64]...
#
# PROFILE defaults to `release` (fat LTO, minutes per target); CI checks
# the packaging with `release-check`, which builds the same code faster.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

profile=release
arches=()
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift ;;
        aarch64 | armv7 | x86_64) arches+=("$1") ;;
        *) echo "usage: $0 [--profile PROFILE] [aarch64|armv7|x86_64]..." >&2; exit 2 ;;
    esac
    shift
done
[ ${#arches[@]} -gt 0 ] || arches=(aarch64 armv7 x86_64)

# zig comes from the Python package `ziglang` (in .venv, see install-deps.sh).
export PATH="$PWD/.venv/bin:$PATH"
for tool in cargo-zigbuild cargo-deb; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/install-deps.sh" >&2; exit 1; }
done
python3 -m ziglang version >/dev/null || { echo "zig is missing: run scripts/install-deps.sh" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
mkdir -p dist
rm -f dist/SHA256SUMS

echo "== manual pages and shell completions"
rm -rf target/man-and-completions
cargo run --quiet --example man_and_completions -- target/man-and-completions
gzip -9n target/man-and-completions/man/*.1

for arch in "${arches[@]}"; do
    case "$arch" in
        aarch64) target=aarch64-unknown-linux-musl; zig_target=$target ;;
        armv7) target=armv7-unknown-linux-gnueabihf; zig_target=$target.2.28 ;;
        x86_64) target=x86_64-unknown-linux-gnu; zig_target=$target.2.28 ;;
    esac
    echo "== $arch: cargo zigbuild --profile $profile --target $zig_target"
    cargo zigbuild --quiet --profile "$profile" --target "$zig_target" --bin larder
    binary="target/$target/$profile/larder"
    # The glibc floor is what the binary asks for, not what we hoped.
    newest=$( (objdump -T "$binary" 2>/dev/null || true) | { grep -o 'GLIBC_[0-9.]*' || true; } | sort -V | tail -1)
    if [ -z "$newest" ] && [ "$arch" != aarch64 ]; then
        echo "$binary: no glibc symbol versions found (is objdump installed?)" >&2
        exit 1
    fi
    case "$newest" in
        "" | GLIBC_2.[0-9] | GLIBC_2.1[0-9] | GLIBC_2.2[0-8] | GLIBC_2.2.* | GLIBC_2.[0-9].*) ;;
        *) echo "$binary needs $newest, above the 2.28 floor" >&2; exit 1 ;;
    esac
    cp "$binary" "dist/larder-$version-$arch"
    echo "   $(stat -c %s "$binary") bytes, ${newest:-static}"

    echo "== $arch: Debian package"
    # cargo-deb takes the binary from target/$target/$profile (already stripped).
    cargo deb --quiet --no-build --no-strip --profile "$profile" --target "$target" --output dist/ >/dev/null
done

(cd dist && sha256sum larder-"$version"-* larder_"$version"-*.deb > SHA256SUMS)
echo "== dist/"
ls -l dist/
