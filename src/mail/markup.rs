//! Any HTML → a small, well-nested HTML that renders to the same text, in one linear pass.
//!
//! html2text (through html5ever) builds the tree HTML's rules describe, and some hostile shapes
//! make that quadratic: `<div/>` opens a `div` (the slash means nothing on a non-void element),
//! stray end tags such as `</b>` are ignored, misnested formatting elements are reopened again
//! and again, and every start tag checks the open elements. 262 KB of `<ul/>` took about 7 s.
//!
//! So the HTML is rewritten first, by a tokenizer that keeps only what shapes the text:
//! - block elements (paragraphs, divisions, headings, lists, tables, quotes, `pre`) and line
//!   breaks, without their attributes; inline elements (`span`, `b`, `a`, `font`…) are
//!   dropped and their text kept, which changes nothing in the plain rendering;
//! - the text, with its entities, for html2text to decode; a `<` that starts no tag is escaped;
//! - nothing of comments, `script`, `style`, `title` and the like.
//!
//! Nesting is balanced on a stack of our own, at most [`MAX_DEPTH`] deep: an end tag closes the
//! elements opened after its start tag, one without an open start tag is ignored, a start tag
//! beyond the depth becomes a line break, table parts outside a table are dropped, and
//! everything still open is closed at the end. Tables are written as rows of space-separated
//! cells, and lists and quotes nested deeper than a few levels as plain blocks (see
//! `Simplified::emitted`). The result has no misnesting, no formatting elements, no tables and a
//! bounded depth, which html5ever and html2text handle in time linear in its length, with an
//! output of at most a few times the input. The pass itself looks at each byte a bounded number
//! of times.

/// Deepest nesting of elements kept; deeper start tags become line breaks.
pub const MAX_DEPTH: usize = 32;

/// Deepest nesting of lists written as lists; deeper ones are written as plain blocks.
const MAX_LIST_DEPTH: usize = 4;

/// Deepest nesting of quotes written as quotes.
const MAX_QUOTE_DEPTH: usize = 2;

/// Elements that hold text and shape it into blocks: kept.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "td",
    "th",
    "caption",
    "blockquote",
    "pre",
    "address",
    "center",
    "section",
    "article",
    "aside",
    "header",
    "footer",
    "nav",
    "main",
    "figure",
    "figcaption",
    "details",
    "summary",
    "form",
    "fieldset",
];

/// Elements whose content is not text to read: skipped up to their end tag.
const SKIPPED: &[&str] = &[
    "script", "style", "title", "iframe", "noembed", "noframes", "template",
];

/// Elements whose content is text, not markup (RCDATA and friends): kept, escaped.
const LITERAL: &[&str] = &["textarea", "xmp"];

/// Elements that start a new block: an open `p` is closed before them, as HTML does.
fn closes_p(name: &str) -> bool {
    name != "li" && name != "td" && name != "th" && name != "tr" && BLOCKS.contains(&name)
}

/// Rewrites `html` as described in the module documentation.
pub fn simplify(html: &str) -> String {
    let mut out = Simplified {
        out: String::with_capacity(html.len().min(1 << 20)),
        open: Vec::new(),
    };
    let bytes = html.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let Some(lt) = memchr(b'<', &bytes[at..]) else {
            out.text(&html[at..]);
            break;
        };
        out.text(&html[at..at + lt]);
        at += lt;
        match tag(html, at) {
            Token::Text => {
                out.out.push_str("&lt;");
                at += 1;
            }
            Token::Skip(end) => at = end,
            Token::End { name, end } => {
                out.end(&name);
                at = end;
            }
            Token::Start { name, end } => {
                at = end;
                if SKIPPED.contains(&name.as_str()) {
                    at = after_end_tag(html, at, &name);
                } else if LITERAL.contains(&name.as_str()) {
                    let close = find_end_tag(html, at, &name).unwrap_or(html.len());
                    out.literal(&html[at..close]);
                    out.out.push_str("<br>");
                    at = after_end_tag(html, at, &name);
                } else if name == "plaintext" {
                    out.literal(&html[at..]);
                    at = html.len();
                } else {
                    out.start(&name);
                }
            }
        }
    }
    out.finish()
}

