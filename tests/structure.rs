//! Message structure with the default ruleset, in all seven languages: a negated or settled
//! topic is not evidence, the request decides, a reply subject is thread context, what
//! precedes a turn to the real request is preamble, a side point counts half, a reply's echo
//! of its thread counts half, "instead of" negates only the thing replaced, and a notification's
//! footer quoted under a reply is the thread's.

use triage::engine::structure::Context;
use triage::{Engine, Message, RuleSet, Ticket};

fn engine() -> Engine {
    Engine::new(RuleSet::builtin()).unwrap()
}

fn message(subject: &str, body: &str) -> Message {
    Message::from_ticket(&Ticket {
        subject: subject.into(),
        body: body.into(),
        ..Ticket::default()
    })
}

/// The context the engine gave the first occurrence of `word` in the body.
fn context_of(engine: &Engine, m: &Message, word: &str) -> Context {
    let d = engine.detailed("t", m);
    let at = m
        .body
        .find(word)
        .unwrap_or_else(|| panic!("{word} not in {}", m.body));
    d.body.context(at, at + word.len())
}

#[test]
fn a_settled_invoice_is_not_evidence_in_every_language() {
    let engine = engine();
    for (body, topic) in [
        (
            "The invoice is already paid. Could you change our bank details to the new IBAN?",
            "invoice",
        ),
        (
            "Die Rechnung ist bereits bezahlt. Könnten Sie unsere Bankverbindung auf die neue IBAN ändern?",
            "Rechnung",
        ),
        (
            "La factura ya está pagada. ¿Podrían cambiar nuestros datos bancarios al nuevo IBAN?",
            "factura",
        ),
        (
            "La facture est déjà réglée. Pourriez-vous changer nos coordonnées bancaires pour le nouvel IBAN ?",
            "facture",
        ),
        (
            "La fattura è già pagata. Potreste cambiare i nostri dati bancari con il nuovo IBAN?",
            "fattura",
        ),
        (
            "De factuur is al betaald. Kunnen jullie onze bankgegevens wijzigen naar het nieuwe IBAN?",
            "factuur",
        ),
        (
            "Faktura jest już opłacona. Czy mogą Państwo zmienić nasze dane bankowe na nowy IBAN?",
            "Faktura",
        ),
    ] {
        let m = message("", body);
        assert_eq!(context_of(&engine, &m, topic), Context::Negated, "{body}");
        assert_eq!(engine.classify("t", &m).queue, "contract", "{body}");
    }
}

#[test]
fn a_negated_topic_is_not_evidence_and_the_request_counts_more_in_every_language() {
    let engine = engine();
    for (body, negated, request) in [
        (
            "This is not a cancellation. Can you tell me how to add the trustbadge to our Shopify store?",
            "cancellation",
            "trustbadge",
        ),
        (
            "Das ist keine Kündigung. Können Sie mir sagen, wie ich den Trustbadge in Shopify einbinde?",
            "Kündigung",
            "Trustbadge",
        ),
        (
            "Esto no es una cancelación. ¿Pueden decirme cómo integro el Trustbadge en Shopify?",
            "cancelación",
            "Trustbadge",
        ),
        (
            "Ce n'est pas une résiliation. Pouvez-vous m'expliquer comment intégrer le Trustbadge dans Shopify ?",
            "résiliation",
            "Trustbadge",
        ),
        (
            "Non è una disdetta. Potete spiegarmi come integrare il Trustbadge in Shopify?",
            "disdetta",
            "Trustbadge",
        ),
        (
            "Het is geen opzegging. Kunnen jullie uitleggen hoe ik de Trustbadge in Shopify integreer?",
            "opzegging",
            "Trustbadge",
        ),
        (
            "To nie jest wypowiedzenie. Czy mogą Państwo wyjaśnić, jak zintegrować Trustbadge w Shopify?",
            "wypowiedzenie",
            "Trustbadge",
        ),
    ] {
        let m = message("", body);
        assert_eq!(context_of(&engine, &m, negated), Context::Negated, "{body}");
        assert_eq!(context_of(&engine, &m, request), Context::Request, "{body}");
        assert_eq!(engine.classify("t", &m).queue, "technical_success", "{body}");
    }
}

