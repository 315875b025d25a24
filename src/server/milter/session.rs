//! One MTA connection: option negotiation, the message events, and the classification and
//! edits at end of message. Every callback answers continue (or skip, for body beyond the
//! limit); nothing here can reject or tempfail mail.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::BytesMut;
use miltr_common::actions::{Action, Continue, Skip};
use miltr_common::commands::{Body, Header, Macro, Mail, Recipient};
use miltr_common::encoding::Writable;
use miltr_common::modifications::ModificationResponse;
use miltr_common::modifications::headers::{AddHeader, ChangeHeader};
use miltr_common::modifications::recipients::{AddRecipient, DeleteRecipient};
use miltr_common::optneg::{Capability, OptNeg, Protocol};
use miltr_server::{Error, Milter};
use tracing::{debug, info, warn};

use super::collect::Collected;
use super::edits::{self, Edit, Outcome, Reason, Route};
use crate::intake::{Input, intake};
use crate::server::classifier::{Call, Classifier};
use crate::server::metrics;

/// The milter protocol version triage speaks (Postfix ≥ 2.6, Sendmail ≥ 8.14).
pub const PROTOCOL_VERSION: u32 = 6;

/// What every connection shares.
#[derive(Debug)]
pub(super) struct Shared {
    /// The ruleset, limits and permits of gRPC and the webhook.
    pub classifier: Classifier,
    /// Routing mode, when on.
    pub route: Option<Route>,
    /// Longest a classification may take before the message passes unclassified.
    pub timeout: Duration,
}

impl Shared {
    /// Classifies the rebuilt message through the one intake, under the shared permits and the
    /// timeout. Never fails: every failure is an [`Outcome::NotClassified`].
    async fn classify(&self, raw: Vec<u8>, id: String) -> Outcome {
        let Ok(permit) = self.classifier.admit() else {
            return Outcome::NotClassified(Reason::Overloaded);
        };
        // The permit lives as long as the work does, even when the caller stopped waiting.
        let work = self.classifier.run(
            raw.len(),
            permit,
            "milter",
            // The milter's own timeout answers the MTA; the intake then finishes on its own
            // bounded stages, and the engine stops at its next stage (nobody waits any more).
            move |call: &Call<'_>| {
                std::panic::catch_unwind(AssertUnwindSafe(|| {
                    intake(Input::Raw(&raw), None, call.limits())
                        .and_then(|message| Ok(call.classify(&id, message)?))
                }))
            },
        );
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(Ok(Ok(verdict)))) => Outcome::Classified(verdict),
            Err(_) => Outcome::NotClassified(Reason::Timeout(self.timeout)),
            Ok(Err(e)) => {
                // The detail may quote message text (a panic message): debug level only.
                warn!("milter: classification failed (a bug in triage)");
                debug!(error = %e, "milter: classification failed");
                Outcome::NotClassified(Reason::Internal)
            }
            Ok(Ok(Err(_panic))) => {
                warn!("milter: classification panicked (a bug in triage)");
                Outcome::NotClassified(Reason::Internal)
            }
            Ok(Ok(Ok(Err(e)))) => {
                warn!(error = %e, "milter: the intake refused the message");
                Outcome::NotClassified(Reason::Internal)
            }
        }
    }
}

/// The state of one connection.
pub(super) struct Session {
    shared: Arc<Shared>,
    /// True between messages; read by the connection's stream to end it at shutdown.
    between_messages: Arc<AtomicBool>,
    /// The MTA accepts "skip" for body chunks beyond the limit.
    can_skip: bool,
    /// Routing mode is on and the MTA lets triage edit recipients.
    can_route: bool,
    /// The MTA's queue id (macro `i`), for logs.
    queue_id: Option<String>,
    message: Collected,
}

impl Session {
    pub(super) fn new(shared: Arc<Shared>, between_messages: Arc<AtomicBool>) -> Session {
        let limit = shared.classifier.limits().max_message_bytes;
        Session {
            shared,
            between_messages,
            can_skip: false,
            can_route: false,
            queue_id: None,
            message: Collected::new(limit),
        }
    }

