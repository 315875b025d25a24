//! The self-contained HTML report: one page, inline CSS and SVG, no script, no external asset,
//! so it opens offline and can be mailed or attached to a ruleset change.
//!
//! Sections: the headline figures, the queue distribution, the per-queue table, the confusion
//! heat map, the reliability diagram, accuracy per language, the rule mass-check and, with
//! `--compare-rules`, the transition table. Sections that need labels say so when there are
//! none. [`svg`] draws the charts.

pub mod svg;

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::eval::Summary;

/// What the report says about the run itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Context {
    /// The ruleset (or server ruleset) that decided.
    pub ruleset_version: String,
    /// The compared ruleset, with `--compare-rules`.
    pub compare_version: Option<String>,
    /// The inputs as given.
    pub inputs: Vec<String>,
    /// `I/N` with `--shard`.
    pub shard: Option<String>,
    /// For a summary made by `triage replay merge`: the parts merged (`I/N` for a shard,
    /// `all` for a whole run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<String>,
    /// Wall time of the replay (of a merge: the longest part's, as they ran side by side).
    pub elapsed_seconds: f64,
}

/// Most rules listed in the mass-check table (the most fired first).
const MAX_RULES: usize = 40;

const STYLE: &str = r#"
:root{--ink:#1f2733;--muted:#6b7685;--line:#e3e7ed;--bg:#f6f8fb;--blue:#3b6fd8;--good:#2e7d32;--bad:#c62828}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:28px 28px 48px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:18px;margin:0 0 12px}
.sub{color:var(--muted);margin:0 0 22px}
.sub code{background:#e9edf3;padding:1px 5px;border-radius:4px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;margin-bottom:22px}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:26px;font-weight:650;margin-top:2px}
.card .d{color:var(--muted);font-size:12px}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin-bottom:18px;overflow-x:auto}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:18px}
.grid2 section{margin-bottom:0}
.note{color:var(--muted);font-size:13px;margin:6px 0 0}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{font-size:12px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.03em}
th:first-child,td:first-child{text-align:left}
td.l{text-align:left}
tr:last-child td{border-bottom:0}
.meter{vertical-align:middle;margin-left:8px}
.warn{color:var(--bad);font-weight:600}
.ok{color:var(--good);font-weight:600}
.chart{max-width:100%;height:auto;display:block}
.chart .lbl{font-size:12px;fill:var(--ink)}
.chart .num{font-size:11px;fill:var(--ink)}
.chart .muted{fill:var(--muted)}
.chart .cell{font-size:12px;font-weight:600}
.chart .axis{font-size:12px;fill:var(--ink)}
.chart .tiny{font-size:10px;fill:var(--muted)}
.arrow{color:var(--muted);padding:0 6px}
@media (max-width:900px){.grid2{grid-template-columns:1fr}}
"#;

/// Escapes text for HTML (and SVG) content and attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{:.1}%", v * 100.0))
}

