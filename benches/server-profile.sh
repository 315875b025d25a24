#!/usr/bin/env bash
# Where a `Classify` call's server CPU goes: runs `triage serve` on one core and the load
# generator on another, records the server with perf (DWARF call stacks, 499 samples a second)
# during the load generator's `Classify` phase only, and writes
#
#   OUT/classify.folded   the collapsed stacks (inferno-collapse-perf)
#   OUT/classify.svg      the flame graph (inferno-flamegraph)
#   OUT/loadgen.txt       the load generator's report (server CPU a call, the ratio)
#
# and prints the share of the samples in each stage: the engine's parts, the intake, the
# handler, HTTP/2, the kernel.
#
#   benches/server-profile.sh [OUT_DIR] [RULES_DIR]
#   benches/server-profile.sh --summary FILE.folded    (the shares of an earlier profile)
#
# Needs perf (Debian: linux-perf) and inferno (`cargo install inferno`), and the release
# binaries (`cargo build --release --bin triage --example loadgen`). Exit status 77 when a tool
# is missing, saying which.
set -euo pipefail

# The share of the samples of collapsed stacks FILE in each stage: each sample goes to the
# first stage its stack matches, in this order.
summary() {
    awk '
{
    n = $NF; $NF = ""; s = $0; total += n
    if (s ~ /Engine::checked/) {
        if (s ~ /regex_automata/) k = "engine: regex attempts"
        else if (s ~ /scan_folded/) k = "engine: the scan (folding, keyword trie walk, literal gate)"
        else if (s ~ /stopword|lang::|whatlang/) k = "engine: language detection"
        else if (s ~ /spans|sentences|structure/) k = "engine: sentence spans and structure"
        else if (s ~ /fold_into/) k = "engine: other folding"
        else k = "engine: rule evaluation, scoring, the verdict"
    }
    else if (s ~ /intake|Message::from|quote::split/) k = "intake: fields, quote and signature split"
    else if (s ~ /entry_SYSCALL|do_syscall|tcp_|ep_poll|_raw_spin/) k = "kernel: syscalls, loopback TCP, epoll"
    else if (s ~ /ProstCodec|server::grpc|prost::/) k = "the gRPC handler: decoding, conversion, metrics, encoding"
    else if (s ~ /h2::|hyper/) k = "HTTP/2: h2, hyper"
    else if (s ~ /tonic|tower|axum/) k = "tonic, tower"
    else if (s ~ /mi_malloc|mi_free|_mi_/) k = "allocator"
    else if (s ~ /tokio/) k = "tokio runtime"
    else k = "other"
    share[k] += n
}
END { for (k in share) printf "%5.1f%%  %s\n", 100 * share[k] / total, k }
' "$1" | sort -rn
}

if [ "${1:-}" = --summary ]; then
    summary "$2"
    exit 0
fi

root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/target/server-profile}")
rules=$(realpath "${2:-$root/rules}")
triage=$root/target/release/triage
loadgen=$root/target/release/examples/loadgen

for tool in perf inferno-collapse-perf inferno-flamegraph; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "server-profile: $tool is not installed (perf: apt-get install linux-perf; inferno: cargo install inferno)" >&2
        exit 77
    fi
done
for binary in "$triage" "$loadgen"; do
    if [ ! -x "$binary" ]; then
        echo "server-profile: $binary is missing: cargo build --release --bin triage --example loadgen" >&2
        exit 77
    fi
done
mkdir -p "$out"

# The server on the first core, the load on the last: with two or more cores they do not
# contend, so the profile is the server's own.
last=$(($(nproc) - 1))
port=$((20000 + RANDOM % 20000))
taskset -c 0 "$triage" serve --rules "$rules" --listen "127.0.0.1:$port" --admin-listen off >"$out/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

# Classify for 6 s, then GetRuleset for 6 s: perf records seconds 1 to 5, inside Classify.
taskset -c "$last" "$loadgen" --addr "http://127.0.0.1:$port" --concurrency 32 --seconds 6 \
    --server-pid "$server" >"$out/loadgen.txt" 2>&1 &
load=$!
sleep 1
perf record -q -F 499 -g --call-graph dwarf,16384 -p "$server" -o "$out/perf.data" -- sleep 4 >/dev/null 2>&1
wait "$load"

perf script -i "$out/perf.data" 2>/dev/null | inferno-collapse-perf >"$out/classify.folded"
inferno-flamegraph --minwidth 0.25 --title "triage serve: a Classify call under load" \
    <"$out/classify.folded" >"$out/classify.svg"
rm -f "$out/perf.data"

grep -E "per call|ratio" "$out/loadgen.txt" || true
echo
summary "$out/classify.folded"
echo
echo "flame graph: $out/classify.svg"
