#!/usr/bin/env bash
# Same verdicts before and after: classifies every labelled set of the repository (dev, tuning,
# held-out, blind; tickets through `classify --jsonl`, emails through `classify`) and, when
# ../shared is there, the whole public SpamAssassin corpus, with two triage binaries, and
# diffs the verdicts line by line. Used to keep behaviour identical across optimisations.
#
#   tests/differential/verdicts.sh OLD_TRIAGE NEW_TRIAGE [RULES_DIR]
#
# Exit status: 0 when every verdict is identical, 1 otherwise (the first differences shown).
set -euo pipefail

old=$(realpath "$1")
new=$(realpath "$2")
root=$(cd "$(dirname "$0")/../.." && pwd)
rules=$(realpath "${3:-$root/rules}")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$root"

# The inputs: JSONL files of tickets, and lists of email files (one list per set).
jsonl=(tests/data/dev/tickets.jsonl tests/data/tuning/tickets.jsonl tests/data/holdout/tickets.jsonl)
jsonl+=(tests/data/blind/*/tickets.jsonl tests/data/blind/*/out_of_scope.jsonl tests/data/blind[0-9]*/*/tickets.jsonl)
find tests/data -name '*.eml' -type f | LC_ALL=C sort >"$out/emails-own"
lists=("$out/emails-own")
corpus=../shared/corpus/public/emails/spamassassin
if [ -d "$corpus" ]; then
    find "$corpus" -type f ! -name '*.md' ! -name LICENSE ! -name NOTICE | LC_ALL=C sort >"$out/emails-public"
    lists+=("$out/emails-public")
else
    echo "note: $corpus is absent; the public corpus is not compared" >&2
fi

status=0
compare() { # name, old output, new output
    local n
    n=$(wc -l <"$2")
    if cmp -s "$2" "$3"; then
        printf '%-44s %6d verdicts identical\n' "$1" "$n"
    else
        printf '%-44s %6d verdicts, %d lines differ\n' "$1" "$n" "$(diff "$2" "$3" | grep -c '^>' || true)"
        diff "$2" "$3" | head -6 || true # (diff exits 1 on a difference; the run goes on)
        status=1
    fi
}

for f in "${jsonl[@]}"; do
    [ -f "$f" ] || continue
    "$old" classify --rules "$rules" --jsonl <"$f" >"$out/old" 2>/dev/null || true
    "$new" classify --rules "$rules" --jsonl <"$f" >"$out/new" 2>/dev/null || true
    compare "$f" "$out/old" "$out/new"
done
for list in "${lists[@]}"; do
    # (xargs batches the files; each batch prints one verdict per file, in order.)
    xargs -d '\n' "$old" classify --rules "$rules" <"$list" >"$out/old" 2>/dev/null || true
    xargs -d '\n' "$new" classify --rules "$rules" <"$list" >"$out/new" 2>/dev/null || true
    compare "$(basename "$list") ($(wc -l <"$list") files)" "$out/old" "$out/new"
done
exit $status
