#!/usr/bin/env bash
# Fuzzes larder's parsers with cargo-fuzz (libFuzzer): builds the targets in
# fuzz/ once, then runs each for SECONDS (default 600), one after another,
# on its committed seeds (fuzz/seeds/<target>) and the corpus grown by
# earlier runs (fuzz/corpus/<target>, not committed). Any crash, timeout or
# out-of-memory fails the script; the input is kept under
# fuzz/artifacts/<target>/ with the fuzzer's log (fuzz-0.log).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default: every target)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fuzz_dir=$root/fuzz

seconds=${1:-600}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "== building the fuzz targets"
cargo +nightly fuzz build --fuzz-dir "$fuzz_dir"
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin_dir=$fuzz_dir/target/$triple/release

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir "$fuzz_dir")
fi

summary=()
failed=()
for target in "${targets[@]}"; do
    corpus=$fuzz_dir/corpus/$target
    seeds=$fuzz_dir/seeds/$target
    artifacts=$fuzz_dir/artifacts/$target
    mkdir -p "$corpus" "$seeds" "$artifacts"
    log=$artifacts/fuzz.log
    echo "== fuzzing $target for ${seconds}s"
    start=$(date +%s)
    status=0
    # The built binary is run directly, so a source edit during a long run
    # does not trigger a rebuild. libFuzzer writes new inputs to the first
    # corpus directory only; -jobs mode writes its log to fuzz-0.log in the
    # working directory and copies it to stderr when the job ends.
    (
        cd "$artifacts"
        "$bin_dir/$target" -artifact_prefix="$artifacts/" -max_total_time="$seconds" -jobs=1 -workers=1 \
            -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$corpus" "$seeds"
    ) >"$log" 2>&1 || status=$?
    elapsed=$(($(date +%s) - start))
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    line=$(printf '%-12s %5ss  %12s executions' "$target" "$elapsed" "${executions:-?}")
    if [ "$status" -ne 0 ] || [ -z "$executions" ]; then
        failed+=("$target")
        line="$line  FAILED (exit $status)"
        echo "!! $target FAILED (exit $status); from its log ($log):" >&2
        grep -m 1 -A 4 'panicked at' "$log" | cut -c 1-500 >&2 || true
        grep -E '^(==[0-9]+== ERROR|SUMMARY|artifact_prefix|stat::)' "$log" | cut -c 1-500 >&2 || tail -n 30 "$log" >&2
        find "$artifacts" -maxdepth 1 -type f -newermt "@$start" \
            \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) -printf '!! input: %p\n' >&2
    fi
    echo "$line"
    summary+=("$line")
done

echo "== fuzzing summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "!! FUZZING FAILED: ${failed[*]} (inputs and logs in fuzz/artifacts/)" >&2
    exit 1
fi
