//! Splits a plain-text body into new text, quoted history and signature.
//!
//! What the sender wrote this time decides the queue; the thread below it and the signature
//! (company names, disclaimers) often talk about something else. Recognised, in the seven
//! languages: `>` quoting, reply attributions (`On … wrote:`, `Am … schrieb …:`,
//! `El … escribió:`, `Le … a écrit :`, `Il … ha scritto:`, `Op … schreef …:`,
//! `W dniu … napisał(a):`), Outlook's `-----Original Message-----` separators and
//! `From:/Sent:` header blocks, forwarded-message markers, `-- ` signature separators and
//! closings (`Kind regards`, `Mit freundlichen Grüßen`, `Un saludo`, …) followed by a short
//! name/company block.

use std::sync::LazyLock;

use regex::Regex;

use crate::text::fold;

/// A body split into its zones. Concatenated, they hold every line of the input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zones {
    /// The new text.
    pub new_text: String,
    /// Quoted or forwarded history, with the `>` markers removed.
    pub quoted: String,
    /// The closing and signature block.
    pub signature: String,
}

static ATTRIBUTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(on|am|el|le|il|op|w dniu|dnia)\b.{0,240}\b(wrote|schrieb|escribi[óo]|a [ée]crit|ha scritto|schreef|napisa[łl](\(a\)|a)?)(\s*:?|\s.{0,160}:)\s*$",
    )
    .expect("attribution regex")
});

static SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^\s*(
            -{2,}\s*(original\s+message|urspr[üu]ngliche\s+nachricht|mensaje\s+original|message\s+d.origine|messaggio\s+originale|oorspronkelijk\s+bericht|wiadomo[śs][ćc]\s+oryginalna|forwarded\s+message|weitergeleitete\s+nachricht|mensaje\s+reenviado|message\s+transf[ée]r[ée]|messaggio\s+inoltrato|doorgestuurd\s+bericht|przekazana\s+wiadomo[śs][ćc]|original\s+nachricht)\s*-{2,}
            | _{10,}
            | (begin\s+forwarded\s+message|anfang\s+der\s+weitergeleiteten\s+nachricht|inicio\s+del\s+mensaje\s+reenviado|d[ée]but\s+du\s+message\s+r[ée]exp[ée]di[ée])\s*:
        )\s*$",
    )
    .expect("separator regex")
});

static HEADER_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?(from|von|de|da|van|od|sender|absender)\s*:\*?\s*\S").expect("from regex")
});

static HEADER_OTHER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*\*?(sent|gesendet|enviado|envoy[ée]|inviato|verzonden|wys[łl]ano|date|datum|fecha|data|subject|betreff|asunto|objet|oggetto|onderwerp|temat|to|an|para|[àa]|aan|do|cc)\s*:",
    )
    .expect("header regex")
});

/// Closings that begin a signature block, folded (see [`crate::text::fold`]).
const CLOSINGS: &[&str] = &[
    // English
    "best regards",
    "kind regards",
    "warm regards",
    "regards",
    "best wishes",
    "best",
    "cheers",
    "thanks",
    "thank you",
    "many thanks",
    "sincerely",
    "yours sincerely",
    "yours faithfully",
    "all the best",
    // German
    "mit freundlichen grussen",
    "mit freundlichen gruessen",
    "mit freundlichem gruss",
    "freundliche grusse",
    "viele grusse",
    "beste grusse",
    "liebe grusse",
    "herzliche grusse",
    "schone grusse",
    "gruss",
    "grusse",
    "lg",
    "vg",
    "mfg",
    "danke",
    "vielen dank",
    // Spanish
    "un saludo",
    "saludos",
    "un cordial saludo",
    "saludos cordiales",
    "atentamente",
    "gracias",
    "muchas gracias",
    "un abrazo",
    // French
    "cordialement",
    "bien cordialement",
    "bien a vous",
    "salutations",
    "meilleures salutations",
    "sinceres salutations",
    "merci",
    "merci d'avance",
    "merci beaucoup",
    // Italian
    "cordiali saluti",
    "distinti saluti",
    "saluti",
    "un saluto",
    "grazie",
    "grazie mille",
    "buona giornata",
    // Dutch
    "met vriendelijke groet",
    "met vriendelijke groeten",
    "vriendelijke groet",
    "groeten",
    "groet",
    "mvg",
    "bedankt",
    "alvast bedankt",
    "hartelijke groet",
    // Polish
    "z powazaniem",
    "pozdrawiam",
    "pozdrowienia",
    "serdecznie pozdrawiam",
    "dziekuje",
    "dziekuje bardzo",
    "z wyrazami szacunku",
];