#[test]
fn a_topic_that_is_no_longer_the_question_is_negated_in_every_language() {
    let engine = engine();
    for (body, topic) in [
        (
            "This is no longer a question of the audit. How do I add a second user?",
            "audit",
        ),
        (
            "Es geht nicht mehr um das Audit. Wie lege ich einen zweiten Benutzer an?",
            "Audit",
        ),
        (
            "Ya no se trata de la auditoría. ¿Cómo añado un segundo usuario?",
            "auditoría",
        ),
        (
            "Il ne s'agit plus de l'audit. Comment ajouter un deuxième utilisateur ?",
            "audit",
        ),
        (
            "Non si tratta più di audit. Come aggiungo un secondo utente?",
            "audit",
        ),
        (
            "Het gaat niet meer over de audit. Hoe voeg ik een tweede gebruiker toe?",
            "audit",
        ),
        ("Nie chodzi już o audyt. Jak dodać drugiego użytkownika?", "audyt"),
    ] {
        let m = message("", body);
        assert_eq!(context_of(&engine, &m, topic), Context::Negated, "{body}");
    }
}

#[test]
fn a_reply_subject_is_thread_context_in_every_language() {
    let engine = engine();
    for subject in [
        "Re: Invoice 2024-118",
        "AW: Rechnung 2024-118",
        "RV: Factura 2024-118",
        "TR: Facture 2024-118",
        "R: Fattura 2024-118",
        "Antw: Factuur 2024-118",
        "Odp: Faktura 2024-118",
    ] {
        let m = message(
            subject,
            "The review widget does not load on our product pages since the update. Can you help?",
        );
        let d = engine.detailed("t", &m);
        assert!(d.reply_subject, "{subject}");
        assert_eq!(d.verdict.queue, "technical_success", "{subject}");
        let fresh = engine.detailed("t", &message(&subject[subject.find(':').unwrap() + 1..], &m.body));
        assert!(!fresh.reply_subject, "{subject}");
    }
}

#[test]
fn what_precedes_a_turn_to_the_real_request_is_preamble_in_every_language() {
    let engine = engine();
    for (subject, body, topic) in [
        (
            "Re: Invoice 2024-1187",
            "Thanks, the invoice arrived. Different thing though: how do I reset the password of our member area?",
            "invoice",
        ),
        (
            "AW: Rechnung 2024-1187",
            "Danke, die Rechnung ist angekommen. Andere Sache: wie setze ich das Passwort für unseren Mitgliederbereich zurück?",
            "Rechnung",
        ),
        (
            "RE: Factura 2024-1187",
            "Gracias, la factura ya llegó. Otra cosa: ¿cómo cambio la contraseña del área de miembros?",
            "factura",
        ),
        (
            "RE: Facture 2024-1187",
            "Merci, la facture est arrivée. Autre chose : comment réinitialiser le mot de passe de notre espace membre ?",
            "facture",
        ),
        (
            "R: Fattura 2024-1187",
            "Grazie, la fattura è arrivata. Un'altra cosa: come reimposto la password dell'area riservata?",
            "fattura",
        ),
        (
            "Antw: Factuur 2024-1187",
            "Bedankt, de factuur is binnen. Iets anders: hoe reset ik het wachtwoord van ons ledengedeelte?",
            "factuur",
        ),
        (
            "Odp: Faktura 2024-1187",
            "Dziękuję, faktura dotarła. Inna sprawa: jak zresetować hasło do panelu?",
            "faktura",
        ),
    ] {
        let m = message(subject, body);
        assert_eq!(context_of(&engine, &m, topic), Context::Preamble, "{body}");
        let verdict = engine.classify("t", &m);
        assert_eq!(verdict.queue, "customer_success", "{body}: {:?}", verdict.hits);
    }
}

