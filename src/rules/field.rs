//! The parts of a message a rule can read, and how much each counts.

use std::fmt;

/// A part of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// The subject line.
    Subject,
    /// The new text of the body.
    Body,
    /// Quoted history and forwarded messages.
    Quoted,
    /// Closing and signature block.
    Signature,
    /// Sender name and address.
    From,
    /// Recipients.
    To,
    /// Carbon-copy recipients.
    Cc,
    /// All headers as `name: value` lines.
    Headers,
    /// Attachment file names.
    AttachmentNames,
}

impl Field {
    /// Every field, in scanning order.
    pub const ALL: [Field; 9] = [
        Field::Subject,
        Field::Body,
        Field::Quoted,
        Field::Signature,
        Field::From,
        Field::To,
        Field::Cc,
        Field::Headers,
        Field::AttachmentNames,
    ];

    /// How much a term found in this field counts, relative to the new body text.
    ///
    /// The subject is the sender's own summary; quoted history is usually another request
    /// (often another department's), and signatures carry company names and disclaimers.
    pub fn weight(self) -> f64 {
        match self {
            Field::Subject => 1.5,
            Field::Body => 1.0,
            Field::Quoted => 0.25,
            Field::Signature => 0.2,
            Field::From | Field::To | Field::Cc | Field::Headers => 1.0,
            Field::AttachmentNames => 0.5,
        }
    }

    /// The field's name in rule files and verdicts.
    pub fn name(self) -> &'static str {
        match self {
            Field::Subject => "subject",
            Field::Body => "body",
            Field::Quoted => "quoted",
            Field::Signature => "signature",
            Field::From => "from",
            Field::To => "to",
            Field::Cc => "cc",
            Field::Headers => "headers",
            Field::AttachmentNames => "attachment_names",
        }
    }

    /// The field's bit in a [`FieldSet`]'s mask (and in any per-field mask): `1 << index`.
    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The fields a rule reads: whole fields, plus single headers by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    mask: u16,
    /// Lower-case header names read one by one (`header:auto-submitted`).
    headers: Vec<String>,
}

impl FieldSet {
    /// The default: subject, body, quoted history and signature.
    pub fn text() -> FieldSet {
        let mut set = FieldSet::default();
        for f in [Field::Subject, Field::Body, Field::Quoted, Field::Signature] {
            set.mask |= f.bit();
        }
        set
    }

    /// Adds a field by its rule-file name; `Err` names what was expected.
    pub fn add(&mut self, name: &str) -> Result<(), String> {
        let lower = name.trim().to_ascii_lowercase();
        if let Some(header) = lower.strip_prefix("header:") {
            if header.is_empty() || !header.chars().all(|c| c.is_ascii_graphic() && c != ':') {
                return Err(format!("`{name}` is not a header name"));
            }
            self.headers.push(header.to_string());
            return Ok(());
        }
        match lower.as_str() {
            "text" => self.mask |= FieldSet::text().mask,
            "any" => {
                for f in Field::ALL {
                    self.mask |= f.bit();
                }
            }
            other => {
                let field = Field::ALL
                    .into_iter()
                    .find(|f| f.name() == other)
                    .ok_or_else(|| {
                        format!(
                            "unknown field `{name}`: expected subject, body, quoted, signature, from, to, cc, headers, header:NAME, attachment_names, text or any"
                        )
                    })?;
                self.mask |= field.bit();
            }
        }
        Ok(())
    }

    /// True when a term found in `field` (in header `header`, for headers) counts for this set.
    pub fn reads(&self, field: Field, header: Option<&str>) -> bool {
        if self.mask & field.bit() != 0 {
            return true;
        }
        field == Field::Headers
            && header.is_some_and(|h| self.headers.iter().any(|n| n.eq_ignore_ascii_case(h)))
    }

    /// True when the set reads nothing.
    /// The headers read by name (lower case), besides the fields of the mask.
    pub fn header_names(&self) -> &[String] {
        &self.headers
    }

    pub fn is_empty(&self) -> bool {
        self.mask == 0 && self.headers.is_empty()
    }

    /// The fields of the set by their rule-file names, whole fields first (in
    /// [`Field::ALL`] order), then `header:NAME` for each single header.
    pub fn names(&self) -> Vec<String> {
        Field::ALL
            .into_iter()
            .filter(|f| self.mask & f.bit() != 0)
            .map(|f| f.name().to_string())
            .chain(self.headers.iter().map(|h| format!("header:{h}")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_reads_the_body_zones_but_not_headers() {
        let t = FieldSet::text();
        assert!(t.reads(Field::Subject, None) && t.reads(Field::Quoted, None));
        assert!(!t.reads(Field::Headers, Some("subject")));
    }

    #[test]
    fn a_single_header_is_read_by_name_only() {
        let mut set = FieldSet::default();
        set.add("header:Auto-Submitted").unwrap();
        assert!(set.reads(Field::Headers, Some("auto-submitted")));
        assert!(!set.reads(Field::Headers, Some("precedence")));
    }

    #[test]
    fn a_set_names_its_whole_fields_then_its_single_headers() {
        let mut set = FieldSet::default();
        set.add("header:Precedence").unwrap();
        set.add("from").unwrap();
        set.add("subject").unwrap();
        assert_eq!(set.names(), ["subject", "from", "header:precedence"]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            FieldSet::default()
                .add("bodyy")
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
