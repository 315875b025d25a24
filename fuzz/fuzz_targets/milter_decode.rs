//! The milter protocol decoder (miltr-common, used by triage's milter) on arbitrary packet
//! bodies: a command or an error, never a panic.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use miltr_common::decoding::ClientCommand;

fuzz_target!(|data: &[u8]| {
    let _ = ClientCommand::parse(BytesMut::from(data));
});
