//! Abandoned work stops: in a test binary of its own, because it reads the process-wide
//! `triage_classifications_running` gauge, which calls of other tests running in parallel in
//! the same process would move.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

#[path = "api/cancel.rs"]
mod cancel;
