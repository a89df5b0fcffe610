#!/usr/bin/env bash
# Installs what larder's tests need and the machine lacks: Debian's cross
# toolchains, qemu-user, rclone, restic and s3fs (backup and FUSE clients), socat with openssl (a TLS relay for the
# HTTPS client tests), and Chromium (the browser test); the Rust targets and components; the
# nightly toolchain and cargo-fuzz (scripts/fuzz.sh); cargo-zigbuild and cargo-deb
# (scripts/release.sh); a Python venv (.venv) with boto3, the AWS CLI, pytest and zig.
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v rclone >/dev/null || missing+=(rclone)
command -v restic >/dev/null || missing+=(restic)
command -v s3fs >/dev/null || missing+=(s3fs)
command -v socat >/dev/null || missing+=(socat)
command -v openssl >/dev/null || missing+=(openssl)
command -v chromium >/dev/null || missing+=(chromium)
command -v curl >/dev/null || missing+=(curl)
command -v systemd-socket-activate >/dev/null || missing+=(systemd)
command -v qemu-aarch64 >/dev/null && command -v qemu-arm >/dev/null || missing+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v arm-linux-gnueabihf-gcc >/dev/null || missing+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

installed_targets=$(rustup target list --installed)
for target in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf aarch64-unknown-linux-musl; do
    grep -qx "$target" <<<"$installed_targets" || rustup target add "$target"
done
installed_components=$(rustup component list --installed)
for component in rustfmt clippy; do
    grep -q "^$component" <<<"$installed_components" || rustup component add "$component"
done

# Fuzzing (scripts/fuzz.sh): libFuzzer needs the nightly toolchain.
grep -q '^nightly' <<<"$(rustup toolchain list)" || rustup toolchain install nightly --profile minimal
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# Releases (scripts/release.sh): zig links for each target and glibc floor.
command -v cargo-zigbuild >/dev/null || cargo install cargo-zigbuild --locked
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=.venv/.requirements-installed
if [ ! -f "$stamp" ] || [ tests/compat/requirements.txt -nt "$stamp" ]; then
    .venv/bin/pip install -q --disable-pip-version-check -r tests/compat/requirements.txt
    touch "$stamp"
fi
