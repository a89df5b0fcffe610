#!/usr/bin/env bash
# larder on a real ARM kernel: the aarch64 release binary boots in
# qemu-system-aarch64 (`-M virt`, software emulation, 1 GiB) with Debian's
# arm64 kernel, a busybox initramfs and an ext4 disk, serving through
# qemu's user network on a loopback port. From the host, the clients'
# suite (boto3, the AWS CLI, rclone) runs against it; the VM's console
# reports larder's resident memory, printed at the end: at rest after
# start-up, and the peak over the suite.
#
#   scripts/vm-arm64.sh [--16k] [PYTEST ARGS...]
#
# --16k boots Debian's 16 KiB-page kernel (the Raspberry Pi 5's page size)
# where the distribution has one. Needs root the first time (apt-get; the
# arm64 architecture is added to dpkg to download the kernel and busybox).
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=arm64
if [ "${1:-}" = "--16k" ]; then flavour=arm64-16k; shift; fi
WORK="${VM_ARM64_WORK:-$PWD/target/vm-arm64}"
mkdir -p "$WORK"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

need=()
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
command -v cpio >/dev/null || need+=(cpio)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
    $sudo apt-get update -qq
fi

echo "== the aarch64 release binary"
BINARY="$PWD/target/aarch64-unknown-linux-musl/release/larder"
[ -x "$BINARY" ] || scripts/release.sh aarch64 >/dev/null
file "$BINARY" | grep -q "ARM aarch64" || { echo "$BINARY is not an aarch64 binary" >&2; exit 1; }

echo "== Debian's $flavour kernel and busybox for arm64"
if [ ! -f "$WORK/$flavour/ok" ]; then
    package=$( (apt-cache depends "linux-image-$flavour:arm64" 2>/dev/null || true) | awk '/Depends: linux-image-/ {print $2; exit}')
    # Debian 12 has the 16k flavour only as versioned packages (6.12).
    [ -n "$package" ] || package=$(apt-cache search --names-only "^linux-image-[0-9].*-$flavour-unsigned\$" |
        awk '{print $1}' | sort -V | tail -1)
    if [ -z "$package" ]; then
        echo "this distribution has no linux-image-$flavour for arm64" >&2
        exit 3
    fi
    rm -rf "${WORK:?}/$flavour" && mkdir -p "$WORK/$flavour"
    (cd "$WORK/$flavour" && apt-get download "${package%:arm64}:arm64" 2>/dev/null && dpkg-deb -x ./*.deb root && touch ok)
fi
if [ ! -f "$WORK/busybox/ok" ]; then
    rm -rf "$WORK/busybox" && mkdir -p "$WORK/busybox"
    (cd "$WORK/busybox" && apt-get download busybox-static:arm64 2>/dev/null && dpkg-deb -x ./*.deb root && touch ok)
fi
KERNEL=$(ls "$WORK/$flavour"/root/boot/vmlinuz-*)
MODULES=$(ls -d "$WORK/$flavour"/root/lib/modules/*/kernel)

echo "== the initramfs"
INITRD="$WORK/initrd"
rm -rf "$INITRD" && mkdir -p "$INITRD"/{bin,proc,sys,dev,mnt,modules}
cp "$WORK/busybox/root/bin/busybox" "$INITRD/bin/busybox"
cp "$BINARY" "$INITRD/bin/larder"
cp scripts/vm-arm64/init "$INITRD/init"
chmod +x "$INITRD/init"
: >"$INITRD/modules.order"
for module in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_mmio \
    drivers/block/virtio_blk lib/crc16 fs/mbcache fs/jbd2/jbd2 crypto/crc32c_generic lib/libcrc32c \
    fs/ext4/ext4 net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
    file=$(ls "$MODULES/$module".ko* 2>/dev/null | head -1) || true
    [ -n "$file" ] || continue
    case "$file" in
        *.xz) xz -dc "$file" >"$INITRD/modules/$(basename "${file%.xz}")"; file="${file%.xz}" ;;
        *) cp "$file" "$INITRD/modules/" ;;
    esac
    basename "$file" >>"$INITRD/modules.order"
done
export LARDER_ROOT_ACCESS_KEY="LKVMARM6400000000001"
export LARDER_ROOT_SECRET_KEY="arm64/vm/test/secret/key/00000000000000"
cat >"$INITRD/larder.env" <<ENV
LARDER_ROOT_ACCESS_KEY=$LARDER_ROOT_ACCESS_KEY
LARDER_ROOT_SECRET_KEY=$LARDER_ROOT_SECRET_KEY
RUST_LOG=warn
ENV
(cd "$INITRD" && find . | cpio -o -H newc --quiet | gzip -1 >"$WORK/initrd.gz")

DISK="$WORK/disk.img"
rm -f "$DISK" && truncate -s 2G "$DISK" && mkfs.ext4 -q -F "$DISK"

PORT=$((20000 + RANDOM % 20000))
ENDPOINT="http://127.0.0.1:$PORT"
CONSOLE="$WORK/console-$flavour.log"
echo "== booting ($flavour kernel, 1 GiB, 2 CPUs, software emulation)"
# cortex-a76 implements the 16 KiB translation granule (cortex-a72 does not).
qemu-system-aarch64 -M virt -cpu cortex-a76 -smp 2 -m 1024 -nographic -no-reboot \
    -kernel "$KERNEL" -initrd "$WORK/initrd.gz" -append "console=ttyAMA0 quiet panic=-1" \
    -drive "file=$DISK,format=raw,if=none,id=disk0,cache=writeback" -device virtio-blk-device,drive=disk0 \
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-:9000" -device virtio-net-device,netdev=n0 \
    </dev/null >"$CONSOLE" 2>&1 &
QEMU=$!
trap 'kill -9 $QEMU 2>/dev/null || true' EXIT
for _ in $(seq 1 900); do
    curl -sf "$ENDPOINT/_larder/health" >/dev/null 2>&1 && break
    kill -0 "$QEMU" 2>/dev/null || { echo "the VM stopped while booting:" >&2; tail -30 "$CONSOLE" >&2; exit 1; }
    sleep 1
done
curl -sf "$ENDPOINT/_larder/health" >/dev/null || { echo "larder did not come up:" >&2; tail -30 "$CONSOLE" >&2; exit 1; }
grep -a "^init: kernel" "$CONSOLE" | tail -1
sleep 5
idle=$(grep -a "^init: memory" "$CONSOLE" | tail -1)

echo "== boto3, the AWS CLI and rclone against larder in the VM"
PYTHON="${PYTHON:-.venv/bin/python}"
status=0
LARDER_ENDPOINT="$ENDPOINT" "$PYTHON" -m pytest tests/compat/test_boto3.py tests/compat/test_awscli.py \
    tests/compat/test_rclone.py tests/compat/test_sigv2.py tests/compat/test_post.py -q -p no:cacheprovider "$@" || status=$?
sleep 3
peak=$(grep -a "^init: memory" "$CONSOLE" | tail -1)
echo "larder's memory in the VM at rest after start-up: ${idle#init: memory }"
echo "larder's memory in the VM after the suite (VmHWM is the peak): ${peak#init: memory }"
exit $status