#[test]
fn a_side_point_the_writer_calls_minor_counts_half_in_every_language() {
    let engine = engine();
    let technical = |m: &Message| {
        let verdict = engine.classify("t", m);
        let score = verdict
            .ranking
            .iter()
            .find(|r| r.queue == "technical_success")
            .map_or(0.0, |r| r.score);
        (verdict.queue, score)
    };
    // (subject, the request and a side point, the writer's mark that it is minor, a term of it)
    for (subject, plain, aside, term) in [
        (
            "Two questions",
            "How do I add a second user to our member area? The trustbadge plugin does not show on mobile.",
            ", no rush on that one.",
            "plugin",
        ),
        (
            "Zwei Fragen",
            "Wie lege ich einen zweiten Benutzer im Händlerbereich an? Das Trustbadge-Plugin wird mobil nicht angezeigt.",
            ", nicht dringend.",
            "Plugin",
        ),
        (
            "Dos preguntas",
            "¿Cómo añado un segundo usuario en el área de miembros? El plugin del trustbadge no se ve en el móvil.",
            ", sin prisa.",
            "plugin",
        ),
        (
            "Deux questions",
            "Comment ajouter un deuxième utilisateur dans l'espace membre ? Le plugin du trustbadge ne s'affiche pas sur mobile.",
            ", rien d'urgent.",
            "plugin",
        ),
        (
            "Due domande",
            "Come aggiungo un secondo utente nell'area riservata? Il plugin del trustbadge non si vede su mobile.",
            ", niente di urgente.",
            "plugin",
        ),
        (
            "Twee vragen",
            "Hoe voeg ik een tweede gebruiker toe in de ledenomgeving? De trustbadge-plugin verschijnt niet op mobiel.",
            ", geen haast.",
            "plugin",
        ),
        (
            "Dwa pytania",
            "Jak dodać drugiego użytkownika w panelu sprzedawcy? Wtyczka trustbadge nie wyświetla się na telefonie.",
            ", nic pilnego.",
            "Wtyczka",
        ),
    ] {
        let with_aside = message(subject, &format!("{}{aside}", plain.trim_end_matches('.')));
        assert_eq!(context_of(&engine, &with_aside, term), Context::Aside, "{aside}");
        let (queue, minor) = technical(&with_aside);
        let (_, full) = technical(&message(subject, plain));
        assert_eq!(queue, "customer_success", "{plain}{aside}");
        assert!(minor < full, "{aside}: {minor} is not less than {full}");
    }
}

#[test]
fn a_reply_that_echoes_its_threads_topic_before_asking_something_else_goes_to_the_question_in_every_language()
{
    let engine = engine();
    let echoes = |m: &Message| -> Vec<String> {
        let d = engine.detailed("t", m);
        d.echoes
            .iter()
            .map(|&r| engine.ruleset().rules[r].id.clone())
            .collect()
    };
    for (subject, body) in [
        (
            "Re: Your invoice 2025-0412",
            "Hello, thanks, the invoice arrived and has been passed on to our accountant. where in the Control Center can I see which reviews are still waiting for an answer?\nBest, Tom",
        ),
        (
            "AW: Ihre Rechnung 2025-0412",
            "Hallo, danke, die Rechnung ist angekommen und liegt schon bei unserer Buchhaltung. Wo sehe ich im Control Center, welche Bewertungen noch auf eine Antwort warten?\nGrüße, Tom",
        ),
        (
            "RE: Su factura 2025-0412",
            "Hola, gracias, la factura ha llegado y ya la tiene nuestra gestoría. ¿dónde veo en el Control Center qué valoraciones siguen pendientes de respuesta?\nSaludos, Tomás",
        ),
        (
            "RE: Votre facture 2025-0412",
            "Bonjour, merci, la facture est bien arrivée et notre comptable l'a déjà. où voir dans le Control Center quels avis attendent encore une réponse ?\nCordialement, Thomas",
        ),
        (
            "R: La vostra fattura 2025-0412",
            "Buongiorno, grazie, la fattura è arrivata e l'abbiamo già passata al commercialista. dove vedo nel Control Center quali recensioni aspettano ancora una risposta?\nSaluti, Tommaso",
        ),
        (
            "Re: Uw factuur 2025-0412",
            "Hallo, bedankt, de factuur is binnen en ligt al bij onze boekhouder. waar zie ik in het Control Center welke reviews nog op een antwoord wachten?\nGroet, Tom",
        ),
        (
            "Odp: Faktura 2025-0412",
            "Dzień dobry, dziękuję, faktura dotarła i jest już u naszej księgowej. gdzie w Control Center widać, które opinie wciąż czekają na odpowiedź?\nPozdrawiam, Tomasz",
        ),
    ] {
        let m = message(subject, body);
        assert!(
            echoes(&m).iter().any(|r| r == "contract.invoice"),
            "{subject}: {:?}",
            echoes(&m)
        );
        assert_eq!(engine.classify("t", &m).queue, "customer_success", "{subject}");
        // In a reply to another thread the same thanks is narrative text, not an echo.
        let other = message("Re: Webinar", body);
        assert!(echoes(&other).is_empty(), "{subject}: {:?}", echoes(&other));
    }
}

