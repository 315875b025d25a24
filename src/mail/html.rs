//! HTML bodies → readable text, with the quoted history split off first.
//!
//! Mail clients wrap the history of a reply in a container (`<blockquote>`, Gmail's
//! `gmail_quote`, Outlook's `divRplyFwdMsg` or a `border-top` separated header block,
//! Thunderbird's `moz-cite-prefix`). Those markers are lost in the text rendering, so the HTML
//! is cut at the first of them and each half is rendered on its own.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::Limits;

/// Markers (lower case) of a quote container; the split happens at the tag holding them.
/// Each says whether it is history by itself (a `<blockquote>`, Thunderbird's attribution
/// line, Outlook's reply header) or only a container that must hold the evidence of history.
const QUOTE_MARKERS: &[(&str, bool)] = &[
    ("<blockquote", true),
    ("gmail_attr", true),
    ("moz-cite-prefix", true),
    ("divrplyfwdmsg", true),
    ("gmail_quote", false),
    ("yahoo_quoted", false),
    ("border-top:solid", false),
    ("border-top: solid", false),
];

/// [`QUOTE_MARKERS`] in one automaton, ASCII case ignored: one pass over the HTML finds every
/// occurrence of every marker, with no lower-cased copy of it (eight substring searches of such
/// a copy were 3% of the public email sample's CPU, by perf).
static MARKERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(QUOTE_MARKERS.iter().map(|(marker, _)| marker))
        .expect("a few short literals build")
});

/// How far into a container the evidence of history is looked for.
const EVIDENCE_WINDOW: usize = 4096;

/// Containers examined before the message is taken to have no quoted history.
const MAX_CANDIDATES: usize = 32;

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

/// Splits at the start of the tag of the first quote container that is history: one that is
/// history by itself, or a container whose first few KB hold an attribution, a reply header
/// block or a quote. A webmail container that wraps the writer's own text (Gmail keeps its
/// `gmail_quote` container when the quote inside it is deleted) is not history.
fn split_at_quote(html: &str) -> (&str, &str) {
    // Every occurrence of every marker (overlapping, as eight separate searches found them: a
    // marker may share a letter with the next), the first MAX_CANDIDATES of each, in order.
    let mut per_marker = [0usize; QUOTE_MARKERS.len()];
    let mut candidates: Vec<(usize, bool)> = Vec::new();
    for m in MARKERS.find_overlapping_iter(html) {
        let marker = m.pattern().as_usize();
        if per_marker[marker] < MAX_CANDIDATES {
            per_marker[marker] += 1;
            candidates.push((m.start(), QUOTE_MARKERS[marker].1));
        }
    }
    candidates.sort_unstable();
    for &(at, certain) in candidates.iter().take(MAX_CANDIDATES) {
        let tag = html[..=at].rfind('<').unwrap_or(at);
        if certain || holds_history(&html[tag..]) {
            return (&html[..tag], &html[tag..]);
        }
    }
    (html, "")
}

/// True when the start of a container holds the evidence of quoted history.
fn holds_history(html: &str) -> bool {
    let end = html.floor_char_boundary(EVIDENCE_WINDOW.min(html.len()));
    let window = &html[..end];
    if MARKERS
        .find_overlapping_iter(window)
        .any(|m| QUOTE_MARKERS[m.pattern().as_usize()].1)
    {
        return true;
    }
    super::quote::has_history_marks(&to_text(window))
}