/// The output being built and the elements open in it.
struct Simplified {
    out: String,
    open: Vec<Open>,
}

/// An element open in the output: its name in the input, and what it was written as (empty
/// when nothing was: a table cell).
struct Open {
    name: &'static str,
    emitted: &'static str,
}

impl Simplified {
    fn text(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn literal(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '<' => self.out.push_str("&lt;"),
                '&' => self.out.push_str("&amp;"),
                '\n' => self.out.push_str("<br>"),
                c => self.out.push(c),
            }
        }
    }

    fn start(&mut self, name: &str) {
        match name {
            "br" => return self.out.push_str("<br>"),
            "hr" => return self.out.push_str("<hr>"),
            _ => {}
        }
        let Some(&name) = BLOCKS.iter().find(|b| **b == name) else {
            return;
        };
        if closes_p(name) && self.open.last().is_some_and(|e| e.name == "p") {
            self.close_to(self.open.len() - 1);
        }
        // List items, definitions, rows and cells close their open sibling, as HTML does;
        // table parts outside a table (or a row) have nothing to attach to and are dropped.
        let (siblings, container): (&[&str], &[&str]) = match name {
            "li" => (&["li"], &["ul", "ol"]),
            "dt" | "dd" => (&["dt", "dd"], &["dl"]),
            "tr" => (&["tr", "td", "th"], &["table", "thead", "tbody", "tfoot"]),
            "td" | "th" => (&["td", "th"], &["tr"]),
            "thead" | "tbody" | "tfoot" | "caption" => {
                (&["thead", "tbody", "tfoot", "tr", "td", "th"], &["table"])
            }
            _ => (&[], &[]),
        };
        if !container.is_empty() {
            let boundary = self
                .open
                .iter()
                .rposition(|e| container.contains(&e.name) || e.name == "table");
            match boundary {
                Some(b) if container.contains(&self.open[b].name) => {
                    if self.open.get(b + 1).is_some_and(|e| siblings.contains(&e.name)) {
                        self.close_to(b + 1);
                    }
                }
                _ if matches!(name, "li" | "dt" | "dd") => {}
                _ => return self.out.push_str("<br>"),
            }
        }
        if self.open.len() >= MAX_DEPTH {
            return self.out.push_str("<br>");
        }
        let emitted = self.emitted(name);
        self.open.push(Open { name, emitted });
        match emitted {
            "" => self.out.push(' '),
            _ => {
                self.out.push('<');
                self.out.push_str(emitted);
                self.out.push('>');
            }
        }
    }

    /// What an element is written as. Tables become lines (rows) of space-separated cells:
    /// html2text lays tables out by measuring every cell, at every level of nesting, which
    /// costs far more than the text is worth to a classifier. Lists and quotes nest only so
    /// deep before they become plain blocks, since each level indents every line inside it.
    fn emitted(&self, name: &'static str) -> &'static str {
        let depth = |names: &[&str]| self.open.iter().filter(|e| names.contains(&e.emitted)).count();
        match name {
            "table" | "thead" | "tbody" | "tfoot" | "caption" | "tr" => "div",
            "td" | "th" => "",
            "ul" | "ol" | "dl" if depth(&["ul", "ol", "dl"]) >= MAX_LIST_DEPTH => "div",
            "li" | "dt" | "dd" if !matches!(self.container(), "ul" | "ol" | "dl") => "div",
            "blockquote" if depth(&["blockquote"]) >= MAX_QUOTE_DEPTH => "div",
            "pre" if depth(&["pre"]) > 0 => "div",
            name => name,
        }
    }

    /// What the innermost open list is written as (or "" when none is open).
    fn container(&self) -> &'static str {
        self.open
            .iter()
            .rev()
            .find(|e| matches!(e.name, "ul" | "ol" | "dl"))
            .map_or("", |e| e.emitted)
    }

    fn end(&mut self, name: &str) {
        if name == "br" || name == "p" && !self.open.iter().any(|e| e.name == "p") {
            // `</br>` is a line break and `</p>` without a paragraph an empty one, in HTML.
            return self.out.push_str("<br>");
        }
        if let Some(at) = self.open.iter().rposition(|e| e.name == name) {
            // A table part closes at most up to its table: it never closes elements outside.
            let outer = self.open.iter().rposition(|e| e.name == "table");
            let crosses_table = name != "table" && outer.is_some_and(|t| t > at);
            if !crosses_table {
                self.close_to(at);
            }
        }
    }

    /// Closes the open elements from index `at` up.
    fn close_to(&mut self, at: usize) {
        while self.open.len() > at {
            let Some(open) = self.open.pop() else { break };
            if !open.emitted.is_empty() {
                self.out.push_str("</");
                self.out.push_str(open.emitted);
                self.out.push('>');
            }
        }
    }

    fn finish(mut self) -> String {
        self.close_to(0);
        self.out
    }
}