/// A forward or reply whose new text asks nothing is its own message: the thread's topic in it
/// is no echo, so it keeps its evidence and goes to that topic's queue, in every language.
#[test]
fn a_forward_that_asks_nothing_is_no_echo_of_its_thread_in_every_language() {
    let engine = engine();
    for (subject, body) in [
        (
            "Fwd: Invoice 2025-118",
            "Hi,\n\nforwarding the invoice that was charged twice to our card.\n\nBest, Anna",
        ),
        (
            "WG: Rechnung 2025-118",
            "Hallo,\n\nanbei die Rechnung, die bei uns doppelt abgebucht wurde.\n\nGruß, Anna",
        ),
        (
            "RV: Factura 2025-118",
            "Hola,\n\nos reenvío la factura que se nos ha cobrado dos veces.\n\nSaludos, Ana",
        ),
        (
            "TR: Facture 2025-118",
            "Bonjour,\n\nje vous transfère la facture qui nous a été débitée deux fois.\n\nCordialement, Anne",
        ),
        (
            "I: Fattura 2025-118",
            "Buongiorno,\n\nvi inoltro la fattura che ci è stata addebitata due volte.\n\nSaluti, Anna",
        ),
        (
            "Doorst: Factuur 2025-118",
            "Hallo,\n\nhierbij de factuur die twee keer is afgeschreven.\n\nGroet, Anna",
        ),
        (
            "PD: Faktura 2025-118",
            "Dzień dobry,\n\nprzesyłam fakturę, która została pobrana dwukrotnie.\n\nPozdrawiam, Anna",
        ),
    ] {
        let m = message(subject, body);
        let d = engine.detailed("t", &m);
        assert!(d.echoes.is_empty(), "{subject}: {:?}", d.echoes);
        assert_eq!(d.verdict.queue, "contract", "{subject}");
    }
}

#[test]
fn what_the_writer_wants_instead_is_not_negated_with_what_it_replaces_in_every_language() {
    let engine = engine();
    for (body, replaced, wanted) in [
        (
            "Instead of bank transfer we would like to pay by credit card from next month.",
            "bank transfer",
            "credit card",
        ),
        (
            "Wir möchten statt per Überweisung künftig per Kreditkarte zahlen.",
            "Überweisung",
            "Kreditkarte",
        ),
        (
            "En lugar de transferencia queremos pagar con tarjeta de crédito a partir de ahora.",
            "transferencia",
            "tarjeta",
        ),
        (
            "Au lieu du virement nous voudrions désormais payer par carte bancaire.",
            "virement",
            "carte",
        ),
        (
            "Invece del bonifico vorremmo pagare d'ora in poi con carta di credito.",
            "bonifico",
            "carta",
        ),
        (
            "In plaats van een overschrijving willen we voortaan met creditcard betalen.",
            "overschrijving",
            "creditcard",
        ),
        (
            "Zamiast przelewu chcielibyśmy od teraz płacić kartą kredytową.",
            "przelewu",
            "kartą",
        ),
        // Elided, and with the replacement's preposition repeated at once.
        (
            "Au lieu d'une facture annuelle nous voudrions des factures mensuelles.",
            "annuelle",
            "mensuelles",
        ),
        (
            "Invece dell'addebito annuale vorremmo un addebito mensile.",
            "annuale",
            "mensile",
        ),
        (
            "Bitte statt per Überweisung per Kreditkarte abbuchen.",
            "Überweisung",
            "Kreditkarte",
        ),
        (
            "Could we pay by card instead of by transfer by the end of the month?",
            "transfer",
            "month",
        ),
    ] {
        let m = message("", body);
        assert_eq!(context_of(&engine, &m, replaced), Context::Negated, "{body}");
        assert_ne!(context_of(&engine, &m, wanted), Context::Negated, "{body}");
    }
}

