//! triage: routes support messages to the queue that owns them, with a calibrated confidence
//! and the evidence that decided.
//!
//! Layout, following the data:
//! - [`intake`]: the one path from any interface's input (raw email, ticket, language hint) to
//!   a [`Message`], with the limits.
//! - [`mail`]: raw email and plain text → [`Message`] (MIME, encoded-words, quotes, signatures).
//! - [`text`]: normalisation (folding, offsets) and language detection.
//! - [`rules`]: rule files → checked [`RuleSet`].
//! - [`engine`]: [`RuleSet`] → compiled matchers; [`Message`] → [`Verdict`].
//! - [`replay`]: batch readers, the parallel runner, evaluation and reports.
//! - [`learn`]: labelled history → measured rules, fitted weights and suggested new rules.
//!
//! Nothing here knows about gRPC; the server is an adapter over this library.

pub mod calibrate;
pub mod cancel;
pub mod engine;
pub mod intake;
pub mod learn;
pub mod mail;
pub mod message;
pub mod replay;
pub mod rules;
pub mod server;
pub mod text;
pub mod verdict;

pub use engine::Engine;
pub use message::{Message, Ticket};
pub use rules::RuleSet;
pub use verdict::{Hit, Rank, Verdict};
