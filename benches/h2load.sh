#!/usr/bin/env bash
# The Classify/GetRuleset throughput ratio under h2load (nghttp2's HTTP/2 load generator: a
# client that is not ours), the other instrument issue #12 names beside the load generator.
# The server and h2load share the machine's cores, as on a host that runs both; h2load opens
# 16 connections of 8 concurrent streams. For each language, its development ticket of median
# size (written by `loadgen --write-bodies`) is sent for SECONDS, then `GetRuleset` for as
# long, and the script prints both rates, their ratio and the server's CPU per call (user +
# system, from /proc/PID/stat), then the median ratio over the languages.
#
#   benches/h2load.sh [SECONDS] [RULES_DIR]
#   TRIAGE=path/to/other/triage benches/h2load.sh    (another build, to compare)
#
# h2load repeats one request, so the engine's caches stay warm for it: the load generator
# (`examples/loadgen.rs`), which cycles through every development ticket, is the harder test.
#
# Needs h2load (Debian: nghttp2-client) and the release binaries (`cargo build --release --bin
# triage --example loadgen`). Exit status 77 when one is missing, saying which; 1 when a call
# fails (a gRPC error carries no DATA frame, so a phase whose responses carry none failed).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-4}
rules=$(realpath "${2:-$root/rules}")
triage=${TRIAGE:-$root/target/release/triage}
loadgen=$root/target/release/examples/loadgen

if ! command -v h2load >/dev/null 2>&1; then
    echo "h2load.sh: h2load is not installed (Debian: apt-get install nghttp2-client)" >&2
    exit 77
fi
for binary in "$triage" "$loadgen"; do
    if [ ! -x "$binary" ]; then
        echo "h2load.sh: $binary is missing: cargo build --release --bin triage --example loadgen" >&2
        exit 77
    fi
done

work=$(mktemp -d)
"$loadgen" --write-bodies "$work/bodies"

port=$((20000 + RANDOM % 20000))
"$triage" serve --rules "$rules" --listen "127.0.0.1:$port" --admin-listen off >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

# The server's CPU so far, in clock ticks (utime + stime: fields 14 and 15 of proc(5)).
ticks() {
    awk '{ print $14 + $15 }' "/proc/$server/stat"
}

# phase METHOD BODY: prints "calls/s µs-per-call" for SECONDS of METHOD with BODY.
phase() {
    local before after out done rate data
    before=$(ticks)
    out=$(h2load -c 16 -m 8 -t 1 -D "$seconds" -d "$2" -H 'content-type: application/grpc' \
        -H 'te: trailers' "http://127.0.0.1:$port/triage.v1.Triage/$1" 2>&1)
    after=$(ticks)
    done=$(grep -oP 'requests: \d+ total, \d+ started, \K\d+(?= done)' <<<"$out")
    rate=$(grep -oP 'finished in [0-9.]+s, \K[0-9.]+(?= req/s)' <<<"$out")
    data=$(grep -oP 'traffic: .* \(\K\d+(?=\) data)' <<<"$out")
    if [ "${done:-0}" -eq 0 ] || [ "$((data / done))" -lt 16 ]; then
        echo "h2load.sh: $1 with $(basename "$2") failed: $out" >&2
        exit 1
    fi
    # USER_HZ is 100: a tick is 10,000 µs.
    echo "$rate $(awk -v t=$((after - before)) -v n="$done" 'BEGIN { printf "%.1f", t * 10000 / n }')"
}

# A first pass warms the server (lazily built regexes, allocator pages) and is not reported.
for body in "$work"/bodies/classify-*.bin; do
    h2load -c 4 -m 8 -t 1 -n 2000 -d "$body" -H 'content-type: application/grpc' -H 'te: trailers' \
        "http://127.0.0.1:$port/triage.v1.Triage/Classify" >/dev/null 2>&1
done

printf '%-16s %12s %8s %12s %8s %6s\n' ticket Classify/s µs/call GetRuleset/s µs/call ratio
ratios=()
for body in "$work"/bodies/classify-*.bin; do
    read -r crate ccpu < <(phase Classify "$body")
    read -r rrate rcpu < <(phase GetRuleset "$work/bodies/get-ruleset.bin")
    ratio=$(awk -v c="$crate" -v r="$rrate" 'BEGIN { printf "%.2f", c / r }')
    ratios+=("$ratio")
    name=$(basename "$body" .bin)
    printf '%-16s %12.0f %8s %12.0f %8s %6s\n' "${name#classify-}" "$crate" "$ccpu" "$rrate" "$rcpu" "$ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END { printf "median ratio Classify/GetRuleset: %s (of %d tickets)\n", r[int((NR + 1) / 2)], NR }'