/// What a `<` starts.
enum Token {
    /// Nothing: a literal `<`.
    Text,
    /// A comment, doctype or processing instruction, up to this offset.
    Skip(usize),
    /// A start tag (lower-cased name) and the offset after it.
    Start { name: String, end: usize },
    /// An end tag and the offset after it.
    End { name: String, end: usize },
}

/// Reads the markup starting at `html[at] == '<'`.
fn tag(html: &str, at: usize) -> Token {
    let bytes = html.as_bytes();
    let rest = &bytes[at + 1..];
    match rest.first() {
        Some(b'!') => {
            if rest.starts_with(b"!--") {
                let end = find(&bytes[at + 4..], b"-->").map_or(bytes.len(), |i| at + 4 + i + 3);
                return Token::Skip(end);
            }
            Token::Skip(memchr(b'>', rest).map_or(bytes.len(), |i| at + 1 + i + 1))
        }
        Some(b'?') => Token::Skip(memchr(b'>', rest).map_or(bytes.len(), |i| at + 1 + i + 1)),
        Some(b'/') => match rest.get(1) {
            Some(c) if c.is_ascii_alphabetic() => match name_and_end(html, at + 2) {
                (name, Some(end)) => Token::End { name, end },
                (_, None) => Token::Skip(bytes.len()),
            },
            // `</>` is nothing; `</ x>` a bogus comment, in HTML.
            Some(b'>') => Token::Skip(at + 3),
            Some(_) => Token::Skip(memchr(b'>', rest).map_or(bytes.len(), |i| at + 1 + i + 1)),
            None => Token::Text,
        },
        Some(c) if c.is_ascii_alphabetic() => match name_and_end(html, at + 1) {
            (name, Some(end)) => Token::Start { name, end },
            // A tag the input ends inside is dropped, as HTML does.
            (_, None) => Token::Skip(bytes.len()),
        },
        _ => Token::Text,
    }
}

/// The lower-cased tag name starting at `from`, and the offset after the tag's `>` (skipping
/// quoted attribute values); `None` when the tag never closes.
fn name_and_end(html: &str, from: usize) -> (String, Option<usize>) {
    let bytes = html.as_bytes();
    let len = bytes[from..]
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b':'))
        .unwrap_or(bytes.len() - from);
    let name = html[from..from + len].to_ascii_lowercase();
    let mut i = from + len;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            // A quote opens a value only after `=` (possibly with spaces between).
            None if (b == b'"' || b == b'\'') && preceded_by_equals(bytes, from + len, i) => quote = Some(b),
            None if b == b'>' => return (name, Some(i + 1)),
            None => {}
        }
        i += 1;
    }
    (name, None)
}