/// Splits `body` into new text, quoted history and signature.
pub fn split(body: &str) -> Zones {
    let body = body.replace("\r\n", "\n");
    let lines: Vec<&str> = body.split('\n').collect();
    let cut = history_start(&lines).unwrap_or(lines.len());

    let mut new_lines = Vec::new();
    let mut quoted = Vec::new();
    for line in &lines[..cut] {
        match line.trim_start().strip_prefix('>') {
            Some(rest) => quoted.push(rest.trim_start_matches(['>', ' '])),
            None => new_lines.push(*line),
        }
    }
    quoted.extend(
        lines[cut..]
            .iter()
            .map(|l| l.trim_start().trim_start_matches(['>', ' '])),
    );

    let sig = signature_start(&new_lines).unwrap_or(new_lines.len());
    Zones {
        new_text: join(&new_lines[..sig]),
        quoted: join(&quoted),
        signature: join(&new_lines[sig..]),
    }
}

fn join(lines: &[&str]) -> String {
    lines.join("\n").trim().to_string()
}

/// Words every attribution line contains (lower case); lines without one skip the regex.
const ATTRIBUTION_VERBS: [&str; 7] = [
    "wrote", "schrieb", "escribi", "crit", "scritto", "schreef", "napisa",
];

fn may_attribute(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    ATTRIBUTION_VERBS.iter().any(|v| lower.contains(v))
}

/// The index of the first line of quoted or forwarded history.
fn history_start(lines: &[&str]) -> Option<usize> {
    for (i, line) in lines.iter().enumerate() {
        if line.len() > 400 || line.trim().is_empty() {
            continue;
        }
        if SEPARATOR.is_match(line) || (may_attribute(line) && ATTRIBUTION.is_match(line)) {
            return Some(i);
        }
        // Attributions that the mail client wrapped over two lines.
        if let Some(next) = lines.get(i + 1)
            && line.len() + next.len() < 400
            && may_attribute(next)
            && ATTRIBUTION.is_match(&format!("{} {}", line.trim(), next.trim()))
        {
            return Some(i);
        }
        if HEADER_FROM.is_match(line) {
            let following = lines[i + 1..].iter().take(5);
            if following.filter(|l| HEADER_OTHER.is_match(l)).count() >= 1 {
                return Some(i);
            }
        }
    }
    None
}

/// The index of the line that begins the signature, if the new text ends with one.
fn signature_start(lines: &[&str]) -> Option<usize> {
    if let Some(i) = lines.iter().position(|l| l.trim_end() == "--") {
        return Some(i);
    }
    let last = lines.iter().rposition(|l| !l.trim().is_empty())?;
    // A closing is only a closing near the end: at most eight lines of name/company below it.
    let first = last.saturating_sub(8);
    (first..=last).find(|&i| i > 0 && is_closing(lines[i]) && tail_is_short(&lines[i + 1..=last]))
}

