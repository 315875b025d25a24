#!/usr/bin/env python3
"""Differential check of triage's mail decoding against independent parsers.

For every message of a corpus, the decoded subject and text that `triage parse` gives are
compared with Python's `email` package (`policy.default`) and, for mail-parser's own fixtures,
with the `.json` golden parse that comes with each `.eml`. Prints a summary (JSON) with the
number of messages whose subject or text differ and why, and writes every difference to
`--details FILE` for reading.

    python3 tests/differential/compare.py target/release/triage ../shared/corpus/public/emails \
        --details /tmp/differences.jsonl

Only the standard library is used. Texts are compared as word sequences after Unicode NFC and
whitespace folding; a text differs when fewer than 90% of its words are shared (as multisets:
triage moves quoted lines and signatures into zones of their own, so order is not compared).
"""

import argparse
from collections import Counter
import email
import email.policy
import html.parser
import json
import os
import re
import subprocess
import sys
import unicodedata

SKIP_NAMES = {"LICENSE", "COPYING", "NOTICE", "README.md", "README.upstream.md"}
SKIP_EXT = {".json", ".png", ".doc", ".dat", ".jpg", ".gif", ".pdf", ".md"}


def files(root):
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            if name in SKIP_NAMES or os.path.splitext(name)[1].lower() in SKIP_EXT:
                continue
            yield os.path.join(dirpath, name)


class Text(html.parser.HTMLParser):
    """HTML to words: tags dropped, scripts and styles skipped."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1
        self.parts.append(" ")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(markup):
    parser = Text()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # noqa: BLE001 - a broken document still yields what was read
        pass
    return "".join(parser.parts)


def norm(text):
    text = unicodedata.normalize("NFC", text or "")
    return " ".join(text.split())


def words(text):
    return re.findall(r"\w+", norm(text).lower())[:3000]


def python_view(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    try:
        subject = str(msg["subject"] or "")
    except Exception as e:  # noqa: BLE001
        subject = f"<python error: {e}>"
    text, kind = "", "none"
    try:
        body = msg.get_body(preferencelist=("plain", "html"))
    except Exception:  # noqa: BLE001
        body = None
    if body is not None:
        kind = body.get_content_subtype()
        try:
            content = body.get_content()
        except Exception:  # noqa: BLE001 - unknown charset: decode the bytes leniently
            payload = body.get_payload(decode=True) or b""
            content = payload.decode("latin-1", "replace")
        if isinstance(content, bytes):
            content = content.decode("utf-8", "replace")
        text = html_text(content) if kind == "html" else content
    return subject, text, kind


def golden_view(path):
    """mail-parser's own expected parse, when the fixture has one."""
    golden = os.path.splitext(path)[0] + ".json"
    if not os.path.exists(golden):
        return None
    with open(golden, encoding="utf-8") as f:
        g = json.load(f)
    parts = g.get("parts", [])
    subject = ""
    for h in parts[0].get("headers", []) if parts else []:
        if h.get("name") == "subject":
            v = h.get("value", {})
            subject = v.get("Text", "") if isinstance(v, dict) else ""
    texts = []
    for i in g.get("text_body", []) or []:
        if i < len(parts):
            body = parts[i].get("body", {})
            if isinstance(body, dict):
                texts.append(body.get("Text") or html_text(body.get("Html") or ""))
    return subject, "\n".join(texts)


def similar(a, b):
    """Shared words over the larger side's words, as multisets: triage moves quoted lines and
    signatures into zones of their own, so word order is not comparable, word content is."""
    wa, wb = Counter(words(a)), Counter(words(b))
    if not wa and not wb:
        return 1.0
    shared = sum((wa & wb).values())
    return shared / max(sum(wa.values()), sum(wb.values()))


