//! A whole milter connection on arbitrary commands: the input is cut into packets (a command
//! byte, a length, the data), sent after a version 6 negotiation, and the connection must end
//! when the input does, without a panic, whatever the commands are.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use triage::mail::Limits;
use triage::server::Rules;
use triage::server::classifier::Classifier;
use triage::server::milter::{Route, Settings, serve_connection};
use triage::{Engine, RuleSet};

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
});

static CLASSIFIER: LazyLock<Classifier> = LazyLock::new(|| {
    let engine = Engine::new(RuleSet::builtin()).expect("built-in ruleset compiles");
    let limits = Limits {
        max_message_bytes: 64 * 1024,
        ..Limits::default()
    };
    Classifier::new(Arc::new(Rules::from_engine(engine, None)), limits, 4)
});

/// Packets from the input: command byte, a 16-bit length (cut to what is left), the data.
fn packets(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut optneg = 6u32.to_be_bytes().to_vec();
    optneg.extend(0x1ffu32.to_be_bytes());
    optneg.extend(0x1f_ffffu32.to_be_bytes());
    frame(&mut out, b'O', &optneg);
    while let [cmd, a, b, rest @ ..] = data {
        let len = (usize::from(*a) << 8 | usize::from(*b)).min(rest.len());
        frame(&mut out, *cmd, &rest[..len]);
        data = &rest[len..];
    }
    out
}

fn frame(out: &mut Vec<u8>, cmd: u8, data: &[u8]) {
    out.extend(((data.len() + 1) as u32).to_be_bytes());
    out.push(cmd);
    out.extend_from_slice(data);
}

fuzz_target!(|data: &[u8]| {
    let input = packets(data);
    let route = data.first().is_some_and(|b| b & 1 == 1);
    let settings = Settings {
        route: route.then(|| Route::new(["support@example.com"])),
        ..Settings::default()
    };
    RUNTIME.block_on(async {
        let (mut mta, milter) = tokio::io::duplex(1 << 20);
        let session = serve_connection(milter, CLASSIFIER.clone(), settings, Duration::from_secs(5));
        let client = async move {
            let _ = mta.write_all(&input).await;
            let _ = mta.shutdown().await;
            let mut replies = Vec::new();
            let _ = mta.read_to_end(&mut replies).await;
        };
        let ended = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(session, client);
        })
        .await;
        assert!(ended.is_ok(), "the connection did not end with its input");
    });
});