/// A shopper who answers a review invitation quotes its footer ("You are receiving this email
/// because you placed an order"): the footer is the thread's, not the writer's, and the reply is
/// a request (the `notification_footer` signal reads the writer's own text only).
#[test]
fn a_reply_to_a_review_invitation_that_quotes_its_footer_is_a_request_in_every_language() {
    let engine = engine();
    for (subject, body) in [
        (
            "Re: How was your order from Lampshade Corner?",
            "It never arrived! I paid 54 pounds three weeks ago and the shop does not answer. Can you help me get my money back?\n\nJoan\n\nOn 3 May 2026, at 10:02, Lampshade Corner <noreply@reviews.example> wrote:\n> How satisfied are you with your order? Rate it now!\n> You are receiving this email because you placed an order at Lampshade Corner.",
        ),
        (
            "AW: Wie zufrieden sind Sie mit Ihrer Bestellung?",
            "Die Ware ist nie angekommen! Ich habe vor drei Wochen 54 Euro bezahlt und der Shop antwortet nicht. Wie bekomme ich mein Geld zurück?\n\nJana\n\nAm 03.05.2026 um 10:02 schrieb Lampenwelt <noreply@reviews.example>:\n> Wie zufrieden sind Sie mit Ihrer Bestellung? Jetzt bewerten!\n> Sie erhalten diese E-Mail, weil Sie bei Lampenwelt bestellt haben.",
        ),
        (
            "RE: ¿Qué tal tu pedido en Lámparas Sol?",
            "¡Nunca llegó! Pagué 54 euros hace tres semanas y la tienda no contesta. ¿Me pueden ayudar a recuperar mi dinero?\n\nLucía\n\nEl 3 may 2026, a las 10:02, Lámparas Sol <noreply@reviews.example> escribió:\n> ¿Estás satisfecho con tu pedido? ¡Valóralo ahora!\n> Recibes este correo porque hiciste un pedido en Lámparas Sol.",
        ),
        (
            "RE: Votre commande chez Lumière & Co vous a plu ?",
            "Elle n'est jamais arrivée ! J'ai payé 54 euros il y a trois semaines et la boutique ne répond pas. Pouvez-vous m'aider à récupérer mon argent ?\n\nClaire\n\nLe 3 mai 2026 à 10:02, Lumière & Co <noreply@reviews.example> a écrit :\n> Êtes-vous satisfait de votre commande ? Donnez votre avis !\n> Vous recevez cet e-mail car vous avez passé commande chez Lumière & Co.",
        ),
        (
            "R: Com'è andato il tuo ordine da Luci Belle?",
            "Non è mai arrivato! Ho pagato 54 euro tre settimane fa e il negozio non risponde. Potete aiutarmi a riavere i soldi?\n\nGiulia\n\nIl giorno 3 mag 2026 alle 10:02 Luci Belle <noreply@reviews.example> ha scritto:\n> Sei soddisfatto del tuo ordine? Lascia una recensione!\n> Ricevi questa email perché hai effettuato un ordine da Luci Belle.",
        ),
        (
            "Antw: Hoe was je bestelling bij Lampenhuis?",
            "Het is nooit aangekomen! Ik heb drie weken geleden 54 euro betaald en de winkel reageert niet. Kunnen jullie helpen mijn geld terug te krijgen?\n\nSanne\n\nOp 3 mei 2026 om 10:02 schreef Lampenhuis <noreply@reviews.example>:\n> Ben je tevreden over je bestelling? Beoordeel nu!\n> Je ontvangt deze e-mail omdat je een bestelling hebt geplaatst bij Lampenhuis.",
        ),
        (
            "Odp: Jak oceniasz zamówienie w Lampy24?",
            "Nigdy nie dotarło! Zapłaciłam 54 zł trzy tygodnie temu, a sklep nie odpowiada. Czy możecie pomóc mi odzyskać pieniądze?\n\nAnna\n\nW dniu 3.05.2026 o 10:02 Lampy24 <noreply@reviews.example> napisał:\n> Czy jesteś zadowolony z zamówienia? Oceń teraz!\n> Otrzymujesz tę wiadomość, ponieważ złożyłeś zamówienie w Lampy24.",
        ),
    ] {
        let verdict = engine.classify("t", &message(subject, body));
        assert_eq!(verdict.queue, "customer_care", "{body}");
    }
}
