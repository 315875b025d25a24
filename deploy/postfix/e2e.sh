#!/usr/bin/env bash
# End-to-end check of triage's milter with a real Postfix, on 127.0.0.1 only.
#
# Starts a private Postfix (main.cf and master.cf of this directory, in a temporary
# directory; the machine's own Postfix configuration is not touched) with triage as its milter
# in routing mode (intake mailbox support@triage.test), sends messages over SMTP and with
# sendmail(1), waits for delivery to Maildirs, and checks every delivered copy:
#   - it carries X-Triage-Queue/-Confidence/-Destination/-Needs-Review/-Ruleset with the
#     verdict `triage classify` gives for the same file;
#   - no inbound X-Triage-* header survives;
#   - it was delivered where the verdict routes it: the queue's mailbox for confident verdicts
#     of a queue with one (with X-Triage-Original-Recipient), the intake mailbox otherwise;
#   - a message over --max-message-bytes says so (X-Triage-Note) and is not routed.
#
# Usage: deploy/postfix/e2e.sh            (as root: Postfix's master starts as root)
#   TRIAGE=path/to/triage   the binary (default: target/debug/triage, built when missing)
#   KEEP=1                  keep the temporary directory (mail, logs) for inspection
# Needs: postfix, jq, bash. Exit status: 0 all checks passed, 1 a check failed, 77 skipped.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

