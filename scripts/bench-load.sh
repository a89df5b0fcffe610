#!/usr/bin/env bash
# larder side by side with nginx and dd, on loopback, in one run.
#
# Starts larder (release build, `durability = "full"`) and nginx (one
# worker, sendfile) serving the same 4 KiB and 64 MiB files; pins each
# server to core 0 and the client (wrk; ab for HEAD, which wrk cannot do)
# to core 1; runs every scenario for SECONDS and
# prints one table: requests or megabytes per second, the server's CPU
# time per request or per GB (from /proc/PID/stat), its peak resident
# memory during the scenario (VmHWM, reset through /proc/PID/clear_refs),
# and larder's ratio to nginx or to `dd conv=fdatasync` on the same disk.
#
# Figures are only comparable within one run (the machine is shared);
# nothing here is asserted.
#
# Usage: scripts/bench-load.sh [SECONDS]      (default 10 per scenario)
#   LARDER_BENCH_BIN=path   use this larder binary instead of building one
#   LARDER_BENCH_DIR=path   where the data goes (default: a folder in /tmp;
#                           point it at the disk you care about)
#   LARDER_BENCH_SETTINGS='index_cache_mib = 4'   more larder.toml lines
#   LARDER_BENCH_ONLY='GET|PUT 4'   only the scenarios whose names match
#                           (an extended regular expression; for profiling)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: scripts/bench-load.sh [SECONDS]" >&2
    exit 2
fi

missing=()
for tool in wrk ab nginx curl taskset dd; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk apache2-utils nginx curl util-linux coreutils >/dev/null
    else
        echo "bench-load: needs ${missing[*]} (Debian: apt install wrk apache2-utils nginx curl)" >&2
        exit 1
    fi
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
cores=$(nproc)
if [ "$cores" -lt 2 ]; then
    echo "bench-load: needs two cores (one for the server, one for the client)" >&2
    exit 1
fi

if [ -n "${LARDER_BENCH_BIN:-}" ]; then
    larder=$LARDER_BENCH_BIN
else
    echo "== building larder (release)"
    cargo build --release --quiet
    larder=$PWD/target/release/larder
fi

work=$(mktemp -d "${LARDER_BENCH_DIR:-/tmp}/larder-bench.XXXXXX")
larder_pid=
nginx_pid=
cleanup() {
    [ -n "$larder_pid" ] && kill "$larder_pid" 2>/dev/null && wait "$larder_pid" 2>/dev/null
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

access_key=LKBENCHLOAD000000001
secret_key=bench-load-secret-bench-load-secret-0000
export LARDER_ROOT_ACCESS_KEY=$access_key LARDER_ROOT_SECRET_KEY=$secret_key

mkdir -p "$work/www" "$work/data"
# nginx's worker drops root for an unprivileged user, who must read these.
chmod 755 "$work" "$work/www"
head -c 4096 /dev/urandom >"$work/www/small"
head -c $((64 << 20)) /dev/urandom >"$work/www/big"
head -c 4096 /dev/urandom >"$work/put-small"
head -c $((1 << 20)) /dev/urandom >"$work/put-big"

# --- the servers -------------------------------------------------------------

cat >"$work/larder.toml" <<EOF
listen = "127.0.0.1:0"
data_dir = "$work/data"
durability = "full"
${LARDER_BENCH_SETTINGS:-}
EOF
taskset -c 0 "$larder" serve --config "$work/larder.toml" >"$work/larder.out" 2>"$work/larder.err" &
larder_pid=$!
for _ in $(seq 100); do
    grep -q "listening on" "$work/larder.out" 2>/dev/null && break
    sleep 0.1
done
larder_url=http://$(sed -n 's/^larder listening on //p' "$work/larder.out")
[ "$larder_url" != http:// ] || { cat "$work/larder.err" >&2; exit 1; }
sleep 1
idle_kib=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$larder_pid/status")

nginx_port=$((20000 + RANDOM % 20000))
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 256; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $work/nginx-body;
    proxy_temp_path $work/nginx-proxy;
    fastcgi_temp_path $work/nginx-fastcgi;
    uwsgi_temp_path $work/nginx-uwsgi;
    scgi_temp_path $work/nginx-scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/www;
    }
}
EOF
taskset -c 0 "$nginx_bin" -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!
nginx_url=http://127.0.0.1:$nginx_port
for _ in $(seq 50); do
    curl -sf -o /dev/null "$nginx_url/small" && break
    sleep 0.1
done