    fn in_message(&self) {
        self.between_messages.store(false, Ordering::Release);
    }

    /// Ends the message in flight and returns what was collected of it.
    fn take_message(&mut self) -> Collected {
        self.queue_id = None;
        self.between_messages.store(true, Ordering::Release);
        let limit = self.message.limit();
        std::mem::replace(&mut self.message, Collected::new(limit))
    }

    /// The actions and protocol steps triage asks for.
    fn wanted(&self) -> (Capability, Protocol) {
        let mut actions = Capability::SMFIF_ADDHDRS | Capability::SMFIF_CHGHDRS;
        // Steps triage does not need are left out: fewer round trips per message. Only the
        // end-of-message reply carries edits, and every other step answers continue.
        let mut protocol = Protocol::NO_CONNECT
            | Protocol::NO_HELO
            | Protocol::NO_DATA
            | Protocol::NO_UNKNOWN
            | Protocol::SMFIP_SKIP;
        if self.shared.route.is_some() {
            actions |= Capability::SMFIF_ADDRCPT | Capability::SMFIF_DELRCPT;
        } else {
            protocol |= Protocol::NO_RECIPIENT;
        }
        (actions, protocol)
    }
}

fn cont() -> Result<Action, Infallible> {
    Ok(Continue.into())
}

#[async_trait]
impl Milter for Session {
    type Error = Infallible;

    async fn option_negotiation(&mut self, theirs: OptNeg) -> Result<OptNeg, Error<Infallible>> {
        let (actions, protocol) = self.wanted();
        let ours = OptNeg {
            version: theirs.version.min(PROTOCOL_VERSION),
            // Only what the MTA offers: asking for more makes it hang up.
            capabilities: actions & theirs.capabilities,
            protocol: protocol & theirs.protocol,
            ..OptNeg::default()
        };
        if theirs.version < PROTOCOL_VERSION {
            warn!(
                version = theirs.version,
                "milter: the MTA speaks an older protocol; set milter_protocol = 6"
            );
        }
        if !ours.capabilities.contains(actions) {
            warn!(
                offered = theirs.capabilities.bits(),
                wanted = actions.bits(),
                "milter: the MTA does not allow every edit triage makes; some will be left out"
            );
        }
        self.can_skip = ours.protocol.contains(Protocol::SMFIP_SKIP);
        let recipients = Capability::SMFIF_ADDRCPT | Capability::SMFIF_DELRCPT;
        self.can_route = self.shared.route.is_some() && ours.capabilities.contains(recipients);
        if self.shared.route.is_some() && !self.can_route {
            warn!("milter: the MTA does not allow recipient edits; messages are tagged, not routed");
        }
        Ok(ours)
    }

    async fn macro_(&mut self, macros: Macro) -> Result<(), Infallible> {
        for (name, value) in macros.macros() {
            if matches!(name, b"i" | b"{i}") && !value.is_empty() {
                let id: String = String::from_utf8_lossy(value).chars().take(64).collect();
                self.queue_id = Some(id);
            }
        }
        Ok(())
    }

    async fn mail(&mut self, _mail: Mail) -> Result<Action, Infallible> {
        // A new message: whatever a previous one left (an MTA that skipped abort) is dropped.
        let queue_id = self.queue_id.take();
        self.take_message();
        self.queue_id = queue_id;
        self.in_message();
        cont()
    }

    async fn rcpt(&mut self, recipient: Recipient) -> Result<Action, Infallible> {
        self.in_message();
        if self.shared.route.is_some() {
            self.message.recipient(&recipient.recipient());
        }
        cont()
    }

    async fn data(&mut self) -> Result<Action, Infallible> {
        self.in_message();
        cont()
    }

