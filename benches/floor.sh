#!/usr/bin/env bash
# What the two command-line runs of issue #12 cost without the ruleset: the 1,000-email sample
# of the public SpamAssassin corpus through `triage classify`, and 50,000 tickets through
# `triage classify --jsonl`, each with the default ruleset and with a ruleset of one rule (the
# default queues and one keyword). The one-rule run is the floor that no work on the rules'
# scan and evaluation can go below: reading the files, parsing the mail (mail-parser), HTML to
# text (html2text), the quote split, folding, language detection and writing the verdicts.
#
#   benches/floor.sh [RUNS] [RULES_DIR]
#   TRIAGE=path/to/other/triage benches/floor.sh    (another build)
#
# Each run is pinned to one core (taskset, when present) as the issue measures, the two
# rulesets in turn; the script prints the median CPU (user + system, bash's `times` of the
# child) of RUNS runs (default 5) for each of the four, and the share of each run that the
# ruleset accounts for. RULES_DIR (default: rules/) must hold `00-queues.toml` with a
# `customer_care` queue, which the one-rule ruleset takes from it. To compare with another
# build's floor, run the script with TRIAGE set to it; paired ratios between two builds are
# farm-bench's job.
#
# The emails are every sixth file of the corpus's five folders in name order, as
# `benches/mail.rs` takes them; the tickets are the first five blind tuning halves
# (tests/data/blind{,2,3,4,5}/tuning) repeated to 50,000 lines. Exit status 77 when the corpus
# (../shared) or the release binary is missing, saying which; 1 when a run fails.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
if ! [[ $runs =~ ^[1-9][0-9]*$ ]]; then
    echo "floor.sh: RUNS must be a positive number, not '$runs'" >&2
    exit 2
fi
rules=$(realpath "${2:-$root/rules}")
triage=${TRIAGE:-$root/target/release/triage}
corpus=$(realpath -m "$root/../shared/corpus/public/emails/spamassassin")

if [ ! -x "$triage" ]; then
    echo "floor.sh: $triage is missing: cargo build --release --bin triage" >&2
    exit 77
fi
if [ ! -d "$corpus" ]; then
    echo "floor.sh: $corpus is absent (the public corpus in ../shared)" >&2
    exit 77
fi
pin=()
if command -v taskset >/dev/null 2>&1; then
    pin=(taskset -c 0)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir "$work/one-rule"
cp "$rules/00-queues.toml" "$work/one-rule/"
cat >"$work/one-rule/one.toml" <<'EOF'
[[rule]]
id = "floor.invoice"
queue = "customer_care"
weight = 1.5
any = ["invoice"]
EOF

find "$corpus" -mindepth 2 -maxdepth 2 -type f | sort | awk 'NR % 6 == 1 && n++ < 1000' >"$work/emails"
tickets=()
for set in blind blind2 blind3 blind4 blind5; do
    tickets+=("$root/tests/data/$set/tuning/tickets.jsonl")
done
awk '{ line[NR] = $0 } END { for (i = 0; i < 50000; i++) print line[i % NR + 1] }' "${tickets[@]}" >"$work/tickets.jsonl"

# The CPU seconds (user + system) of one run of the command; a failed run stops the script.
cpu() {
    local t
    # `times` in the subshell that ran the command: its second line is the children's.
    t=$(
        "$@" >/dev/null || exit 1
        times
    ) || {
        echo "floor.sh: $* failed" >&2
        exit 1
    }
    awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' <<<"$t"
}

median() {
    sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

mapfile -t email_files <"$work/emails"
emails() {
    "${pin[@]}" "$triage" classify --rules "$1" "${email_files[@]}"
}
jsonl() {
    "${pin[@]}" "$triage" classify --rules "$1" --jsonl <"$work/tickets.jsonl"
}

printf '%-40s %12s %12s %14s\n' "run (median of $runs, CPU s)" "ruleset" "one rule" "ruleset share"
for run in emails jsonl; do
    full=()
    floor=()
    for _ in $(seq "$runs"); do
        full+=("$(cpu "$run" "$rules")")
        floor+=("$(cpu "$run" "$work/one-rule")")
    done
    name="1,000 emails, triage classify"
    [ "$run" = jsonl ] && name="50,000 tickets, classify --jsonl"
    awk -v n="$name" -v f="$(printf '%s\n' "${full[@]}" | median)" -v o="$(printf '%s\n' "${floor[@]}" | median)" \
        'BEGIN { printf "%-40s %12.3f %12.3f %13.0f%%\n", n, f, o, 100 * (f - o) / f }'
done
