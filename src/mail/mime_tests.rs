//! One test per decoding case, each on a small hand-written message.

use crate::mail::{Limits, parse};
use crate::message::Message;

fn mail(raw: &[u8]) -> Message {
    parse(raw, &Limits::default()).expect("parses")
}

fn header<'m>(m: &'m Message, name: &str) -> Option<&'m str> {
    m.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn iso_8859_1_bodies_decode() {
    let m = mail(b"From: a@b.de\nSubject: s\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\nGr\xfc\xdfe aus M\xfcnchen");
    assert_eq!(m.body, "Grüße aus München");
}

#[test]
fn iso_8859_15_bodies_decode_the_euro_sign() {
    let m = mail(b"From: a@b.fr\nSubject: s\nContent-Type: text/plain; charset=ISO-8859-15\n\nPrix: 10 \xa4");
    assert_eq!(m.body, "Prix: 10 €");
}

#[test]
fn windows_1252_quoted_printable_bodies_decode_typographic_quotes() {
    let m = mail(b"From: a@b.de\nSubject: s\nContent-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: quoted-printable\n\n=84Kanzlei=93 =80 1.134,55 =96 ok");
    assert_eq!(m.body, "„Kanzlei“ € 1.134,55 – ok");
}

#[test]
fn iso_8859_2_bodies_decode_polish_letters() {
    let m = mail(b"From: a@b.pl\nSubject: s\nContent-Type: text/plain; charset=iso-8859-2\n\nzam\xf3wienie, pieni\xeadzy, \xb3\xb1ka");
    assert_eq!(m.body, "zamówienie, pieniędzy, łąka");
}

#[test]
fn utf8_base64_bodies_decode() {
    let m = mail(b"From: a@b.it\nSubject: s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nw6ggcG9zc2liaWxlIGZpc3NhcmUgdW5hIGRlbW8/\n");
    assert_eq!(m.body, "è possibile fissare una demo?");
}

#[test]
fn eight_bit_bodies_without_a_charset_try_utf8_then_windows_1252() {
    let m = mail("From: a@b.de\nSubject: s\n\nGrüße".as_bytes());
    assert_eq!(m.body, "Grüße");
    let m = mail(b"From: a@b.de\nSubject: s\n\nGr\xfc\xdfe \x80");
    assert_eq!(m.body, "Grüße €");
}

#[test]
fn quoted_printable_soft_breaks_inside_a_multibyte_character_join_it_again() {
    let m = mail(b"From: a@b.de\nSubject: s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nK=C3=\n=A4uferschutz und =E2=80=\n=9Eda=E2=80=9C");
    assert_eq!(m.body, "Käuferschutz und „da“");
}

#[test]
fn encoded_words_in_any_charset_are_decoded_in_subject_from_and_headers() {
    let m = mail(b"From: =?ISO-8859-1?Q?J=FCrgen_M=F6ller?= <j@m.de>\nTo: =?utf-8?B?QW5uYSBLYW1pxYRza2E=?= <a@k.pl>\nSubject: =?windows-1252?Q?Facture_=96_montant?= =?utf-8?Q?_erron=C3=A9?=\nX-Note: =?iso-8859-15?Q?=A4uro?= =?utf-8?Q?_gr=C3=BC=C3=9Fe?=\n\nx");
    assert_eq!(m.from, "Jürgen Möller <j@m.de>");
    assert_eq!(m.to, ["Anna Kamińska <a@k.pl>"]);
    assert_eq!(m.subject, "Facture – montant erroné");
    assert_eq!(header(&m, "Subject"), Some("Facture – montant erroné"));
    assert_eq!(header(&m, "x-note"), Some("€uro grüße"));
}

