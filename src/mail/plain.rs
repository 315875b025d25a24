//! Plain text, with an optional RFC 5322-looking header block on top.

use crate::message::{Message, Ticket};

/// Parses plain text. The first blank-line-separated block counts as headers only when every
/// line of it is a header (or a folded continuation) and it names a `Subject` or `From`.
pub fn parse(raw: &[u8]) -> Message {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_start_matches('\u{feff}');
    let (headers, body) = split_headers(text).unwrap_or((Vec::new(), text));
    let mut ticket = Ticket {
        body: body.to_string(),
        ..Ticket::default()
    };
    let mut message_headers = Vec::new();
    for (name, value) in headers {
        match name.to_ascii_lowercase().as_str() {
            "subject" => ticket.subject = value.clone(),
            "from" => ticket.from = value.clone(),
            "to" => ticket.to = vec![value.clone()],
            _ => {}
        }
        message_headers.push((name, value));
    }
    let mut message = Message::from_ticket(&ticket);
    message.headers = message_headers;
    message
}

/// Splits a leading header block from the body, if there is one.
pub fn split_headers(text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let end = text.find("\n\n").or_else(|| text.find("\r\n\r\n"))?;
    let block = &text[..end];
    let body = text[end..].trim_start_matches(['\r', '\n']);
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            let (_, value) = headers.last_mut()?;
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let (name, value) = line.split_once(':')?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let named = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("subject") || n.eq_ignore_ascii_case("from"));
    named.then_some((headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_block_with_subject_is_read_as_headers() {
        let m = parse(b"Subject: Rechnung\nFrom: a@b.de\n\nHallo");
        assert_eq!(m.subject, "Rechnung");
        assert_eq!(m.from, "a@b.de");
        assert_eq!(m.body, "Hallo");
    }

    #[test]
    fn prose_with_a_colon_is_not_mistaken_for_headers() {
        let m = parse(b"Hello: we have a question\nabout the invoice\n\nThanks");
        assert!(m.subject.is_empty());
        assert!(m.body.contains("Hello: we have"));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let m = parse(b"Factura \xff\xfe mal");
        assert!(m.body.contains("Factura"));
    }
}