/// Converts HTML to plain text: no tags, scripts or styles; entities decoded; blocks as lines.
///
/// Linear in the input for any input: [`super::markup::simplify`] first rewrites it as
/// shallow, well-nested HTML without inline elements, which is all html2text then sees.
pub fn to_text(html: &str) -> String {
    if html.trim().is_empty() {
        return String::new();
    }
    let simple = super::markup::simplify(html);
    let rendered = html2text::config::plain_no_decorate()
        .link_footnotes(false)
        .no_table_borders()
        .allow_width_overflow()
        .string_from_read(simple.as_bytes(), 1000)
        .unwrap_or_else(|_| mail_parser::decoders::html::html_to_text(&simple));
    tidy(&rendered)
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
            "<div style=\"border:none;border-top:solid #E1E1E1 1.0pt\"><p><b>Von:</b> x<br><b>Gesendet:</b> Montag</p></div><p>Old invoice</p>",
            "<div class=\"moz-cite-prefix\">Am 3.6. schrieb x:</div><p>Old invoice</p>",
        ] {
            let r = render_default(&format!("<div>New question</div>{container}"));
            assert_eq!(r.text, "New question", "{container}");
            assert!(r.quoted.contains("Old invoice"), "{container}");
        }
    }

    #[test]
    fn markers_that_share_a_letter_are_both_found() {
        // "yahoo_quoteD" ends where "DivRplyFwdMsg" begins: the certain marker still counts.
        let r = render_default(
            "<div>New question</div><div class=\"yahoo_quoteDivRplyFwdMsg\"><p>Old invoice</p></div>",
        );
        assert_eq!(r.text, "New question");
        assert!(r.quoted.contains("Old invoice"), "{r:?}");
    }

    #[test]
    fn a_webmail_container_around_the_writers_own_text_is_not_history() {
        let html = "<div dir=\"ltr\"><div class=\"gmail_quote gmail_quote_container\"><div>Hola,</div>\
                    <div>\u{bf}Pod\u{e9}is revisar nuestros textos legales?</div></div></div>";
        let r = render_default(html);
        assert!(r.text.contains("textos legales"), "{r:?}");
        assert!(r.quoted.is_empty(), "{r:?}");
    }

    #[test]
    fn a_container_is_history_when_it_holds_an_attribution_or_a_header_block() {
        for container in [
            "<div class=\"gmail_quote\">El lun, 3 jun 2024 a las 10:12, Soporte &lt;a@b.es&gt; escribi\u{f3}:<br>Old invoice</div>",
            "<div class=\"yahoo_quoted\"><div>On Monday, 3 June 2024, 10:12, Support wrote:</div><div>Old invoice</div></div>",
            "<div style=\"border:none;border-top:solid #E1E1E1 1.0pt\"><p><b>Von:</b> x<br><b>Gesendet:</b> Montag</p></div><p>Old invoice</p>",
        ] {
            let r = render_default(&format!("<div>New question</div>{container}"));
            assert_eq!(r.text, "New question", "{container}");
            assert!(r.quoted.contains("Old invoice"), "{container}");
        }
    }

    #[test]
    fn a_border_top_that_separates_a_signature_is_not_history() {
        let r = render_default(
            "<p>Please cancel our contract.</p><div style=\"border-top:solid 1px\"><p>Shop GmbH, Berlin</p></div>",
        );
        assert!(r.text.contains("Shop GmbH"), "{r:?}");
        assert!(r.quoted.is_empty());
    }

    #[test]
    fn many_empty_containers_cost_a_bounded_number_of_checks() {
        let html = "<div class=\"gmail_quote\">x</div>".repeat(50_000) + "<p>end</p>";
        let r = render_default(&html);
        assert!(r.quoted.is_empty());
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
    fn a_tag_bomb_renders_its_text() {
        let html = "<div><b><i>".repeat(20_000) + "deep";
        let r = render_default(&html);
        assert!(r.text.contains("deep"), "{}", r.text);
    }

    #[test]
    fn self_closing_non_void_tags_and_stray_end_tags_render_their_text() {
        for unit in ["<ul/>x", "<div/>x", "<span></b>x", "<b id=1>x<p>y"] {
            let r = render_default(&unit.repeat(20_000));
            assert!(r.text.matches('x').count() == 20_000, "{unit}");
        }
    }

    #[test]
    fn many_sibling_blocks_render_in_reasonable_time() {
        let html = "<div><span>x</span></div>".repeat(20_000);
        let r = render_default(&html);
        assert!(r.text.starts_with('x'));
    }
}
