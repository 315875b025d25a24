//! The replay readers (JSONL, CSV with either delimiter, mbox) on arbitrary bytes, plain or
//! gzip: never a panic, positions counted one by one, and no record kept over the limit.
#![no_main]

use std::io::{BufRead, Cursor};

use libfuzzer_sys::fuzz_target;
use triage::replay::source::{CsvOptions, Format, Payload, SourceOptions, open_reader, stream_records};

/// A small limit, so that the fuzzer reaches the over-the-limit paths.
const MAX: usize = 512;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let format = match selector % 4 {
        0 => Format::Jsonl,
        1 | 2 => Format::Csv,
        _ => Format::Mbox,
    };
    let options = SourceOptions {
        format: Some(format),
        csv: CsvOptions {
            delimiter: (selector % 4 == 2).then_some(b';'),
            ..CsvOptions::default()
        },
        max_record_bytes: MAX,
    };
    // Gzip is recognised by its first bytes, as for files.
    let Ok(reader) = open_reader(Box::new(Cursor::new(bytes.to_vec()))) else {
        return;
    };
    let reader: Box<dyn BufRead + Send> = reader;
    let mut expected = 0u64;
    for record in stream_records("fuzz", reader, format, &options).take(100_000) {
        let position = match &record {
            Ok(r) => {
                if let Payload::Raw(raw) = &r.payload {
                    assert!(raw.len() <= MAX + 2, "a message over the limit was kept");
                }
                r.position
            }
            Err(bad) => bad.position,
        };
        assert_eq!(position, expected);
        expected += 1;
    }
});
