#!/usr/bin/env bash
# The Classify/GetRuleset ratio under h2load (nghttp2's HTTP/2 load generator: a client that is
# not ours), the other instrument issue #12 names beside the load generator. The server and
# h2load share the machine's cores, as on a host that runs both; h2load opens 16 connections of
# 8 concurrent streams. For each language, its development ticket of median size (written by
# `loadgen --write-bodies`) is sent for SECONDS, then `GetRuleset` for as long. The script
# prints each phase's rate and the server's CPU a call (user + system, from /proc/PID/stat),
# and two ratios against the median `GetRuleset` phase (which does not depend on the ticket):
# throughput (Classify/s over GetRuleset/s) and CPU (GetRuleset's CPU a call over Classify's).
#
#   benches/h2load.sh [SECONDS] [RULES_DIR]
#   TRIAGE=path/to/other/triage benches/h2load.sh    (another build, to compare)
#
# h2load repeats one request, so the engine's caches stay warm for it, and on shared cores the
# client caps the cheaper call's rate, so the throughput ratio is the kinder of the two: the
# load generator (`examples/loadgen.rs`), which cycles through every development ticket with
# the server on a core of its own, is the harder test.
#
# Bash and Linux (/proc, /dev/tcp). Needs h2load (Debian: nghttp2-client) and the release
# binaries (`cargo build --release --bin triage --example loadgen`). Exit status 77 when one is
# missing, saying which; 1 when the server does not start or a call fails (a gRPC error is an
# HTTP 200 without a DATA frame, so each phase must carry every call's message).
set -euo pipefail
export LC_ALL=C

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
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
"$loadgen" --write-bodies "$work/bodies"

# The server's own configuration only: a TRIAGE_* variable of the caller's (a shadow ruleset,
# TLS, a token) would change what is measured.
for variable in $(compgen -e | grep '^TRIAGE_' || true); do
    unset "$variable"
done
"$triage" serve --rules "$rules" --listen 127.0.0.1:0 --admin-listen off >"$work/server.log" 2>&1 &
server=$!
address=
for _ in $(seq 300); do
    address=$(sed -nE 's/.*triage serving grpc=([0-9.]+:[0-9]+).*/\1/p' "$work/server.log")
    [ -n "$address" ] && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$address" ]; then
    echo "h2load.sh: the server did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
fi

grpc=(-H 'content-type: application/grpc' -H 'te: trailers')

# The server's CPU so far, in clock ticks: utime + stime, fields 14 and 15 of proc(5), counted
# after the command name, which may hold spaces.
ticks() {
    sed 's/^.*) //' "/proc/$server/stat" | awk '{ print $12 + $13 }'
}

# calls_done H2LOAD_OUTPUT / data_bytes H2LOAD_OUTPUT: completed calls, DATA bytes received.
calls_done() {
    sed -nE 's/^requests: [0-9]+ total, [0-9]+ started, ([0-9]+) done, .*/\1/p' <<<"$1"
}
data_bytes() {
    sed -nE 's/^traffic: .* \(([0-9]+)\) data$/\1/p' <<<"$1"
}

# message_bytes METHOD BODY: the DATA bytes of one call (every call with BODY gets the same).
message_bytes() {
    local out
    out=$(h2load -n 1 -c 1 -d "$2" "${grpc[@]}" "http://$address/triage.v1.Triage/$1" 2>&1) || true
    data_bytes "$out"
}

# phase METHOD BODY: prints "calls/s ticks calls" for SECONDS of METHOD with BODY.
phase() {
    local before after out calls rate data size
    size=$(message_bytes "$1" "$2")
    before=$(ticks)
    out=$(h2load -c 16 -m 8 -t 1 -D "$seconds" -d "$2" "${grpc[@]}" "http://$address/triage.v1.Triage/$1" 2>&1) || true
    after=$(ticks)
    calls=$(calls_done "$out")
    rate=$(sed -nE 's/^finished in [0-9.]+s, ([0-9.]+) req\/s.*/\1/p' <<<"$out")
    data=$(data_bytes "$out")
    # Calls cut off at the end may add DATA without completing; a failed call lacks its own.
    if [ "${size:-0}" -lt 16 ] || [ "${calls:-0}" -eq 0 ] || [ "${data:-0}" -lt $((calls * size)) ] \
        || ! grep -q ' 0 failed, 0 errored' <<<"$out"; then
        echo "h2load.sh: $1 with $(basename "$2") failed (one message: ${size:-none} bytes): $out" >&2
        return 1
    fi
    echo "$rate $((after - before)) $calls"
}

# A first pass warms the server (lazily built regexes, allocator pages) and is not reported.
for body in "$work"/bodies/classify-*.bin; do
    h2load -c 4 -m 8 -t 1 -n 2000 -d "$body" "${grpc[@]}" "http://$address/triage.v1.Triage/Classify" \
        >/dev/null 2>&1 || true
done

names=() classify_rates=() classify_us=() ruleset_rates=() ruleset_us=()
for body in "$work"/bodies/classify-*.bin; do
    result=$(phase Classify "$body") || exit 1
    read -r rate ticks calls <<<"$result"
    name=$(basename "$body" .bin)
    names+=("${name#classify-}")
    classify_rates+=("$rate")
    # USER_HZ is 100 (time(7)): a tick is 10,000 µs.
    classify_us+=("$(awk -v t="$ticks" -v n="$calls" 'BEGIN { printf "%.1f", t * 10000 / n }')")
    result=$(phase GetRuleset "$work/bodies/get-ruleset.bin") || exit 1
    read -r rate ticks calls <<<"$result"
    ruleset_rates+=("$rate")
    ruleset_us+=("$(awk -v t="$ticks" -v n="$calls" 'BEGIN { printf "%.1f", t * 10000 / n }')")
done

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
ruleset_rate=$(median "${ruleset_rates[@]}")
ruleset_cpu=$(median "${ruleset_us[@]}")

printf '%-10s %12s %12s %14s %14s %12s %10s\n' ticket Classify/s "CPU us/call" GetRuleset/s "CPU us/call" "throughput" "CPU ratio"
throughput=() cpu=()
for i in "${!names[@]}"; do
    throughput+=("$(awk -v c="${classify_rates[$i]}" -v r="$ruleset_rate" 'BEGIN { printf "%.2f", c / r }')")
    cpu+=("$(awk -v c="${classify_us[$i]}" -v r="$ruleset_cpu" 'BEGIN { printf "%.2f", r / c }')")
    printf '%-10s %12.0f %12s %14.0f %14s %12s %10s\n' "${names[$i]}" "${classify_rates[$i]}" "${classify_us[$i]}" \
        "${ruleset_rates[$i]}" "${ruleset_us[$i]}" "${throughput[$i]}" "${cpu[$i]}"
done
echo "GetRuleset, median of ${#names[@]} phases: $ruleset_rate calls/s, $ruleset_cpu us of server CPU a call"
echo "median ratio Classify/GetRuleset: throughput $(median "${throughput[@]}"), CPU $(median "${cpu[@]}") (of ${#names[@]} tickets)"