fn is_closing(line: &str) -> bool {
    let folded = fold(line.trim()).text;
    if folded.is_empty() || folded.len() > 60 {
        return false;
    }
    CLOSINGS.iter().any(|c| {
        folded.strip_prefix(c).is_some_and(|rest| {
            let rest = rest.trim_start_matches([',', '.', '!', ' ', '&', '-']);
            // "Un saludo, Iñaki" or "Danke & VG", not "thanks for checking the invoice".
            rest.split_whitespace().count() <= 3 && !rest.starts_with("for ")
        }) && !folded.starts_with(&format!("{c}s for"))
    })
}

fn tail_is_short(lines: &[&str]) -> bool {
    lines.iter().filter(|l| !l.trim().is_empty()).count() <= 6 && lines.iter().all(|l| l.len() <= 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gt_quoted_lines_go_to_the_quoted_zone() {
        let z = split("Please fix the plugin.\n> Your invoice is attached.\n> Regards");
        assert_eq!(z.new_text, "Please fix the plugin.");
        assert!(z.quoted.contains("Your invoice is attached."));
    }

    #[test]
    fn reply_attributions_in_every_language_start_the_history() {
        let attributions = [
            "On Mon, 3 Jun 2024 at 10:12, Support <a@b.com> wrote:",
            "El lun, 3 jun 2024 a las 10:12, Soporte <a@b.com> escribió:",
            "Am 03.06.2024 um 10:12 schrieb Support <a@b.com>:",
            "Le lun. 3 juin 2024 à 10:12, Support <a@b.com> a écrit :",
            "Il giorno lun 3 giu 2024 alle 10:12 Support <a@b.com> ha scritto:",
            "Op ma 3 jun. 2024 om 10:12 schreef Support <a@b.com>:",
            "W dniu 3.06.2024 o 10:12, Support <a@b.com> napisał(a):",
        ];
        for a in attributions {
            let z = split(&format!("New text.\n\n{a}\nold thread about invoices"));
            assert_eq!(z.new_text, "New text.", "{a}");
            assert!(z.quoted.contains("old thread"), "{a}");
        }
    }

    #[test]
    fn an_attribution_wrapped_over_two_lines_is_recognised() {
        let z = split("New.\nOn Mon, 3 Jun 2024 at 10:12, Support Team <a@b.com>\nwrote:\nold");
        assert_eq!(z.new_text, "New.");
    }

    #[test]
    fn outlook_header_blocks_start_the_history() {
        for block in [
            "-----Original Message-----\nFrom: x",
            "Von: Support <a@b.de>\nGesendet: Montag, 3. Juni 2024 10:12\nBetreff: Rechnung",
            "De: Soporte <a@b.es>\nEnviado el: lunes\nAsunto: factura",
            "________________________________\nFrom: a",
        ] {
            let z = split(&format!("New text.\n\n{block}\nold"));
            assert_eq!(z.new_text, "New text.", "{block}");
        }
    }

    #[test]
    fn a_closing_and_company_block_become_the_signature() {
        let z = split(
            "Hallo,\n\nbitte Rechnung korrigieren.\n\nMit freundlichen Grüßen\nAnna Berg\nBerg Möbel GmbH",
        );
        assert_eq!(z.new_text, "Hallo,\n\nbitte Rechnung korrigieren.");
        assert!(z.signature.starts_with("Mit freundlichen Grüßen"));
    }

    #[test]
    fn a_sentence_that_starts_like_a_closing_is_not_a_signature() {
        let z = split("Hello,\nThanks for the quick reply, but the widget is still missing.\nAnna");
        assert!(z.new_text.contains("widget is still missing"));
    }

    #[test]
    fn dash_dash_separates_the_signature() {
        let z = split("Question about the seal.\n-- \nShop GmbH\nAGB | Impressum");
        assert_eq!(z.new_text, "Question about the seal.");
        assert!(z.signature.contains("AGB"));
    }

    #[test]
    fn a_body_without_history_is_all_new_text() {
        let z = split("Just one line");
        assert_eq!(
            z,
            Zones {
                new_text: "Just one line".into(),
                ..Zones::default()
            }
        );
    }
}
