//! Inline SVG charts, drawn here so the report needs no script and no external asset.
//!
//! Each function returns one `<svg>` element sized in CSS pixels with a `viewBox`, so it
//! scales down on narrow screens.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::esc;
use crate::replay::eval::ReliabilityBin;

/// Series colours: routed (blue), labelled (grey).
const BLUE: &str = "#3b6fd8";
const GREY: &str = "#b8c0cc";
const INK: &str = "#1f2733";
const MUTED: &str = "#6b7685";
const ORANGE: &str = "#e0802c";

/// Horizontal bars, one row per queue: how many were routed there and, when labelled, how
/// many carried that label.
pub fn distribution(rows: &[(String, u64, Option<u64>)]) -> String {
    let max = rows
        .iter()
        .map(|(_, a, b)| (*a).max(b.unwrap_or(0)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let labelled = rows.iter().any(|(_, _, b)| b.is_some());
    let (left, width, row) = (170.0, 1000.0, if labelled { 30.0 } else { 24.0 });
    let plot = width - left - 60.0;
    let height = rows.len() as f64 * row + 34.0;
    let mut s = open(width, height, "Queue distribution");
    for (i, (queue, routed, support)) in rows.iter().enumerate() {
        let y = 6.0 + i as f64 * row;
        let bar = if labelled { 11.0 } else { 16.0 };
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" class="lbl">{}</text>"#,
            left - 8.0,
            y + row / 2.0,
            esc(queue)
        );
        let w = *routed as f64 / max * plot;
        let _ = write!(
            s,
            r#"<rect x="{left}" y="{y}" width="{w:.1}" height="{bar}" rx="2" fill="{BLUE}"><title>{} routed: {routed}</title></rect><text x="{:.1}" y="{:.1}" class="num">{routed}</text>"#,
            esc(queue),
            left + w + 5.0,
            y + bar - 2.0
        );
        if let Some(support) = support {
            let y2 = y + bar + 2.0;
            let w2 = *support as f64 / max * plot;
            let _ = write!(
                s,
                r#"<rect x="{left}" y="{y2}" width="{w2:.1}" height="{bar}" rx="2" fill="{GREY}"><title>{} labelled: {support}</title></rect><text x="{:.1}" y="{:.1}" class="num muted">{support}</text>"#,
                esc(queue),
                left + w2 + 5.0,
                y2 + bar - 2.0
            );
        }
    }
    let y = height - 12.0;
    let _ = write!(
        s,
        r#"<rect x="{left}" y="{}" width="10" height="10" fill="{BLUE}"/><text x="{}" y="{y}" class="num">routed</text>"#,
        y - 9.0,
        left + 14.0
    );
    if labelled {
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{GREY}"/><text x="{}" y="{y}" class="num">labelled (support)</text>"#,
            left + 80.0,
            y - 9.0,
            left + 94.0
        );
    }
    s + "</svg>"
}

/// The confusion matrix as a heat map: rows are labels, columns chosen queues; a cell's shade
/// is its share of the row, green on the diagonal (right) and red elsewhere (wrong).
pub fn confusion(queues: &[String], matrix: &BTreeMap<String, BTreeMap<String, u64>>) -> String {
    let rows: Vec<&String> = queues.iter().filter(|q| matrix.contains_key(*q)).collect();
    let cols: Vec<&String> = queues.iter().collect();
    // Cells shrink when there are many labels (e.g. a foreign corpus) so the map stays on screen.
    let cell = (860.0 / cols.len().max(1) as f64).clamp(14.0, 56.0);
    let longest = cols.iter().map(|c| c.chars().count()).max().unwrap_or(0) as f64;
    let (left, top) = (170.0, (longest * 5.2 + 16.0).clamp(40.0, 130.0));
    let width = left + cols.len() as f64 * cell + 70.0;
    let height = top + rows.len() as f64 * cell + 40.0;
    let mut s = open(width, height, "Confusion matrix");
    for (j, col) in cols.iter().enumerate() {
        let x = left + j as f64 * cell + cell / 2.0;
        let _ = write!(
            s,
            r#"<text transform="translate({x:.1},{}) rotate(-45)" class="lbl">{}</text>"#,
            top - 8.0,
            esc(col)
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y = top + i as f64 * cell;
        let counts = &matrix[*row];
        let total: u64 = counts.values().sum();
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end" class="lbl">{}</text>"#,
            left - 8.0,
            y + cell / 2.0 + 4.0,
            esc(row)
        );
        for (j, col) in cols.iter().enumerate() {
            let n = counts.get(*col).copied().unwrap_or(0);
            let share = if total > 0 { n as f64 / total as f64 } else { 0.0 };
            let x = left + j as f64 * cell;
            let fill = if n == 0 {
                "#f4f6f9".to_string()
            } else if row == col {
                shade((46, 125, 50), share)
            } else {
                shade((198, 40, 40), share.max(0.12))
            };
            let ink = if share > 0.55 { "#fff" } else { INK };
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{w:.1}" fill="{fill}" stroke="#fff" stroke-width="2"><title>label {} → {}: {n} ({:.1}% of the row)</title></rect>"##,
                esc(row),
                esc(col),
                share * 100.0,
                w = cell,
            );
            if n > 0 && cell >= 26.0 {
                let _ = write!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="cell" fill="{ink}">{n}</text>"#,
                    x + cell / 2.0,
                    y + cell / 2.0 + 4.5
                );
            }
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="num muted">{total}</text>"#,
            left + cols.len() as f64 * cell + 8.0,
            y + cell / 2.0 + 4.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">chosen queue →</text><text x="{:.1}" y="{:.1}" class="axis muted">row total</text><text x="12" y="{:.1}" class="axis">↓ label</text>"#,
        left + cols.len() as f64 * cell / 2.0,
        height - 10.0,
        left + cols.len() as f64 * cell + 4.0,
        top - 8.0,
        top - 8.0,
    );
    s + "</svg>"
}

