//! HTML bodies → readable text, with the quoted history split off first.
//!
//! Mail clients wrap the history of a reply in a container (`<blockquote>`, Gmail's
//! `gmail_quote`, Outlook's `divRplyFwdMsg` or a `border-top` separated header block,
//! Thunderbird's `moz-cite-prefix`). Those markers are lost in the text rendering, so the HTML
//! is cut at the first of them and each half is rendered on its own.

use super::Limits;

/// Markers (lower case) of a quote container; the split happens at the tag holding them.
const QUOTE_MARKERS: &[&str] = &[
    "<blockquote",
    "gmail_quote",
    "divrplyfwdmsg",
    "moz-cite-prefix",
    "yahoo_quoted",
    "border-top:solid",
    "border-top: solid",
];

/// Rendered HTML: the text above the first quote container and the text from it on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Text before the first quote container.
    pub text: String,
    /// Text of the quote container and everything after it.
    pub quoted: String,
}

/// Renders `html` as text, cutting it to [`Limits::max_html_bytes`] first (with a note).
pub fn render(html: &str, limits: &Limits, notes: &mut Vec<String>) -> Rendered {
    let mut html = html;
    if html.len() > limits.max_html_bytes {
        html = &html[..html.floor_char_boundary(limits.max_html_bytes)];
        notes.push(format!(
            "HTML part cut to {} bytes before conversion",
            limits.max_html_bytes
        ));
    }
    let (new, quoted) = split_at_quote(html);
    Rendered {
        text: to_text(new),
        quoted: to_text(quoted),
    }
}

/// Splits at the start of the tag that carries the first quote marker.
fn split_at_quote(html: &str) -> (&str, &str) {
    // ASCII lower-casing keeps byte offsets, so positions map back onto `html`.
    let lower = html.to_ascii_lowercase();
    let Some(at) = QUOTE_MARKERS.iter().filter_map(|m| lower.find(m)).min() else {
        return (html, "");
    };
    let tag = lower[..=at].rfind('<').unwrap_or(at);
    (&html[..tag], &html[tag..])
}

/// Converts HTML to plain text: no tags, scripts or styles; entities decoded; blocks as lines.
pub fn to_text(html: &str) -> String {
    if html.trim().is_empty() {
        return String::new();
    }
    // html2text's cost grows with nesting depth; no real mail nests this deep, a tag bomb does.
    // The simple stripper is linear and still drops tags, scripts and styles.
    if nesting_depth(html) > MAX_NESTING {
        return tidy(&mail_parser::decoders::html::html_to_text(html));
    }
    let rendered = html2text::config::plain_no_decorate()
        .link_footnotes(false)
        .no_table_borders()
        .allow_width_overflow()
        .string_from_read(html.as_bytes(), 1000)
        .unwrap_or_else(|_| mail_parser::decoders::html::html_to_text(html));
    tidy(&rendered)
}

/// Deepest element nesting rendered with html2text.
const MAX_NESTING: usize = 200;

/// Elements that never hold others, or that HTML closes implicitly, so they add no depth.
const FLAT: &[&str] = &[
    "br", "img", "hr", "meta", "link", "input", "wbr", "area", "base", "col", "p", "li", "td", "th", "tr",
    "option", "dt", "dd", "source", "!--", "!doctype",
];

/// A cheap upper estimate of how deeply elements nest: opening tags minus closing tags.
fn nesting_depth(html: &str) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut max) = (0usize, 0usize);
    let mut at = 0;
    while let Some(lt) = bytes[at..].iter().position(|&b| b == b'<') {
        at += lt + 1;
        let rest = &bytes[at..];
        if rest.first() == Some(&b'/') {
            depth = depth.saturating_sub(1);
            continue;
        }
        let name_len = rest
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'!' || *b == b'-' || *b == b':'))
            .unwrap_or(rest.len());
        if name_len == 0 {
            continue;
        }
        let name = &rest[..name_len];
        let flat = FLAT.iter().any(|f| f.as_bytes().eq_ignore_ascii_case(name));
        let self_closing = rest[name_len..]
            .iter()
            .position(|&b| b == b'>')
            .is_some_and(|gt| gt > 0 && rest[name_len + gt - 1] == b'/');
        if !flat && !self_closing {
            depth += 1;
            max = max.max(depth);
        }
    }
    max
}

/// Trims line ends and collapses runs of blank lines, which layout tables leave behind.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_default(html: &str) -> Rendered {
        render(html, &Limits::default(), &mut Vec::new())
    }

    #[test]
    fn tags_scripts_and_styles_are_dropped_and_entities_decoded() {
        let r = render_default(
            "<html><head><style>p{color:red}</style><script>alert(1)</script></head>\
             <body><p>Caf&eacute; &amp; cr&egrave;me</p><p>Second&nbsp;block</p></body></html>",
        );
        assert!(r.text.contains("Café & crème"), "{}", r.text);
        assert!(r.text.contains("\nSecond"), "{}", r.text);
        assert!(!r.text.contains("color") && !r.text.contains("alert"));
    }

    #[test]
    fn a_blockquote_goes_to_the_quoted_text() {
        let r = render_default("<p>New question</p><blockquote><p>Old invoice</p></blockquote>");
        assert_eq!(r.text, "New question");
        assert!(r.quoted.contains("Old invoice"));
    }

    #[test]
    fn gmail_outlook_and_thunderbird_containers_go_to_the_quoted_text() {
        for container in [
            "<div class=\"gmail_quote\"><div class=\"gmail_attr\">On Mon wrote:</div>Old invoice</div>",
            "<hr><div id=\"divRplyFwdMsg\"><b>From:</b> x<br>Old invoice</div>",
            "<div style=\"border:none;border-top:solid #E1E1E1 1.0pt\"><p><b>Von:</b> x</p></div><p>Old invoice</p>",
            "<div class=\"moz-cite-prefix\">Am 3.6. schrieb x:</div><p>Old invoice</p>",
        ] {
            let r = render_default(&format!("<div>New question</div>{container}"));
            assert_eq!(r.text, "New question", "{container}");
            assert!(r.quoted.contains("Old invoice"), "{container}");
        }
    }

    #[test]
    fn oversized_html_is_cut_with_a_note() {
        let limits = Limits {
            max_html_bytes: 1000,
            ..Limits::default()
        };
        let mut notes = Vec::new();
        let html = "<p>word</p>".repeat(1000);
        let r = render(&html, &limits, &mut notes);
        assert!(r.text.len() < 1000);
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn a_tag_bomb_is_stripped_instead_of_rendered() {
        let html = "<div><b><i>".repeat(20_000) + "deep";
        assert!(nesting_depth(&html) > MAX_NESTING);
        let r = render_default(&html);
        assert!(r.text.contains("deep"), "{}", r.text);
    }

    #[test]
    fn ordinary_mail_html_is_shallow() {
        let html = "<html><body><div><p>One<br>two<p>three<img src=x/></div><table><tr><td>x</table>";
        assert!(nesting_depth(html) <= 4, "{}", nesting_depth(html));
    }

    #[test]
    fn many_sibling_blocks_render_in_reasonable_time() {
        let html = "<div><span>x</span></div>".repeat(20_000);
        let r = render_default(&html);
        assert!(r.text.starts_with('x'));
    }
}
