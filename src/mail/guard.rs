//! A linear pre-scan that bounds MIME structure before the real parser runs.
//!
//! mail-parser keeps a stack per open multipart and a part per delimiter, so a hostile message
//! with thousands of nested or sibling parts costs memory and time in proportion. Counting
//! boundary declarations and delimiter lines is cheap, so the input is cut at the line where
//! either limit is exceeded; the parser then sees an ordinary truncated multipart, which it
//! reads leniently.

use super::Limits;

/// Returns the prefix of `raw` that stays within the depth and part limits, and notes saying
/// what was dropped.
pub fn prescan<'a>(raw: &'a [u8], limits: &Limits) -> (&'a [u8], Vec<String>) {
    let mut open: Vec<&[u8]> = Vec::new();
    let mut parts = 0usize;
    let mut offset = 0usize;
    // (The lines are found with memchr: this pass reads every byte of every message.)
    let ends = memchr::memchr_iter(b'\n', raw).chain(std::iter::once(raw.len()));
    for end in ends {
        let line = &raw[offset..end];
        let start = offset;
        offset += line.len() + 1;
        if let Some(boundary) = declared_boundary(line) {
            if !open.contains(&boundary) {
                open.push(boundary);
            }
            if open.len() > limits.max_depth {
                let note = format!(
                    "MIME nesting deeper than {} levels was not read",
                    limits.max_depth
                );
                return (&raw[..start], vec![note]);
            }
            continue;
        }
        let Some(rest) = line.strip_prefix(b"--") else {
            continue;
        };
        let Some(level) = open.iter().rposition(|b| {
            rest.strip_prefix(*b)
                .is_some_and(|tail| matches!(tail.trim_ascii(), b"" | b"--"))
        }) else {
            continue;
        };
        if rest[open[level].len()..].trim_ascii() == b"--" {
            open.truncate(level);
            continue;
        }
        parts += 1;
        if parts > limits.max_parts {
            let note = format!("MIME parts after the first {} were not read", limits.max_parts);
            return (&raw[..start], vec![note]);
        }
    }
    (raw, Vec::new())
}

/// The value of a `boundary=` parameter on this line, if it declares one.
fn declared_boundary(line: &[u8]) -> Option<&[u8]> {
    // Look only at `=` signs (memchr): far fewer than bytes, even in quoted-printable text.
    for eq in memchr::memchr_iter(b'=', line) {
        if eq < 8 || !line[eq - 8..eq].eq_ignore_ascii_case(b"boundary") {
            continue;
        }
        let value = &line[eq + 1..];
        let value = match value.strip_prefix(b"\"") {
            Some(quoted) => &quoted[..quoted.iter().position(|&b| b == b'"')?],
            None => {
                let end = value
                    .iter()
                    .position(|&b| b == b';' || b.is_ascii_whitespace())
                    .unwrap_or(value.len());
                &value[..end]
            }
        };
        return (!value.is_empty()).then_some(value);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Vec<u8> {
        let mut raw = b"From: a@b\nSubject: deep\n".to_vec();
        for i in 0..depth {
            raw.extend(format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n").as_bytes());
        }
        raw.extend(b"Content-Type: text/plain\n\nhello\n");
        raw
    }

    #[test]
    fn a_shallow_message_is_left_whole() {
        let raw = nested(3);
        let (kept, notes) = prescan(&raw, &Limits::default());
        assert_eq!(kept.len(), raw.len());
        assert!(notes.is_empty());
    }

    #[test]
    fn nesting_beyond_the_limit_is_cut_with_a_note() {
        let raw = nested(200);
        let (kept, notes) = prescan(&raw, &Limits::default());
        assert!(kept.len() < raw.len() / 5);
        assert!(notes[0].contains("nesting"));
    }

    #[test]
    fn parts_beyond_the_limit_are_cut_with_a_note() {
        let mut raw = b"From: a@b\nContent-Type: multipart/mixed; boundary=x\n\n".to_vec();
        for _ in 0..1000 {
            raw.extend(b"--x\nContent-Type: text/plain\n\npart\n");
        }
        raw.extend(b"--x--\n");
        let (kept, notes) = prescan(&raw, &Limits::default());
        assert!(kept.len() < raw.len() / 2);
        assert!(notes[0].contains("parts"));
    }

    #[test]
    fn a_closed_multipart_no_longer_counts_towards_depth() {
        let mut raw = b"From: a@b\nContent-Type: multipart/mixed; boundary=top\n\n".to_vec();
        for i in 0..40 {
            raw.extend(
                format!(
                    "--top\nContent-Type: multipart/alternative; boundary=a{i}\n\n--a{i}\n\nx\n--a{i}--\n"
                )
                .as_bytes(),
            );
        }
        let (kept, notes) = prescan(&raw, &Limits::default());
        assert_eq!(kept.len(), raw.len());
        assert!(notes.is_empty());
    }
}