/// The reliability diagram: per confidence bin, accuracy (bars) against the diagonal of
/// perfect calibration, the gap to the bin's mean confidence in red, and the bin sizes below.
pub fn reliability(bins: &[ReliabilityBin]) -> String {
    let (left, top, plot, hist) = (56.0, 16.0, 360.0, 70.0);
    let width = left + plot + 24.0;
    let height = top + plot + 40.0 + hist + 30.0;
    let mut s = open(width, height, "Reliability diagram");
    let x = |v: f64| left + v * plot;
    let y = |v: f64| top + (1.0 - v) * plot;
    for t in 0..=5 {
        let v = t as f64 / 5.0;
        let _ = write!(
            s,
            r##"<line x1="{l}" y1="{yv:.1}" x2="{r}" y2="{yv:.1}" stroke="#e6e9ee"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="num muted">{v:.1}</text><text x="{xv:.1}" y="{:.1}" text-anchor="middle" class="num muted">{v:.1}</text>"##,
            left - 6.0,
            y(v) + 4.0,
            top + plot + 16.0,
            l = left,
            r = left + plot,
            yv = y(v),
            xv = x(v),
        );
    }
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let base = top + plot + 40.0 + hist;
    for b in bins {
        let (x0, w) = (x(b.lower) + 2.0, (b.upper - b.lower) * plot - 4.0);
        if let (Some(acc), Some(conf)) = (b.accuracy, b.confidence) {
            // Bins with few records are drawn fainter: their accuracy says little.
            let weight = 0.3 + 0.7 * (b.count as f64 / max).sqrt();
            let _ = write!(
                s,
                r#"<rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{BLUE}" opacity="{weight:.2}"><title>confidence {:.1}–{:.1}: {} records, accuracy {:.1}%, mean confidence {:.1}%</title></rect>"#,
                y(acc),
                acc * plot,
                b.lower,
                b.upper,
                b.count,
                acc * 100.0,
                conf * 100.0
            );
            let _ = write!(
                s,
                r#"<line x1="{x0:.1}" x2="{:.1}" y1="{yc:.1}" y2="{yc:.1}" stroke="{ORANGE}" stroke-width="3"/>"#,
                x0 + w,
                yc = y(conf),
            );
        }
        let h = b.count as f64 / max * hist;
        let _ = write!(
            s,
            r#"<rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{h:.1}" fill="{GREY}"><title>{} records</title></rect>"#,
            base - h,
            b.count
        );
        if b.count > 0 {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="tiny">{}</text>"#,
                x0 + w / 2.0,
                base - h - 3.0,
                b.count
            );
        }
    }
    let _ = write!(
        s,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{MUTED}" stroke-dasharray="5 4"/><rect x="{left}" y="{top}" width="{plot}" height="{plot}" fill="none" stroke="#c9d0da"/><text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">confidence</text><text transform="translate(14,{:.1}) rotate(-90)" text-anchor="middle" class="axis">accuracy</text><text x="{left}" y="{:.1}" class="axis muted">records per bin</text><rect x="{}" y="{:.1}" width="12" height="10" fill="{BLUE}"/><text x="{:.1}" y="{:.1}" class="num">accuracy</text><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{ORANGE}" stroke-width="3"/><text x="{:.1}" y="{:.1}" class="num">mean confidence</text>"##,
        x(0.0),
        y(0.0),
        x(1.0),
        y(1.0),
        left + plot / 2.0,
        top + plot + 32.0,
        top + plot / 2.0,
        base + 16.0,
        left + 150.0,
        base + 7.0,
        left + 166.0,
        base + 16.0,
        left + 240.0,
        left + 254.0,
        base + 12.0,
        base + 12.0,
        left + 260.0,
        base + 16.0,
    );
    s + "</svg>"
}

/// A small inline bar for a share in [0, 1] (tables).
pub fn meter(share: f64, color: &str) -> String {
    let w = (share.clamp(0.0, 1.0) * 80.0).round();
    format!(
        r##"<svg class="meter" width="84" height="10" viewBox="0 0 84 10" aria-hidden="true"><rect x="0" y="1" width="80" height="8" rx="2" fill="#edf0f4"/><rect x="0" y="1" width="{w}" height="8" rx="2" fill="{color}"/></svg>"##
    )
}

/// The opening tag with a title for screen readers and the shared text styles.
fn open(width: f64, height: f64, title: &str) -> String {
    format!(
        r#"<svg class="chart" role="img" aria-label="{title}" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title>"#
    )
}

/// `base` blended from white by `share` (0 = white, 1 = `base`).
fn shade(base: (u8, u8, u8), share: f64) -> String {
    let t = share.clamp(0.0, 1.0);
    let mix = |c: u8| (255.0 - (255.0 - c as f64) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(base.0), mix(base.1), mix(base.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shades_run_from_white_to_the_base_colour() {
        assert_eq!(shade((46, 125, 50), 0.0), "#ffffff");
        assert_eq!(shade((46, 125, 50), 1.0), "#2e7d32");
    }
}