# Signed with the root key by curl (setup only; the load uses presigned URLs).
s3() {
    curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access_key:$secret_key" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
presign() { "$larder" presign "$1" "s3://$2" --endpoint "$larder_url" --expires 1h; }

s3 -X PUT "$larder_url/bench" -o /dev/null
s3 -X PUT "$larder_url/list" -o /dev/null
s3 -T "$work/www/small" "$larder_url/bench/small" -o /dev/null
s3 -T "$work/www/big" "$larder_url/bench/big" -o /dev/null
selected() { [[ $1 =~ ${LARDER_BENCH_ONLY:-.} ]]; }
list_name="LIST (1,000-key page of 10,000)"
selected "$list_name" && echo "== putting 10,000 keys for LIST" && {
    for n in $(seq -w 0 9999); do
        printf 'url = "%s/list/key-%s"\nupload-file = "%s"\noutput = "/dev/null"\n' "$larder_url" "$n" "$work/put-small"
    done
} >"$work/put-keys.curl" && s3 -Z --parallel-max 16 --no-progress-meter -K "$work/put-keys.curl"
# ListObjectsV2's first page (1,000 keys), signed in a header: wrk replays
# the same signed request, which stays valid for 15 minutes.
list_headers=()
while IFS= read -r line; do
    list_headers+=(-H "$line")
done < <(s3 -v -o /dev/null "$larder_url/list?list-type=2" 2>&1 | tr -d '\r' |
    sed -n 's/^> \(Authorization\|X-Amz-Date\|x-amz-content-sha256\): /\1: /Ip')

# --- measuring ---------------------------------------------------------------

ticks=$(getconf CLK_TCK)
# The server's processes: larder is one; nginx is its master and worker.
pids_of() {
    if [ "$1" = larder ]; then echo "$larder_pid"; else echo "$nginx_pid" $(pgrep -P "$nginx_pid"); fi
}
cpu_ticks() {
    local total=0 pid
    for pid in $(pids_of "$1"); do
        # Fields after the command's closing parenthesis: utime is 12th, stime 13th.
        read -r -a fields < <(sed 's/^.*) //' "/proc/$pid/stat")
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}
reset_peak() {
    local pid
    for pid in $(pids_of "$1"); do echo 5 >"/proc/$pid/clear_refs"; done
}
peak_kib() {
    local total=0 pid kib
    for pid in $(pids_of "$1"); do
        kib=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
        total=$((total + kib))
    done
    echo "$total"
}

# run SERVER CONNECTIONS URL [wrk script] -> "requests/s cpu-seconds peak-KiB"
run() {
    local server=$1 connections=$2 url=$3 script=${4:-} before after out
    shift 4 || shift $#
    reset_peak "$server"
    before=$(cpu_ticks "$server")
    if [ "$script" = HEAD ]; then
        # wrk waits for a body after HEAD; ab (-i) knows better.
        out=$(taskset -c 1 ab -q -k -i -c "$connections" -t "$seconds" -n 100000000 "$url" 2>&1)
    else
        out=$(taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" ${script:+-s "$script"} "$@" "$url")
    fi
    after=$(cpu_ticks "$server")
    if echo "$out" | grep -q "Non-2xx\|^Failed requests: *[1-9]"; then
        echo "bench-load: $server answered errors on $url:" >&2
        echo "$out" >&2
        exit 1
    fi
    local rate
    rate=$(echo "$out" | sed -n 's/^Requests\/sec: *//p; s/^Requests per second: *\([0-9.]*\).*/\1/p')
    echo "$rate $(awk -v t=$((after - before)) -v hz="$ticks" 'BEGIN { printf "%.3f", t / hz }') $(peak_kib "$server")"
}

# PUT: round robin over presigned URLs (one per key), one body for all.
make_put_script() {
    local body=$1 urls=$2 script=$3
    cat >"$script" <<EOF
local paths = {}
for line in io.lines("$urls") do paths[#paths + 1] = line:gsub("^https?://[^/]*", "") end
local file = io.open("$body", "rb")
local body = file:read("*a")
file:close()
local n = math.random(#paths)
request = function()
    n = n % #paths + 1
    return wrk.format("PUT", paths[n], nil, body)
end
EOF
}
for n in $(seq 64); do presign put "bench/put-small-$n"; done >"$work/put-small.urls"
for n in $(seq 16); do presign put "bench/put-big-$n"; done >"$work/put-big.urls"
make_put_script "$work/put-small" "$work/put-small.urls" "$work/put-small.lua"
make_put_script "$work/put-big" "$work/put-big.urls" "$work/put-big.lua"

results=()
# scenario NAME UNIT(req|MB) BYTES CONNECTIONS LARDER-URL NGINX-URL [wrk script]
scenario() {
    local name=$1 unit=$2 bytes=$3 connections=$4 larder_target=$5 nginx_target=$6 script=${7:-}
    selected "$name" || return 0
    echo "== $name" >&2
    local l n=""
    l=$(run larder "$connections" "$larder_target" "$script")
    [ "$nginx_target" = - ] || n=$(run nginx "$connections" "$nginx_target" "$script")
    results+=("$name|$unit|$bytes|$l|$n")
}
scenario "GET 4 KiB" req 4096 16 "$(presign get bench/small)" "$nginx_url/small"
scenario "GET 64 MiB" MB $((64 << 20)) 4 "$(presign get bench/big)" "$nginx_url/big"
scenario "HEAD 4 KiB" req 0 16 "$(presign head bench/small)" "$nginx_url/small" HEAD
if selected "$list_name"; then
    echo "== $list_name" >&2
    results+=("$list_name|req|0|$(run larder 4 "$larder_url/list?list-type=2" "" "${list_headers[@]}")|")
fi
scenario "PUT 4 KiB (16 clients)" req 4096 16 "$larder_url/" - "$work/put-small.lua"
scenario "PUT 1 MiB (4 clients)" MB $((1 << 20)) 4 "$larder_url/" - "$work/put-big.lua"

echo "== dd conv=fdatasync, 256 MiB" >&2
dd_out=$(dd if=/dev/zero of="$work/data/dd" bs=1M count=256 conv=fdatasync 2>&1)
rm -f "$work/data/dd"
dd_mbs=$(echo "$dd_out" | tail -1 | awk '{ for (i = 1; i <= NF; i++) if ($i == "s,") { printf "%.0f", 268435456 / $(i - 1) / 1e6 } }')

# What larder's memory is made of once the scenarios are done: its own
# heap and stacks, and the pages of its binary and libraries it touched
# (file-backed: shared page cache the kernel can drop and read again).
end_split=$(awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } /^Threads:/ { t = $2 }
    END { printf "%.1f MiB anonymous + %.1f MiB file-backed (its binary and libraries), %d threads", a / 1024, f / 1024, t }' \
    "/proc/$larder_pid/status")

# --- the table ---------------------------------------------------------------

echo
echo "larder $("$larder" --version | awk '{print $2}') vs nginx $("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///'), ${seconds}s per scenario, $(nproc) cores, $(uname -m)"
printf '%-32s %12s %14s %10s %12s %14s %10s %8s\n' scenario larder "larder CPU" "peak MiB" nginx "nginx CPU" "peak MiB" ratio
max_peak=0
for row in "${results[@]}"; do
    IFS='|' read -r name unit bytes l n <<<"$row"
    read -r l_rate l_cpu l_peak <<<"$l"
    [ "$l_peak" -le "$max_peak" ] || max_peak=$l_peak
    read -r n_rate n_cpu n_peak <<<"${n:-- - -}"
    awk -v name="$name" -v unit="$unit" -v bytes="$bytes" -v secs="$seconds" -v dd="$dd_mbs" \
        -v lr="$l_rate" -v lc="$l_cpu" -v lp="$l_peak" -v nr="$n_rate" -v nc="$n_cpu" -v np="$n_peak" '
    function speed(rate) { return unit == "MB" ? sprintf("%.0f MB/s", rate * bytes / 1e6) : sprintf("%.0f req/s", rate) }
    function cost(rate, cpu) {
        if (unit == "MB") return sprintf("%.2f s/GB", cpu / (rate * secs * bytes / 1e9))
        return sprintf("%.3f ms/req", cpu * 1000 / (rate * secs))
    }
    BEGIN {
        nginx = nr == "-" ? "-" : speed(nr); ncost = nr == "-" ? "-" : cost(nr, nc)
        npeak = nr == "-" ? "-" : sprintf("%.1f", np / 1024)
        ratio = nr != "-" ? sprintf("%.2fx", lr / nr) : (unit == "MB" && name ~ /PUT/ ? sprintf("%.2fx dd", lr * bytes / 1e6 / dd) : "-")
        printf "%-32s %12s %14s %10.1f %12s %14s %10s %8s\n", name, speed(lr), cost(lr, lc), lp / 1024, nginx, ncost, npeak, ratio
    }'
done
printf '%-32s %12s\n' "dd conv=fdatasync 1 MiB blocks" "$dd_mbs MB/s"
echo "larder resident after start-up (before any request): $(awk -v k="$idle_kib" 'BEGIN { printf "%.1f", k / 1024 }') MiB; peak over the scenarios: $(awk -v k="$max_peak" 'BEGIN { printf "%.1f", k / 1024 }') MiB"
echo "larder resident at the end: $end_split"