#[test]
fn html_only_messages_become_readable_text() {
    let m = mail(b"From: a@b.fr\nSubject: s\nContent-Type: text/html; charset=utf-8\n\n<html><head><style>.x{}</style></head><body><p>Bonjour,</p><p>la facture&nbsp;n&deg;&nbsp;12 est &laquo;&nbsp;fausse&nbsp;&raquo;.</p><script>x()</script></body></html>");
    assert_eq!(
        m.body,
        "Bonjour,\n\nla facture\u{a0}n°\u{a0}12 est «\u{a0}fausse\u{a0}»."
    );
}

#[test]
fn html_replies_put_their_quote_container_in_the_quoted_zone() {
    let m = mail(b"From: a@b.de\nSubject: AW: Rechnung\nContent-Type: text/html; charset=utf-8\n\n<div>Das Plugin zeigt das Trustbadge nicht.</div><div id=\"divRplyFwdMsg\"><b>Von:</b> Contract<br><b>Gesendet:</b> Montag</div><div>Ihre Rechnung ist offen.</div>");
    assert_eq!(m.body, "Das Plugin zeigt das Trustbadge nicht.");
    assert!(m.quoted.contains("Ihre Rechnung ist offen."));
}

#[test]
fn nested_multiparts_prefer_plain_text_and_name_attachments() {
    let raw = b"From: a@b.de\nSubject: s\nContent-Type: multipart/mixed; boundary=outer\n\n--outer\nContent-Type: multipart/related; boundary=rel\n\n--rel\nContent-Type: multipart/alternative; boundary=alt\n\n--alt\nContent-Type: text/plain; charset=utf-8\n\nPlain wins.\n--alt\nContent-Type: text/html\n\n<p>HTML loses.</p>\n--alt--\n--rel\nContent-Type: image/png\nContent-Disposition: inline; filename=logo.png\n\nPNGDATA\n--rel--\n--outer\nContent-Type: text/plain; name=notes.txt\nContent-Disposition: attachment; filename=notes.txt\n\nattached text is not read\n--outer--\n";
    let m = mail(raw);
    assert_eq!(m.body, "Plain wins.");
    assert_eq!(m.attachment_names, ["logo.png", "notes.txt"]);
    assert!(!m.body.contains("not read") && !m.quoted.contains("not read"));
}

#[test]
fn an_attached_message_is_quoted_history() {
    let raw = b"From: a@b.de\nSubject: Fwd: offer\nContent-Type: multipart/mixed; boundary=f\n\n--f\nContent-Type: text/plain\n\nWho is our contact now?\n--f\nContent-Type: message/rfc822\n\nFrom: sales@x.com\nSubject: Your offer\n\nHere are our prices and packages.\n--f--\n";
    let m = mail(raw);
    assert_eq!(m.body, "Who is our contact now?");
    assert!(m.quoted.contains("Subject: Your offer"));
    assert!(m.quoted.contains("prices and packages"));
}

#[test]
fn a_bounce_reads_its_notice_and_quotes_the_original() {
    let raw = b"From: MAILER-DAEMON@mx.example (Mail Delivery System)\nSubject: Undelivered Mail\nContent-Type: multipart/report; report-type=delivery-status; boundary=r\n\n--r\nContent-Type: text/plain\n\nDelivery failed.\n--r\nContent-Type: message/delivery-status\n\nAction: failed\nStatus: 5.1.1\n--r\nContent-Type: message/rfc822\n\nFrom: contract@ts.com\nSubject: Your invoice\n\nYour invoice is attached.\n--r--\n";
    let m = mail(raw);
    assert_eq!(m.body, "Delivery failed.");
    assert!(m.quoted.contains("Your invoice is attached."));
    assert!(m.from.contains("MAILER-DAEMON@mx.example"));
    let ct = header(&m, "content-type").unwrap();
    assert!(ct.contains("multipart/report") && ct.contains("report-type=delivery-status"));
}