skip() { echo "e2e: skipped: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "run as root (Postfix's master process starts as root)"
command -v postfix >/dev/null || skip "postfix is not installed (Debian: apt-get install postfix)"
command -v jq >/dev/null || skip "jq is not installed (Debian: apt-get install jq)"

triage=${TRIAGE:-$root/target/debug/triage}
if [ ! -x "$triage" ]; then
  (cd "$root" && cargo build --quiet)
fi

work=$(mktemp -d /tmp/triage-postfix.XXXXXX)
chmod 755 "$work"
triage_pid=
cleanup() {
  postfix -c "$work/etc" stop >/dev/null 2>&1 || true
  [ -n "$triage_pid" ] && kill "$triage_pid" 2>/dev/null && wait "$triage_pid" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then echo "e2e: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Free loopback ports.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    port_in_use "$p" || { echo "$p"; return; }
  done
}
smtp_port=$(free_port)
milter_port=$(free_port)
grpc_port=$(free_port)
admin_port=$(free_port)

# ---------------------------------------------------------------- Postfix
mkdir -p "$work/etc" "$work/mail" "$work/sent" "$work/spool" "$work/data"
chown nobody:nogroup "$work/mail"
chown postfix "$work/data"
fill() {
  sed -e "s|@WORK@|$work|g" -e "s|@SMTP@|$smtp_port|g" -e "s|@MILTER@|$milter_port|g" \
      -e "s|@UID@|$(id -u nobody)|g" -e "s|@GID@|$(getent group nogroup | cut -d: -f3)|g" "$1"
}
fill "$here/main.cf" >"$work/etc/main.cf"
fill "$here/master.cf" >"$work/etc/master.cf"
# A Maildir <domain>/<local part>/ for the intake, a second mailbox, and every queue
# destination of the ruleset (regexp tables may not compute mailbox paths).
for addr in support@triage.test archive@triage.test \
  $(sed -n 's/^destination = "\(.*@.*\)"$/\1/p' "$root"/rules/*.toml); do
  echo "$addr ${addr#*@}/${addr%@*}/"
done >"$work/etc/mailboxes"

# ---------------------------------------------------------------- triage
max_bytes=131072
start_triage() { # extra serve flags
  "$triage" serve --rules "$root/rules" \
    --listen "127.0.0.1:$grpc_port" --admin-listen "127.0.0.1:$admin_port" \
    --milter-listen "inet:127.0.0.1:$milter_port" --max-message-bytes "$max_bytes" "$@" \
    >>"$work/triage.log" 2>&1 &
  triage_pid=$!
  for _ in $(seq 100); do port_in_use "$milter_port" && break; sleep 0.1; done
  port_in_use "$milter_port" || { cat "$work/triage.log"; echo "e2e: triage did not start"; exit 1; }
}
stop_triage() {
  kill "$triage_pid"
  wait "$triage_pid" || true
  triage_pid=
}
start_triage --milter-route --milter-intake support@triage.test

postfix -c "$work/etc" start >"$work/postfix-start.log" 2>&1 \
  || { cat "$work/postfix-start.log" "$work/maillog" 2>/dev/null; echo "e2e: postfix did not start"; exit 1; }
for _ in $(seq 100); do port_in_use "$smtp_port" && break; sleep 0.1; done

echo "e2e: Postfix $(postconf -h mail_version) on 127.0.0.1:$smtp_port, triage's milter on 127.0.0.1:$milter_port (max $max_bytes bytes)"
echo "e2e: phase 1: triage routes (--milter-route --milter-intake support@triage.test)"

# ---------------------------------------------------------------- sending
# One SMTP transaction over bash's /dev/tcp: no client needed.
say() { printf '%s\r\n' "$1" >&3; }
expect() {
  local line
  while IFS= read -r -t 30 line <&3; do
    line=${line%$'\r'}
    if [[ $line =~ ^[0-9]{3}\  ]]; then
      [[ ${line:0:3} == "$1" ]] && return 0
      echo "e2e: SMTP: expected $1, got: $line" >&2
      return 1
    fi
  done
  echo "e2e: SMTP: no reply (expected $1)" >&2
  return 1
}
smtp_send() { # FILE RCPT...
  local file=$1 r
  shift
  exec 3<>"/dev/tcp/127.0.0.1/$smtp_port"
  expect 220
  say "EHLO client.triage.test"; expect 250
  say "MAIL FROM:<sender@example.org>"; expect 250
  for r in "$@"; do say "RCPT TO:<$r>"; expect 250; done
  say "DATA"; expect 354
  # CRLF line ends and dot-stuffing, as an SMTP client sends a file.
  awk '{ sub(/\r$/, ""); if (substr($0, 1, 1) == ".") $0 = "." $0; printf "%s\r\n", $0 }' "$file" >&3
  say "."; expect 250
  say "QUIT"; expect 221
  exec 3>&-
}

# Each message is a copy of its file with an X-Test-Id first line, so its delivered copies can
# be found; `triage classify` is run on exactly that copy.
n=0
by_smtp=0
by_sendmail=0
declare -A how rcpts
send() { # smtp|sendmail FILE RCPT...
  local via=$1 file=$2
  shift 2
  n=$((n + 1))
  { printf 'X-Test-Id: %s\n' "$n"; cat "$file"; } >"$work/sent/$n.eml"
  how[$n]="$via $(basename "$file")"
  rcpts[$n]="$*"
  if [ "$via" = smtp ]; then
    smtp_send "$work/sent/$n.eml" "$@"
    by_smtp=$((by_smtp + 1))
  else
    by_sendmail=$((by_sendmail + 1))
    sendmail -C "$work/etc" -f sender@example.org "$@" <"$work/sent/$n.eml"
  fi
}

for f in "$root"/tests/data/dev/emails/*.eml; do
  send smtp "$f" support@triage.test
done
send smtp "$here/messages/forged.eml" support@triage.test
send smtp "$here/messages/unsure.eml" support@triage.test
send smtp "$root/tests/data/dev/emails/d-eml-03.eml" support@triage.test archive@triage.test
send sendmail "$root/tests/data/dev/emails/d-eml-07.eml" support@triage.test
send sendmail "$root/tests/data/dev/emails/d-eml-12.eml" support@triage.test
big="$work/big.eml"
{
  printf 'From: Jose Garcia <jose@example.es>\nSubject: Pedido no recibido - Proteccion al Comprador\n\n'
  printf 'Mi pedido no ha llegado y quiero abrir una reclamacion.\n'
  for i in $(seq 5000); do printf 'Historial del pedido, linea %s: sin novedades.\n' "$i"; done
} >"$big"
send smtp "$big" support@triage.test
sent=$n

# ---------------------------------------------------------------- checks
delivered() { find "$work/mail" -path '*/new/*' -type f 2>/dev/null | wc -l; }
wait_for() { # COUNT: wait until that many copies were delivered in all
  for _ in $(seq 600); do
    [ "$(delivered)" -ge "$1" ] && return
    sleep 0.1
  done
}
failures=0
fail() { echo "  FAIL: $*"; failures=$((failures + 1)); }
header() { # FILE NAME: every value of header NAME, one per line
  awk -v name="$2" '/^\r?$/ { exit } tolower($0) ~ "^" tolower(name) ":" { sub(/^[^:]*:[ \t]*/, ""); sub(/\r$/, ""); print }' "$1"
}
table_head() { printf '\n%-3s %-26s %-18s %-38s %-4s %s\n' "#" "sent" "queue" "delivered to" "same" "notes"; }
check() { # FIRST LAST by: milter (routing mode) or header_checks
  local i by=$3 verdict queue dest review size copies routed places copy place same notes want last
  for i in $(seq "$1" "$2"); do
    verdict=$("$triage" classify --rules "$root/rules" "$work/sent/$i.eml" 2>/dev/null)
    queue=$(jq -r .queue <<<"$verdict")
    dest=$(jq -r .destination <<<"$verdict")
    review=$(jq -r .needs_review <<<"$verdict")
    size=$(wc -c <"$work/sent/$i.eml")
    copies=$(grep -rlx "X-Test-Id: $i" "$work/mail" || true)
    if [ -z "$copies" ]; then
      fail "message $i (${how[$i]}) was not delivered"
      continue
    fi
    routed=no
    if [ "$by" = milter ]; then
      if [ "$review" = false ] && [ -n "$dest" ] && [ "$size" -le "$max_bytes" ]; then routed=yes; fi
    elif [ -n "$dest" ]; then
      routed=yes
    fi
    places=()
    for copy in $copies; do
      place=${copy#"$work/mail/"}
      place=${place%%/new/*}
      places+=("$place")
      same=yes
      [ "$(header "$copy" X-Triage-Queue)" = "$queue" ] || same=no
      jq -e --arg c "$(header "$copy" X-Triage-Confidence)" '.confidence == ($c | tonumber)' <<<"$verdict" >/dev/null || same=no
      [ "$(header "$copy" X-Triage-Destination)" = "$dest" ] || same=no
      [ "$(header "$copy" X-Triage-Needs-Review)" = "$review" ] || same=no
      [ "$(header "$copy" X-Triage-Ruleset)" = "$(jq -r .ruleset_version <<<"$verdict")" ] || same=no
      [ "$same" = yes ] || fail "message $i in $place: headers differ from classify: $(grep -i '^X-Triage' "$copy" | tr -d '\r' | tr '\n' ';')"
      [ "$(header "$copy" X-Triage-Queue | wc -l)" = 1 ] || fail "message $i: X-Triage-Queue is not unique"
      if grep -qi '^X-Triage-Destination: attacker' "$copy"; then fail "message $i: a forged header survived"; fi
      notes=()
      original=$(header "$copy" X-Triage-Original-Recipient)
      note=$(header "$copy" X-Triage-Note)
      [ -n "$original" ] && notes+=("original=$original")
      [ -n "$note" ] && notes+=("note: $note")
      if [ "$size" -gt "$max_bytes" ] && [ -z "$note" ]; then fail "message $i: over $max_bytes bytes without X-Triage-Note"; fi
      # The milter reads at most max_bytes, but the message is delivered whole.
      last=$(grep -v '^[[:space:]]*$' "$work/sent/$i.eml" | tail -n 1 | tr -d '\r')
      if [ -n "$last" ] && ! grep -qF -- "$last" "$copy"; then fail "message $i: not delivered whole"; fi
      notes+=("$(grep -ci '^X-Triage-' "$copy") X-Triage-* headers")
      printf '%-3s %-26s %-18s %-38s %-4s %s\n' "$i" "${how[$i]:0:26}" "$queue" "$place" "$same" "${notes[*]}"
      if [ "$by" = milter ] && [ "$routed" = yes ] && [[ $place == trustedshops.com/* ]] \
        && [ "$original" != support@triage.test ]; then
        fail "message $i: routed without X-Triage-Original-Recipient"
      fi
    done
    # Where it should be: with the milter routing, the queue's mailbox for a confident verdict
    # of a whole message, the intake mailbox otherwise, and another recipient keeps its copy;
    # with milter_header_checks, the queue's mailbox whenever it has one.
    want="triage.test/support"
    if [ "$routed" = yes ]; then want="trustedshops.com/${dest%@*}"; fi
    [[ " ${places[*]} " == *" $want "* ]] || fail "message $i (${how[$i]}) expected in $want, delivered to ${places[*]}"
    if [[ "${rcpts[$i]}" == *archive@triage.test* ]]; then
      [[ " ${places[*]} " == *" triage.test/archive "* ]] || fail "message $i: the second recipient lost its copy"
    fi
  done
}

wait_for $((sent + 1)) # the message to two recipients is delivered twice
table_head
check 1 "$sent" milter
phase1=$sent
routed_by_milter=$(grep -c 'milter: routed' "$work/triage.log" || true)
forged_removed=$(grep -c 'removed inbound' "$work/triage.log" || true)

# ---------------------------------------------------------------- phase 2
# Tagging only, and Postfix routes on the headers: milter_header_checks (plain header_checks
# never see headers a milter adds), REDIRECT by X-Triage-Queue. Postfix stops inspecting
# milter headers at the first REDIRECT, so this routes every verdict with a mailbox, confident
# or not, and all recipients of the message go along.
echo
echo "e2e: phase 2: triage tags only; Postfix routes with milter_header_checks on X-Triage-Queue (every verdict)"
stop_triage
start_triage
awk '/^\[\[queue\]\]/ { id = "" } /^id = / { gsub(/"/, "", $3); id = $3 }
     /^destination = "[^"]+"/ { gsub(/"/, "", $3); printf "/^X-Triage-Queue: %s$/ REDIRECT %s\n", id, $3 }' \
  "$root"/rules/00-queues.toml >"$work/etc/triage_routes"
echo "milter_header_checks = regexp:$work/etc/triage_routes" >>"$work/etc/main.cf"
postfix -c "$work/etc" reload >/dev/null 2>&1
before=$(delivered)
send smtp "$root/tests/data/dev/emails/d-eml-16.eml" support@triage.test
send smtp "$here/messages/unsure.eml" support@triage.test
send sendmail "$root/tests/data/dev/emails/d-eml-14.eml" support@triage.test
send smtp "$root/tests/data/dev/emails/d-eml-11.eml" support@triage.test
sent=$n
wait_for $((before + sent - phase1))
table_head
check $((phase1 + 1)) "$sent" header_checks

echo
echo "e2e: $sent messages sent ($by_smtp over SMTP, $by_sendmail with sendmail), $(delivered) copies delivered"
echo "e2e: Postfix warnings: $(grep -c 'warning:' "$work/maillog" || true) ($(grep -c 'warning:.*milter' "$work/maillog" || true) about the milter)"
grep 'warning:' "$work/maillog" | head -5 || true
echo "e2e: triage log (phase 1): $routed_by_milter messages routed, $forged_removed with forged X-Triage-* headers removed"
if [ "$failures" -gt 0 ]; then
  echo "e2e: $failures check(s) FAILED"
  KEEP=1
  exit 1
fi
echo "e2e: all checks passed"