fn preceded_by_equals(bytes: &[u8], start: usize, i: usize) -> bool {
    bytes[start..i]
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'=')
}

/// Where `</name` starts at or after `from` (ASCII case-insensitive), if anywhere.
fn find_end_tag(html: &str, from: usize, name: &str) -> Option<usize> {
    let bytes = html.as_bytes();
    let mut at = from;
    while let Some(i) = find(&bytes[at..], b"</") {
        let start = at + i;
        let candidate = &bytes[start + 2..];
        if candidate.len() >= name.len()
            && candidate[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            && candidate
                .get(name.len())
                .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'-'))
        {
            return Some(start);
        }
        at = start + 2;
    }
    None
}

/// The offset after the end tag of `name` at or after `from`, or the end of input.
fn after_end_tag(html: &str, from: usize, name: &str) -> usize {
    match find_end_tag(html, from, name) {
        Some(start) => name_and_end(html, start + 2).1.unwrap_or(html.len()),
        None => html.len(),
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_kept_without_attributes_and_inline_elements_dropped() {
        assert_eq!(
            simplify("<div class=\"x\"><p style='a>b'>Hi <b>you</b>,<br/>there</p></div>"),
            "<div><p>Hi you,<br>there</p></div>"
        );
    }

    #[test]
    fn scripts_styles_and_comments_disappear_and_entities_stay_for_the_renderer() {
        assert_eq!(
            simplify("<style>p{}</style><!-- x --><script>if (a<b) {}</SCRIPT >Caf&eacute; a < b"),
            "Caf&eacute; a &lt; b"
        );
    }

    #[test]
    fn self_closing_non_void_tags_and_stray_end_tags_cannot_deepen_or_misnest() {
        let out = simplify(&"<ul/><div/><span></b>x".repeat(10_000));
        assert!(out.matches("<ul>").count() + out.matches("<div>").count() <= MAX_DEPTH);
        assert!(!out.contains("<span") && !out.contains("</b>"));
        assert_eq!(out.matches('x').count(), 10_000);
    }

    #[test]
    fn end_tags_close_what_was_opened_after_them_and_everything_closes_at_the_end() {
        assert_eq!(
            simplify("<div><ul><li>a<li>b</div>c"),
            "<div><ul><li>a</li><li>b</li></ul></div>c"
        );
        assert_eq!(simplify("<p>a<div>b"), "<p>a</p><div>b</div>");
        assert_eq!(simplify("</p>x</div>"), "<br>x");
    }

    #[test]
    fn tables_become_rows_of_cells_and_their_parts_need_their_table() {
        assert_eq!(
            simplify("<table><tr><td>a<td>b<tr><td>c</table>"),
            "<div><div> a b</div><div> c</div></div>"
        );
        assert_eq!(simplify("<td>a</td><tr>b"), "<br>a<br>b");
        // A cell's end tag never closes the table around a nested one.
        assert_eq!(
            simplify("<table><tr><td><table><tr><td>x</td></tr></table></td>y</tr></table>"),
            "<div><div> <div><div> x</div></div>y</div></div>"
        );
    }

    #[test]
    fn deep_lists_and_quotes_become_plain_blocks() {
        let out = simplify(&"<ul><li>x".repeat(10));
        assert_eq!(out.matches("<ul>").count(), MAX_LIST_DEPTH);
        let out = simplify(&"<blockquote>x".repeat(10));
        assert_eq!(out.matches("<blockquote>").count(), MAX_QUOTE_DEPTH);
    }

    #[test]
    fn unterminated_markup_ends_the_input_quietly() {
        assert_eq!(simplify("a<!-- never closed"), "a");
        assert_eq!(simplify("a<div class=\"x>b"), "a");
        assert_eq!(simplify("a<"), "a&lt;");
        assert_eq!(
            simplify("<textarea>x<b>y</b>\nz</textarea>"),
            "x&lt;b>y&lt;/b><br>z<br>"
        );
    }
}