#[test]
fn a_read_receipt_keeps_its_disposition_notification_type() {
    let raw = b"From: g@r.uk\nSubject: Read: contract\nContent-Type: multipart/report; report-type=disposition-notification; boundary=m\n\n--m\nContent-Type: text/plain\n\nYour message was displayed.\n--m\nContent-Type: message/disposition-notification\n\nDisposition: manual-action/MDN-sent-manually; displayed\n--m--\n";
    let m = mail(raw);
    assert_eq!(m.body, "Your message was displayed.");
    assert!(
        header(&m, "content-type")
            .unwrap()
            .contains("disposition-notification")
    );
}

#[test]
fn an_out_of_office_with_headers_keeps_them_by_name() {
    let raw = "From: b@f.de\nSubject: Abwesenheitsnotiz\nAuto-Submitted: auto-replied\nX-Autoreply: yes\nX-Autorespond: yes\nPrecedence: auto_reply\n\nIch bin im Urlaub.".as_bytes();
    let m = mail(raw);
    assert_eq!(header(&m, "auto-submitted"), Some("auto-replied"));
    assert_eq!(header(&m, "x-autoreply"), Some("yes"));
    assert_eq!(header(&m, "x-autorespond"), Some("yes"));
    assert_eq!(header(&m, "precedence"), Some("auto_reply"));
    assert_eq!(m.body, "Ich bin im Urlaub.");
}

#[test]
fn an_out_of_office_without_headers_is_read_as_ordinary_text() {
    let raw =
        "From: b@f.es\nSubject: Fuera de la oficina\n\nEstoy fuera de la oficina hasta el lunes.".as_bytes();
    let m = mail(raw);
    assert_eq!(m.subject, "Fuera de la oficina");
    assert_eq!(m.body, "Estoy fuera de la oficina hasta el lunes.");
    assert!(header(&m, "auto-submitted").is_none());
}

#[test]
fn oversized_text_parts_are_cut_with_a_note() {
    let limits = Limits {
        max_part_bytes: 100,
        ..Limits::default()
    };
    let raw = format!("From: a@b.c\nSubject: s\n\n{}", "wörter ".repeat(100));
    let m = parse(raw.as_bytes(), &limits).unwrap();
    assert!(m.body.len() <= 100);
    assert!(m.notes.iter().any(|n| n.contains("cut")));
}

#[test]
fn attachment_names_split_over_rfc2231_sections_or_encoded_words_are_joined() {
    let m = mail(
        b"From: a@b.de\r\nSubject: Anhang\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
          --b\r\nContent-Type: text/plain\r\n\r\nAnbei.\r\n\
          --b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*0*=utf-8''Rechnung_M%C3;\r\n filename*1*=%A4rz.pdf\r\n\r\nJVBERi0=\r\n\
          --b\r\nContent-Type: application/pdf; name=\"=?utf-8?B?R3V0c2NocmlmdF/D?= =?utf-8?B?pHJ6LnBkZg==?=\"\r\nContent-Disposition: attachment\r\n\r\nJVBERi0=\r\n\
          --b--\r\n",
    );
    assert_eq!(
        m.attachment_names,
        vec!["Rechnung_März.pdf", "Gutschrift_ärz.pdf"]
    );
}

#[test]
fn a_subject_split_inside_a_character_is_decoded_whole() {
    let m =
        mail(b"From: a@b.de\r\nSubject: =?utf-8?B?S8M=?=\r\n =?utf-8?B?vG5kaWd1bmc=?=\r\n\r\nsiehe Betreff");
    assert_eq!(m.subject, "K\u{fc}ndigung");
}

#[test]
fn a_base64_text_part_that_the_parser_cannot_decode_is_decoded_leniently() {
    // A blank line before the data, as some bulk mailers write it.
    let m = mail(
        b"From: a@b.de\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
          --b\r\nContent-Type: text/plain; charset=\"iso-8859-1\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\r\n\
          S/xuZGlndW5nIHVuc2VyZXMgVmVydHJhZ3M=\r\n\r\n--b--\r\n",
    );
    assert_eq!(m.body, "K\u{fc}ndigung unseres Vertrags");
}
