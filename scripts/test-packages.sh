#!/usr/bin/env bash
# Checks the Debian packages scripts/release.sh left in dist/: each one's
# files, modes, conffile and unit, its binary run (ARM under qemu-user);
# then installs the amd64 package here with dpkg, starts `larder serve`
# as the package's `larder` user, and uses it as root and as a member of
# the `larder` group. Removes the package (and its user) at the end.
#
#   scripts/test-packages.sh        (as root: dpkg -i)
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "FAIL: $*" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
work=$(mktemp -d)
server_pid=""
# Set once this script's own dpkg -i has run: only then is what the
# package made ours to remove (never a real installation's data).
installed_here=""
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    if [ -n "$installed_here" ]; then
        dpkg --purge larder >/dev/null 2>&1 || true
        rm -rf /var/lib/larder
        getent passwd larder >/dev/null && userdel larder 2>/dev/null || true
        getent group larder >/dev/null && groupdel larder 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

mode_of() { stat -c %a "$1"; }

for arch in arm64 armhf amd64; do
    deb="dist/larder_${version}-1_${arch}.deb"
    [ -f "$deb" ] || fail "$deb is missing (run scripts/release.sh first)"
    echo "== $deb"
    [ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || fail "$deb: Architecture is not $arch"
    [ "$(dpkg-deb -f "$deb" Package)" = larder ] || fail "$deb: Package is not larder"
    root="$work/$arch"
    dpkg-deb -x "$deb" "$root"
    dpkg-deb -e "$deb" "$root/DEBIAN"
    unit=""
    for candidate in "$root"/lib/systemd/system/larder.service "$root"/usr/lib/systemd/system/larder.service; do
        [ -f "$candidate" ] && unit="$candidate"
    done
    [ -n "$unit" ] || fail "$deb: no larder.service"
    grep -q '^Type=notify$' "$unit" || fail "$deb: the unit is not Type=notify"
    grep -q '^User=larder$' "$unit" || fail "$deb: the unit does not run as larder"
    for file in usr/bin/larder:755 etc/larder/larder.toml:644 usr/share/man/man1/larder.1.gz:644 \
        usr/share/man/man1/larder-share.1.gz:644 usr/share/bash-completion/completions/larder:644 \
        usr/share/zsh/vendor-completions/_larder:644 usr/share/fish/vendor_completions.d/larder.fish:644; do
        path="$root/${file%%:*}"
        [ -f "$path" ] || fail "$deb: ${file%%:*} is missing"
        [ "$(mode_of "$path")" = "${file##*:}" ] || fail "$deb: ${file%%:*} is $(mode_of "$path"), not ${file##*:}"
    done
    grep -qx /etc/larder/larder.toml "$root/DEBIAN/conffiles" || fail "$deb: larder.toml is not a conffile"
    grep -q '^group_access = true$' "$root/etc/larder/larder.toml" || fail "$deb: group_access is not on"
    for script in postinst postrm; do
        [ -x "$root/DEBIAN/$script" ] || fail "$deb: no $script"
    done
    case "$arch" in
        arm64) runner="qemu-aarch64" ;;
        armhf) runner="qemu-arm -L /usr/arm-linux-gnueabihf" ;;
        amd64) runner="" ;;
    esac
    reported=$($runner "$root/usr/bin/larder" --version)
    [ "$reported" = "larder $version" ] || fail "$deb: the binary says '$reported'"
    if file "$root/usr/bin/larder" | grep -q 'not stripped'; then fail "$deb: the binary is not stripped"; fi
    echo "   files, modes, conffile, unit and binary ($reported) as they should be"
done

echo "== dpkg -i the amd64 package"
[ "$(id -u)" -eq 0 ] || fail "installing the package needs root"
if dpkg -s larder >/dev/null 2>&1 || getent passwd larder >/dev/null || [ -e /var/lib/larder ]; then
    fail "larder (or its user, or /var/lib/larder) is already here; not touching it"
fi
installed_here=yes
dpkg -i "dist/larder_${version}-1_amd64.deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i failed"; }
getent passwd larder >/dev/null || fail "no larder user"
getent group larder >/dev/null || fail "no larder group"
[ "$(stat -c '%U:%G %a' /var/lib/larder)" = "larder:larder 750" ] || fail "/var/lib/larder is $(stat -c '%U:%G %a' /var/lib/larder)"
command -v larder >/dev/null || fail "larder is not on PATH"
# Where systemd runs, the package started the service: stop it, so the
# test's own server can take the data folder.
if [ -d /run/systemd/system ]; then systemctl stop larder || true; fi
man -w larder >/dev/null 2>&1 || [ -f /usr/share/man/man1/larder.1.gz ] || fail "no manual page"

echo "== larder serve as the larder user (the unit's user and configuration)"
LARDER_LISTEN=127.0.0.1:0 setpriv --reuid=larder --regid=larder --init-groups \
    /usr/bin/larder serve --config /etc/larder/larder.toml >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
for _ in $(seq 100); do
    grep -q '^larder listening on ' "$work/serve.out" && break
    sleep 0.1
done
address=$(sed -n 's/^larder listening on //p' "$work/serve.out")
[ -n "$address" ] || { cat "$work/serve.err"; fail "the server did not start"; }
[ "$(stat -c '%U:%G %a' /var/lib/larder/root-key.toml)" = "larder:larder 640" ] ||
    fail "root-key.toml is $(stat -c '%U:%G %a' /var/lib/larder/root-key.toml)"

larder status --endpoint "http://$address" >"$work/status" || fail "larder status as root failed"
grep -q "/var/lib/larder" "$work/status" || fail "status does not name the data folder"
group_id=$(getent group larder | cut -d: -f3)
setpriv --reuid=nobody --regid=nogroup --groups="$group_id" \
    larder status --endpoint "http://$address" >/dev/null || fail "a member of the larder group cannot run larder status"
if setpriv --reuid=nobody --regid=nogroup --clear-groups larder status --endpoint "http://$address" >/dev/null 2>&1; then
    fail "someone outside the larder group read the root key"
fi
echo "   serving on $address as larder; root and the larder group use it, others cannot"

kill -TERM "$server_pid"
wait "$server_pid" || fail "the server did not stop cleanly"
server_pid=""
dpkg --purge larder >/dev/null
[ ! -e /usr/bin/larder ] || fail "dpkg --purge left /usr/bin/larder"
[ -d /var/lib/larder ] || fail "dpkg --purge removed the data folder"
echo "== the packages pass"