def subject_reason(ours, theirs):
    if "\ufffd" in ours and "\ufffd" not in theirs:
        return "ours has U+FFFD where the other decodes"
    if "\ufffd" in theirs and "\ufffd" not in ours:
        return "the other has U+FFFD where ours decodes"
    if "=?" in ours and "=?" not in theirs:
        return "encoded-word left undecoded by ours"
    if "=?" in theirs and "=?" not in ours:
        return "encoded-word left undecoded by the other"
    if re.search("[\u00c0-\u00ff][\u0080-\u00bf]", ours) and not re.search("[\u00c0-\u00ff][\u0080-\u00bf]", theirs):
        return "mojibake in ours (UTF-8 read as Latin-1)"
    if norm(ours).replace(" ", "") == norm(theirs).replace(" ", ""):
        return "whitespace between words"
    if not ours or not theirs:
        return "one side empty"
    return "other"


def text_reason(ours, theirs, kind):
    if not norm(ours) and norm(theirs):
        return "ours empty"
    if norm(ours) and not norm(theirs):
        return "the other empty"
    if "\ufffd" in ours and "\ufffd" not in theirs:
        return "ours has U+FFFD where the other decodes"
    if "\ufffd" in theirs and "\ufffd" not in ours:
        return "the other has U+FFFD where ours decodes"
    if kind == "html":
        return "HTML rendering"
    return "other"


def triage_parse(binary, paths):
    out = {}
    for i in range(0, len(paths), 200):
        batch = paths[i : i + 200]
        run = subprocess.run([binary, "parse", *batch], capture_output=True, check=False)
        for line in run.stdout.decode("utf-8", "replace").splitlines():
            v = json.loads(line)
            out[v["id"]] = v
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("triage")
    ap.add_argument("corpus")
    ap.add_argument("--details", help="write every difference to this JSONL file")
    args = ap.parse_args()
    paths = list(files(args.corpus))
    ours_all = triage_parse(args.triage, paths)
    summary = {"messages": len(paths), "refused": 0, "subject_differs": {}, "text_differs": {}, "golden": {"messages": 0, "subject_differs": 0, "text_differs": 0}}
    details = open(args.details, "w", encoding="utf-8") if args.details else None
    for path in paths:
        ours = ours_all.get(path)
        if ours is None or "error" in ours:
            summary["refused"] += 1
            continue
        with open(path, "rb") as f:
            raw = f.read()
        our_text = "\n".join([ours.get("body", ""), ours.get("signature", ""), ours.get("quoted", "")])
        subject, text, kind = python_view(raw)
        if norm(ours["subject"]) != norm(subject):
            reason = subject_reason(ours["subject"], subject)
            summary["subject_differs"][reason] = summary["subject_differs"].get(reason, 0) + 1
            if details:
                details.write(json.dumps({"file": path, "what": "subject", "vs": "python", "reason": reason, "ours": ours["subject"], "theirs": subject}, ensure_ascii=False) + "\n")
        score = similar(our_text, text)
        if score < 0.9:
            reason = text_reason(our_text, text, kind)
            summary["text_differs"][reason] = summary["text_differs"].get(reason, 0) + 1
            if details:
                details.write(json.dumps({"file": path, "what": "text", "vs": "python", "reason": reason, "similarity": round(score, 3), "ours": our_text[:600], "theirs": text[:600]}, ensure_ascii=False) + "\n")
        golden = golden_view(path)
        if golden is not None:
            summary["golden"]["messages"] += 1
            if norm(ours["subject"]) != norm(golden[0]):
                summary["golden"]["subject_differs"] += 1
                if details:
                    details.write(json.dumps({"file": path, "what": "subject", "vs": "mail-parser golden", "ours": ours["subject"], "theirs": golden[0]}, ensure_ascii=False) + "\n")
            if similar(our_text, golden[1]) < 0.9:
                summary["golden"]["text_differs"] += 1
                if details:
                    details.write(json.dumps({"file": path, "what": "text", "vs": "mail-parser golden", "ours": our_text[:600], "theirs": golden[1][:600]}, ensure_ascii=False) + "\n")
    summary["subject_differs_total"] = sum(summary["subject_differs"].values())
    summary["text_differs_total"] = sum(summary["text_differs"].values())
    json.dump(summary, sys.stdout, indent=1, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
