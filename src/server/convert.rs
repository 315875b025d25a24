//! Protobuf ↔ domain conversions: the only place both worlds meet.

use tonic::Status;

use super::pb;
use crate::cancel::Cancel;
use crate::intake::{Input, IntakeError, intake_with};
use crate::mail::Limits;
use crate::message::{Message, Ticket};
use crate::verdict::{Hit, Rank, Verdict};

/// Why a request cannot be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Neither `ticket` nor `raw_email` was set, or what was set holds nothing to classify
    /// (an empty `raw_email`, a ticket without subject, body or headers).
    #[error("nothing to classify: set `raw_email`, or a `ticket` with a subject, body or headers")]
    Empty,
    /// The intake refused the message (over the size limit).
    #[error(transparent)]
    Intake(#[from] IntakeError),
    /// The classification task failed (a bug: reported, never a crash).
    #[error("classification failed: {0}")]
    Internal(String),
}

impl From<RequestError> for Status {
    fn from(e: RequestError) -> Status {
        match e {
            RequestError::Empty => Status::invalid_argument(e.to_string()),
            RequestError::Intake(IntakeError::TooLarge { .. }) => Status::resource_exhausted(e.to_string()),
            // Nobody waits for it: the call's future is gone by the time this is built.
            RequestError::Intake(IntakeError::Cancelled(_)) => Status::cancelled(e.to_string()),
            RequestError::Internal(_) => Status::internal(e.to_string()),
        }
    }
}

/// The size of a request's message in bytes: what the intake's size limit applies to.
pub fn request_size(req: &pb::ClassifyRequest) -> usize {
    let input = match &req.input {
        Some(pb::classify_request::Input::RawEmail(raw)) => raw.len(),
        Some(pb::classify_request::Input::Ticket(t)) => {
            t.subject.len()
                + t.body.len()
                + t.from.len()
                + t.to.iter().map(String::len).sum::<usize>()
                + t.language.len()
                + t.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        }
        None => 0,
    };
    input + req.id.len() + req.language.len()
}

/// Turns a request into a message through the one intake. Blocking work (MIME decoding): call
/// off the reactor for large inputs.
pub fn to_message(req: pb::ClassifyRequest, limits: &Limits) -> Result<Message, RequestError> {
    to_message_with(req, limits, &Cancel::never())
}

/// [`to_message`], stopping early once `cancel` is set.
pub fn to_message_with(
    req: pb::ClassifyRequest,
    limits: &Limits,
    cancel: &Cancel,
) -> Result<Message, RequestError> {
    // The limit counts everything the request carries (id and language hint too).
    let size = request_size(&req);
    if size > limits.max_message_bytes {
        return Err(IntakeError::TooLarge {
            size,
            limit: limits.max_message_bytes,
        }
        .into());
    }
    let hint = Some(req.language.as_str());
    match req.input {
        None => Err(RequestError::Empty),
        Some(pb::classify_request::Input::RawEmail(raw)) if raw.is_empty() => Err(RequestError::Empty),
        Some(pb::classify_request::Input::Ticket(t))
            if t.subject.trim().is_empty() && t.body.trim().is_empty() && t.headers.is_empty() =>
        {
            Err(RequestError::Empty)
        }
        Some(pb::classify_request::Input::RawEmail(raw)) => {
            Ok(intake_with(Input::Raw(&raw), hint, limits, cancel)?)
        }
        Some(pb::classify_request::Input::Ticket(t)) => {
            let ticket = Ticket {
                id: req.id,
                subject: t.subject,
                body: t.body,
                from: t.from,
                to: t.to,
                language: Some(t.language).filter(|l| !l.is_empty()),
                headers: t.headers.into_iter().collect(),
            };
            Ok(intake_with(Input::Ticket(&ticket), hint, limits, cancel)?)
        }
    }
}

/// The wire request for a message: the inverse of [`to_message`]'s input side.
pub fn to_request(id: &str, input: Input<'_>, hint: Option<&str>) -> pb::ClassifyRequest {
    let input = match input {
        Input::Raw(bytes) => pb::classify_request::Input::RawEmail(bytes::Bytes::copy_from_slice(bytes)),
        Input::Ticket(t) => pb::classify_request::Input::Ticket(pb::Ticket {
            subject: t.subject.clone(),
            body: t.body.clone(),
            from: t.from.clone(),
            to: t.to.clone(),
            language: t.language.clone().unwrap_or_default(),
            headers: t.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }),
    };
    pb::ClassifyRequest {
        id: id.to_string(),
        input: Some(input),
        language: hint.unwrap_or_default().to_string(),
    }
}

/// The verdict as the wire response.
pub fn to_response(v: Verdict) -> pb::ClassifyResponse {
    pb::ClassifyResponse {
        id: v.id,
        queue: v.queue,
        destination: v.destination,
        confidence: v.confidence,
        needs_review: v.needs_review,
        ranking: v
            .ranking
            .into_iter()
            .map(|r| pb::RankEntry {
                queue: r.queue,
                score: r.score,
                confidence: r.confidence,
            })
            .collect(),
        hits: v
            .hits
            .into_iter()
            .map(|h| pb::Hit {
                rule: h.rule,
                queue: h.queue,
                field: h.field,
                matched: h.matched,
                weight: h.weight,
            })
            .collect(),
        language: v.language,
        ruleset_version: v.ruleset_version,
        error: String::new(),
        notes: v.notes,
    }
}

/// The wire response back as a verdict (clients of the service, e.g. replay with `--server`),
/// or the per-record error a stream response carries.
pub fn from_response(r: pb::ClassifyResponse) -> Result<Verdict, String> {
    if !r.error.is_empty() {
        return Err(r.error);
    }
    Ok(Verdict {
        id: r.id,
        queue: r.queue,
        destination: r.destination,
        confidence: r.confidence,
        needs_review: r.needs_review,
        ranking: r
            .ranking
            .into_iter()
            .map(|e| Rank {
                queue: e.queue,
                score: e.score,
                confidence: e.confidence,
            })
            .collect(),
        hits: r
            .hits
            .into_iter()
            .map(|h| Hit {
                rule: h.rule,
                queue: h.queue,
                field: h.field,
                matched: h.matched,
                weight: h.weight,
            })
            .collect(),
        language: r.language,
        ruleset_version: r.ruleset_version,
        notes: r.notes,
    })
}

/// A stream response for a request that could not be classified.
pub fn error_response(id: String, error: &str) -> pb::ClassifyResponse {
    pb::ClassifyResponse {
        id,
        error: error.to_string(),
        ..Default::default()
    }
}