    async fn header(&mut self, header: Header) -> Result<Action, Infallible> {
        self.in_message();
        // The header's bytes as sent (`name()`/`value()` would replace 8-bit text).
        let mut wire = BytesMut::with_capacity(header.len());
        header.write(&mut wire);
        let mut fields = wire[..].split(|&b| b == 0);
        let name = fields.next().unwrap_or_default();
        let value = fields.next().unwrap_or_default();
        self.message.header(name, value);
        cont()
    }

    async fn end_of_header(&mut self) -> Result<Action, Infallible> {
        self.in_message();
        self.message.end_of_headers();
        cont()
    }

    async fn body(&mut self, body: Body) -> Result<Action, Infallible> {
        self.in_message();
        if self.message.body(body.as_bytes()) || !self.can_skip {
            cont()
        } else {
            // The rest would not be kept: the MTA need not send it.
            Ok(Skip.into())
        }
    }

    async fn end_of_body(&mut self) -> Result<ModificationResponse, Infallible> {
        let started = Instant::now();
        let queue_id = self.queue_id.clone().unwrap_or_default();
        let mut message = self.take_message();
        let raw = message.take_raw();
        let size = raw.len();
        metrics::request_bytes(size);
        let outcome = self.shared.classify(raw, queue_id.clone()).await;
        match &outcome {
            Outcome::Classified(verdict) => {
                metrics::classified(verdict, started.elapsed(), "milter");
                debug!(
                    queue_id,
                    queue = %verdict.queue,
                    confidence = verdict.confidence,
                    bytes = message.seen(),
                    truncated = message.is_truncated(),
                    duration_us = started.elapsed().as_micros() as u64,
                    "milter: classified"
                );
            }
            Outcome::NotClassified(reason) => {
                metrics::failed("milter");
                warn!(queue_id, %reason, "milter: message passed unclassified");
            }
        }
        let route = self.shared.route.as_ref().filter(|_| self.can_route);
        let plan = edits::plan(&message, &outcome, route);
        log_edits(&queue_id, &message, &plan);
        Ok(response(plan))
    }

    async fn abort(&mut self) -> Result<(), Infallible> {
        self.take_message();
        Ok(())
    }

    async fn quit_nc(&mut self) -> Result<(), Infallible> {
        self.take_message();
        Ok(())
    }
}

/// Says what was done that an operator may want to know: forged headers removed, routes.
/// Addresses are the envelope's, never message text.
fn log_edits(queue_id: &str, message: &Collected, plan: &[Edit]) {
    let removed = plan
        .iter()
        .filter(|e| matches!(e, Edit::DeleteHeader { .. }))
        .count();
    if removed > 0 {
        info!(queue_id, removed, "milter: removed inbound X-Triage-* headers");
    }
    if message.forged_untracked() > 0 {
        warn!(
            queue_id,
            left = message.forged_untracked(),
            "milter: too many distinct X-Triage-* header names; some were left in the message"
        );
    }
    let to = plan.iter().find_map(|e| match e {
        Edit::AddRecipient(r) => Some(r.as_str()),
        _ => None,
    });
    for e in plan {
        if let Edit::DeleteRecipient(from) = e {
            info!(queue_id, from = %from, to = to.unwrap_or("(already a recipient)"), "milter: routed");
        }
    }
}

/// The protocol's form of the edits, ending with continue.
fn response(plan: Vec<Edit>) -> ModificationResponse {
    let mut builder = ModificationResponse::builder();
    for edit in plan {
        match edit {
            // An empty value deletes the header.
            Edit::DeleteHeader { name, index } => builder.push(ChangeHeader::new(index, &name, b"")),
            Edit::AddHeader { name, value } => {
                builder.push(AddHeader::new(name.as_bytes(), value.as_bytes()))
            }
            Edit::DeleteRecipient(r) => builder.push(DeleteRecipient::new(r.as_bytes())),
            Edit::AddRecipient(r) => builder.push(AddRecipient::new(r.as_bytes())),
        }
    }
    builder.contin()
}
