#!/usr/bin/env bash
# The power-cut test: larder runs in a Linux VM (qemu under software
# emulation, Debian's kernel, ext4 on a virtio disk with cache=writeback);
# a client outside runs a mixed workload and records what was
# acknowledged; the VM is killed with SIGKILL at a random moment, which
# loses the guest's page cache as a power cut does; the VM boots again on
# the same disk and every acknowledged operation is checked, after
# `larder repair --check` has compared the recovered index with the disk.
#
#   scripts/power-cut-test.sh [CUTS] [full|relaxed]
#
# Prints `N cuts, M acknowledged operations checked, L lost` and fails if
# anything acknowledged was lost (in full durability). Needs root for
# apt-get the first time; everything is built under target/power-cut/
# (or $POWER_CUT_WORK).
set -euo pipefail
cd "$(dirname "$0")/.."
CUTS="${1:-3}"
DURABILITY="${2:-full}"
WORK="${POWER_CUT_WORK:-$PWD/target/power-cut}"
mkdir -p "$WORK"

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && /bin/busybox --list | grep -qx insmod || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl

echo "== larder, built static for the VM"
cargo build --quiet --bin larder --target x86_64-unknown-linux-musl
BINARY="$PWD/target/x86_64-unknown-linux-musl/debug/larder"

echo "== Debian's kernel and its modules"
if [ ! -f "$WORK/kernel/ok" ]; then
    package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
    rm -rf "$WORK/kernel" && mkdir -p "$WORK/kernel"
    (cd "$WORK/kernel" && apt-get download "$package" 2>/dev/null && dpkg-deb -x ./*.deb root && touch ok)
fi
KERNEL=$(ls "$WORK"/kernel/root/boot/vmlinuz-*)
MODULES=$(ls -d "$WORK"/kernel/root/lib/modules/*/kernel)

echo "== the initramfs"
INITRD="$WORK/initrd"
rm -rf "$INITRD" && mkdir -p "$INITRD"/{bin,proc,sys,dev,mnt,modules}
cp /bin/busybox "$INITRD/bin/busybox"
cp "$BINARY" "$INITRD/bin/larder"
cp scripts/power-cut/init "$INITRD/init"
chmod +x "$INITRD/init"
: >"$INITRD/modules.order"
for module in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev \
    drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci drivers/block/virtio_blk lib/crc16 \
    fs/mbcache fs/jbd2/jbd2 crypto/crc32c_generic lib/libcrc32c fs/ext4/ext4 net/core/failover \
    drivers/net/net_failover drivers/net/virtio_net; do
    file=$(ls "$MODULES/$module".ko* 2>/dev/null | head -1) || true
    [ -n "$file" ] || continue
    cp "$file" "$INITRD/modules/"
    basename "$file" >>"$INITRD/modules.order"
done
export LARDER_ROOT_ACCESS_KEY="LKPOWERCUT0000000001"
export LARDER_ROOT_SECRET_KEY="power/cut/test/secret/key/0000000000000"
cat >"$INITRD/larder.env" <<EOF
LARDER_ROOT_ACCESS_KEY=$LARDER_ROOT_ACCESS_KEY
LARDER_ROOT_SECRET_KEY=$LARDER_ROOT_SECRET_KEY
RUST_LOG=info
DURABILITY=$DURABILITY
EOF
(cd "$INITRD" && find . | cpio -o -H newc --quiet | gzip -1 >"$WORK/initrd.gz")

echo "== a fresh ext4 disk"
DISK="$WORK/disk.img"
rm -f "$DISK" && truncate -s 512M "$DISK" && mkfs.ext4 -q -F "$DISK"

PORT=$((20000 + RANDOM % 20000))
ENDPOINT="http://127.0.0.1:$PORT"
STATE="$WORK/state.json"
rm -f "$STATE" "$WORK"/console-*.log
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3

power_off() {
    kill -9 "$QEMU" 2>/dev/null || true
    while kill -0 "$QEMU" 2>/dev/null; do sleep 0.1; done
}

boot() {
    qemu-system-x86_64 -m 512 -smp 1 -nographic -no-reboot \
        -kernel "$KERNEL" -initrd "$WORK/initrd.gz" -append "console=ttyS0 quiet panic=-1" \
        -drive "file=$DISK,format=raw,if=virtio,cache=writeback" \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-:9000" -device virtio-net-pci,netdev=n0 \
        </dev/null >"$WORK/console-$1.log" 2>&1 &
    QEMU=$!
    # The workload kills it; the shell need not report that.
    disown "$QEMU"
    for _ in $(seq 1 600); do
        if curl -sf "$ENDPOINT/_larder/health" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$QEMU" 2>/dev/null; then
            echo "the VM stopped while booting; its console:" >&2
            tail -30 "$WORK/console-$1.log" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "larder did not come up in the VM; its console:" >&2
    tail -30 "$WORK/console-$1.log" >&2
    power_off
    return 1
}

failed=0
boot 0
for cut in $(seq 1 "$CUTS"); do
    "$PYTHON" scripts/power-cut/workload.py run "$STATE" "$ENDPOINT" "$QEMU" "$RANDOM$cut" || true
    power_off
    boot "$cut"
    "$PYTHON" scripts/power-cut/workload.py check "$STATE" "$ENDPOINT" || failed=1
    if grep -q "REPAIR CHECK FAILED" "$WORK/console-$cut.log"; then
        echo "after cut $cut, larder repair --check found differences:" >&2
        grep -a -B20 "REPAIR CHECK FAILED" "$WORK/console-$cut.log" | tail -20 >&2
        failed=1
    fi
done
power_off
summary=$("$PYTHON" scripts/power-cut/workload.py summary "$STATE")
echo "$summary ($DURABILITY durability)"
if [ "$DURABILITY" = full ] && [ "$failed" -ne 0 ]; then
    echo "power-cut test FAILED: acknowledged operations were lost" >&2
    exit 1
fi