fn num(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// Renders the report page.
pub fn render(s: &Summary, context: &Context) -> String {
    let mut page = String::with_capacity(64 * 1024);
    let _ = write!(
        page,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>triage replay report</title><style>{STYLE}</style></head><body><main>"#
    );
    let inputs = context
        .inputs
        .iter()
        .map(|i| format!("<code>{}</code>", esc(i)))
        .collect::<Vec<_>>();
    let _ = write!(
        page,
        r#"<h1>Replay report</h1><p class="sub">{} · ruleset <code>{}</code>{}{} · {:.1} s</p>"#,
        inputs.join(" "),
        esc(&context.ruleset_version),
        context
            .compare_version
            .as_ref()
            .map_or(String::new(), |v| format!(
                " compared with <code>{}</code>",
                esc(v)
            )),
        match (&context.shard, context.merged.as_slice()) {
            (Some(sh), _) => format!(" · shard {}", esc(sh)),
            (None, []) => String::new(),
            (None, parts) => format!(
                " · merged from {} parts ({})",
                parts.len(),
                esc(&parts.join(", "))
            ),
        },
        context.elapsed_seconds
    );
    cards(&mut page, s);
    distribution(&mut page, s);
    per_queue(&mut page, s);
    if s.labelled > 0 {
        let _ = write!(
            page,
            r#"<section><h2>Confusion matrix</h2>{}<p class="note">Rows: the label; columns: the queue chosen. Shade: share of the row (green on the diagonal: right; red: wrong).</p></section>"#,
            svg::confusion(&s.queues, &s.confusion)
        );
        calibration(&mut page, s);
    } else {
        page.push_str(r#"<section><h2>Accuracy, confusion and calibration</h2><p class="note">No record carried a <code>label</code>, so there is nothing to score against. Add a label field (JSONL <code>label</code>, CSV <code>--csv-label</code>) to measure the ruleset.</p></section>"#);
    }
    if let Some(c) = &s.compare {
        compare(&mut page, s, c);
    }
    rules(&mut page, s);
    page.push_str("</main></body></html>\n");
    page
}

fn card(page: &mut String, key: &str, value: &str, detail: &str) {
    let _ = write!(
        page,
        r#"<div class="card"><div class="k">{key}</div><div class="v">{value}</div><div class="d">{detail}</div></div>"#
    );
}

fn cards(page: &mut String, s: &Summary) {
    page.push_str(r#"<div class="cards">"#);
    card(page, "Records", &num(s.total), "read from the input");
    card(page, "Classified", &num(s.classified), "got a verdict");
    let errors = if s.errors > 0 {
        "see <code>error</code> records"
    } else {
        "none"
    };
    card(page, "Errors", &num(s.errors), errors);
    if s.labelled > 0 {
        let detail = format!("of {} labelled", num(s.labelled));
        card(page, "Accuracy", &pct(s.accuracy), &detail);
        card(page, "Macro F1", &pct(s.macro_f1), "mean over queues");
        let ece = s.ece.map_or("–".into(), |e| format!("{e:.3}"));
        card(page, "ECE", &ece, "calibration error, 10 bins");
    }
    let a = &s.auto_routed;
    let detail = match a.precision {
        Some(p) => format!("precision {}", pct(Some(p))),
        None => "needs_review false".to_string(),
    };
    card(page, "Auto-routed", &pct(a.share), &detail);
    if let Some(c) = &s.compare {
        card(
            page,
            "Changed",
            &num(c.changed),
            &format!("of {} compared", num(c.compared)),
        );
    }
    page.push_str("</div>");
}

fn distribution(page: &mut String, s: &Summary) {
    let rows: Vec<(String, u64, Option<u64>)> = s
        .queues
        .iter()
        .map(|q| {
            let score = &s.per_queue[q];
            (q.clone(), score.routed, (s.labelled > 0).then_some(score.support))
        })
        .collect();
    let _ = write!(
        page,
        r#"<section><h2>Queue distribution</h2>{}</section>"#,
        svg::distribution(&rows)
    );
}

fn per_queue(page: &mut String, s: &Summary) {
    page.push_str(r#"<section><h2>Per queue</h2><table><thead><tr><th>queue</th><th>routed</th><th>share</th><th>support</th><th>precision</th><th>recall</th><th>F1</th></tr></thead><tbody>"#);
    for q in &s.queues {
        let p = &s.per_queue[q];
        let share = (s.classified > 0).then(|| p.routed as f64 / s.classified as f64);
        let f1 = match p.f1 {
            Some(f) => format!("{}{}", pct(Some(f)), svg::meter(f, "#3b6fd8")),
            None => "–".into(),
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(q),
            num(p.routed),
            pct(share),
            num(p.support),
            pct(p.precision),
            pct(p.recall),
            f1
        );
    }
    page.push_str("</tbody></table>");
    if !s.unknown_labels.is_empty() {
        let shown: Vec<String> = s.unknown_labels.iter().take(12).map(|l| esc(l)).collect();
        let more = s.unknown_labels.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let _ = write!(
            page,
            r#"<p class="note warn">{} label(s) are not queues of this ruleset, so their records can never be right: {}{more}.</p>"#,
            s.unknown_labels.len(),
            shown.join(", ")
        );
    }
    page.push_str("</section>");
}

fn calibration(page: &mut String, s: &Summary) {
    // With --compare-rules (e.g. the ruleset before and after `triage calibrate`), the two
    // reliability diagrams side by side show what the change did to confidence.
    if let Some(c) = s.compare.as_ref().filter(|c| c.ece.is_some()) {
        let ece = |e: Option<f64>| e.map_or("–".into(), |e| format!("{e:.3}"));
        let _ = write!(
            page,
            r#"<div class="grid2"><section><h2>Reliability under --rules (before)</h2>{}<p class="note">ECE {}</p></section><section><h2>Reliability under --compare-rules (after)</h2>{}<p class="note">ECE {}</p></section></div><div style="height:18px"></div>"#,
            svg::reliability(&s.reliability),
            ece(s.ece),
            svg::reliability(&c.reliability),
            ece(c.ece)
        );
    }
    page.push_str(r#"<div class="grid2"><section><h2>Reliability diagram</h2>"#);
    page.push_str(&svg::reliability(&s.reliability));
    page.push_str(r#"<p class="note">Bars: accuracy per confidence bin (fainter where the bin holds few records); orange: the bin's mean confidence. Where they meet on the dashed diagonal, confidence means what it says.</p></section><section><h2>Reliability table</h2><table><thead><tr><th>confidence</th><th>records</th><th>mean conf.</th><th>accuracy</th><th>gap</th></tr></thead><tbody>"#);
    for b in &s.reliability {
        let gap = match (b.confidence, b.accuracy) {
            (Some(c), Some(a)) => {
                let class = if (a - c).abs() > 0.1 { "warn" } else { "" };
                format!(r#"<span class="{class}">{:+.1}</span>"#, (a - c) * 100.0)
            }
            _ => "–".into(),
        };
        let _ = write!(
            page,
            "<tr><td>{:.1}–{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{gap}</td></tr>",
            b.lower,
            b.upper,
            num(b.count),
            pct(b.confidence),
            pct(b.accuracy)
        );
    }
    let _ = write!(
        page,
        r#"</tbody></table><p class="note">ECE {}: the record-weighted mean of |accuracy − confidence| over the bins.</p><h2 style="margin-top:18px">Accuracy per language</h2><table><thead><tr><th>language</th><th>records</th><th>labelled</th><th>accuracy</th></tr></thead><tbody>"#,
        s.ece.map_or("–".into(), |e| format!("{e:.3}"))
    );
    for (lang, l) in &s.per_language {
        let acc = match l.accuracy {
            Some(a) => format!("{}{}", pct(Some(a)), svg::meter(a, "#2e7d32")),
            None => "–".into(),
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{acc}</td></tr>",
            esc(lang),
            num(l.total),
            num(l.labelled)
        );
    }
    page.push_str("</tbody></table></section></div><div style=\"height:18px\"></div>");
}

fn compare(page: &mut String, s: &Summary, c: &super::eval::Comparison) {
    let _ = write!(
        page,
        r#"<section><h2>Ruleset diff</h2><p class="note" style="margin:0 0 10px">{} of {} records change queue."#,
        num(c.changed),
        num(c.compared)
    );
    if s.labelled > 0 {
        let _ = write!(
            page,
            r#" Accuracy {} → {}: <span class="ok">{} fixed</span>, <span class="warn">{} broken</span>."#,
            pct(s.accuracy),
            pct(c.accuracy),
            num(c.fixed),
            num(c.broken)
        );
    }
    page.push_str("</p>");
    if c.transitions.is_empty() {
        page.push_str(r#"<p class="note">No record changes queue.</p></section>"#);
        return;
    }
    let max = c.transitions.iter().map(|t| t.count).max().unwrap_or(1) as f64;
    page.push_str(r#"<table><thead><tr><th>from (--rules)</th><th></th><th class="l" style="text-align:left">to (--compare-rules)</th><th>records</th></tr></thead><tbody>"#);
    for t in &c.transitions {
        let _ = write!(
            page,
            r#"<tr><td>{}</td><td class="arrow">→</td><td class="l">{}</td><td>{}{}</td></tr>"#,
            esc(&t.from),
            esc(&t.to),
            num(t.count),
            svg::meter(t.count as f64 / max, "#d08a2c")
        );
    }
    page.push_str("</tbody></table></section>");
}

fn rules(page: &mut String, s: &Summary) {
    if s.rules.is_empty() {
        return;
    }
    let shown = s.rules.len().min(MAX_RULES);
    let _ = write!(
        page,
        r#"<section><h2>Rule mass-check</h2><p class="note" style="margin:0 0 10px">The {shown} most-fired of the {} rules that fired. Precision: the share of a rule's labelled hits whose label is the rule's queue (for rules against a queue, low is good).</p><table><thead><tr><th>rule</th><th class="l" style="text-align:left">queue</th><th>fired</th><th>labelled</th><th>precision</th></tr></thead><tbody>"#,
        s.rules.len()
    );
    for r in &s.rules[..shown] {
        let precision = match r.precision {
            Some(p) if r.against => format!("{} <span class=\"note\">(against)</span>", pct(Some(p))),
            Some(p) => {
                let class = if p < 0.5 { "warn" } else { "" };
                format!(
                    r#"<span class="{class}">{}</span>{}"#,
                    pct(Some(p)),
                    svg::meter(p, "#3b6fd8")
                )
            }
            None => "–".into(),
        };
        let _ = write!(
            page,
            r#"<tr><td>{}</td><td class="l">{}</td><td>{}</td><td>{}</td><td>{precision}</td></tr>"#,
            esc(&r.rule),
            esc(&r.queue),
            num(r.fired),
            num(r.labelled)
        );
    }
    page.push_str("</tbody></table></section>");
}
