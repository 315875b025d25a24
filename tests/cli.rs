//! Black-box tests of the command line: the real binary on real files.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn triage(args: &[&str], cwd: &Path, stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn classify_prints_one_verdict_per_file_with_the_path_as_id() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.txt"),
        "Subject: Abmahnung erhalten\nFrom: x@y.de\n\nWir haben eine Abmahnung bekommen.",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.txt"),
        "Mi pedido no ha llegado y la tienda no contesta. Tengo la protección al comprador.",
    )
    .unwrap();
    let rules = root().join("rules");
    let out = triage(
        &["classify", "--rules", rules.to_str().unwrap(), "a.txt", "b.txt"],
        dir.path(),
        b"",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "a.txt");
    assert_eq!(lines[0]["queue"], "legal");
    assert_eq!(lines[1]["id"], "b.txt");
    assert_eq!(lines[1]["queue"], "customer_care");
    assert!(
        lines[0]["ruleset_version"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[test]
fn classify_reads_stdin_when_no_file_is_given() {
    let out = triage(
        &["classify"],
        root(),
        "Subject: Rechnung doppelt\n\nBitte Gutschrift.".as_bytes(),
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], "-");
    assert_eq!(lines[0]["queue"], "contract");
}

#[test]
fn without_a_rules_directory_the_built_in_ruleset_is_used() {
    let empty = tempfile::tempdir().unwrap();
    let out = triage(
        &["classify"],
        empty.path(),
        b"Subject: Abmahnung\n\nAbmahnung vom Anwalt erhalten",
    );
    assert!(out.status.success());
    let built_in = json_lines(&out)[0]["ruleset_version"].clone();
    let out = triage(
        &["classify"],
        root(),
        b"Subject: Abmahnung\n\nAbmahnung vom Anwalt erhalten",
    );
    assert_eq!(
        json_lines(&out)[0]["ruleset_version"],
        built_in,
        "the built-in ruleset is rules/ as compiled"
    );
}

#[test]
fn jsonl_gives_exactly_one_line_per_input_line_and_reports_bad_lines() {
    let input = concat!(
        r#"{"id":"t1","subject":"Factura duplicada","body":"Nos habéis cobrado dos veces."}"#,
        "\n",
        "not json\n",
        r#"{"id":"t3","subject":7}"#,
        "\n",
        "[1,2]\n",
        r#"{"id":"t5","subject":"Widget not showing","body":"The trustbadge disappeared from our Shopify store."}"#,
        "\n",
    );
    let out = triage(&["classify", "--jsonl"], root(), input.as_bytes());
    assert_eq!(out.status.code(), Some(1), "bad lines make the exit code 1");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["id"], "t1");
    assert_eq!(lines[0]["queue"], "contract");
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("invalid JSON"));
    assert_eq!(lines[2]["id"], "t3");
    assert_eq!(lines[2]["line"], 3);
    assert!(lines[2]["error"].as_str().unwrap().contains("invalid ticket"));
    assert!(lines[3]["error"].as_str().unwrap().contains("not a JSON object"));
    assert_eq!(lines[4]["queue"], "technical_success");
}

#[test]
fn an_unreadable_file_gets_an_error_record_and_exit_code_1() {
    let out = triage(&["classify", "no-such-file.eml"], root(), b"");
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines[0]["id"], "no-such-file.eml");
    assert!(lines[0]["error"].is_string());
}

#[test]
fn check_rules_passes_on_the_default_ruleset() {
    let out = triage(&["check-rules", "rules"], root(), b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = &json_lines(&out)[0];
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["queues"], 9);
    assert!(summary["examples"].as_u64().unwrap() > 0);
}

#[test]
fn check_rules_reports_every_problem_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        "[ruleset]\nname = \"x\"\nfallback = \"q\"\n[[queue]]\nid = \"q\"\nthreshold = 0.5\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        "[[rule]]\nid = \"r\"\nqueue = \"nope\"\nany = [\"/(/\"]\n",
    )
    .unwrap();
    let out = triage(&["check-rules", dir.path().to_str().unwrap()], root(), b"");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("b.toml:3:9: unknown queue `nope`"), "{stderr}");
    assert!(
        stderr.contains("b.toml:4:8: term `/(/`: invalid regex"),
        "{stderr}"
    );
}

#[test]
fn check_rules_fails_when_an_example_is_misrouted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        concat!(
            "[ruleset]\nname = \"x\"\nfallback = \"q\"\n",
            "[[queue]]\nid = \"q\"\nthreshold = 0.5\n[[queue]]\nid = \"billing\"\nthreshold = 0.5\n",
            "[[rule]]\nid = \"b\"\nqueue = \"billing\"\nany = [\"invoice\"]\n",
            "[[example]]\nbody = \"hello there\"\nqueue = \"billing\"\n",
        ),
    )
    .unwrap();
    let out = triage(&["check-rules", dir.path().to_str().unwrap()], root(), b"");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a.toml:14:1: example routed to q"), "{stderr}");
}

#[test]
fn usage_errors_exit_with_code_2() {
    let out = triage(&["classify", "--no-such-flag"], root(), b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn calibrate_measures_before_and_after_and_writes_only_when_asked() {
    let rules = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root().join("rules")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") && path.file_name().unwrap() != "calibration.toml" {
            std::fs::copy(&path, rules.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let tickets = root().join("tests/data/dev/tickets.jsonl");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "calibrate",
            "--rules",
            rules.path().to_str().unwrap(),
            "--input",
            tickets.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let dry: Vec<String> = args(&["--dry-run"]);
    let out = triage(&dry.iter().map(String::as_str).collect::<Vec<_>>(), root(), b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = &json_lines(&out)[0];
    assert_eq!(s["labelled"], 120);
    assert!(s["written"].is_null());
    for key in [
        "temperature",
        "ece_before",
        "ece_cv",
        "reliability_before",
        "reliability_cv",
        "fold_temperatures",
    ] {
        assert!(!s[key].is_null(), "{key} missing: {s}");
    }
    assert_eq!(s["fold_temperatures"].as_array().unwrap().len(), 5);
    // Every input of the confidence model is fitted and reported.
    for input in triage::engine::score::INPUT_NAMES.iter().chain(&["intercept"]) {
        assert!(s["model"][input].is_number(), "model.{input} missing: {s}");
    }
    assert!(!rules.path().join("calibration.toml").exists());

    let elsewhere = tempfile::tempdir().unwrap();
    let thresholds = elsewhere.path().join("proposal.toml");
    let write: Vec<String> = args(&[
        "--target-precision",
        "0.9",
        "--thresholds-out",
        thresholds.to_str().unwrap(),
    ]);
    let out = triage(&write.iter().map(String::as_str).collect::<Vec<_>>(), root(), b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = std::fs::read_to_string(rules.path().join("calibration.toml")).unwrap();
    assert!(written.contains("[calibration]\ntemperature = "), "{written}");
    for input in triage::engine::score::INPUT_NAMES {
        assert!(
            written.contains(&format!("\n{input} = ")),
            "{input} not written: {written}"
        );
    }
    let proposal = std::fs::read_to_string(&thresholds).unwrap();
    assert_eq!(proposal.matches("[[proposal]]").count(), 9, "{proposal}");
    // The calibrated ruleset still loads and carries a new version.
    let check = triage(&["check-rules", rules.path().to_str().unwrap()], root(), b"");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn calibrate_counts_ceiling_inputs_for_the_contested_ceiling_only() {
    let tickets = root().join("tests/data/dev/tickets.jsonl");
    let more = root().join("tests/data/holdout/tickets.jsonl");
    let run = |extra: &[&str]| {
        let mut a = vec![
            "calibrate",
            "--rules",
            "rules",
            "--dry-run",
            "--input",
            tickets.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        triage(&a, root(), b"")
    };
    let alone = run(&[]);
    assert!(
        alone.status.success(),
        "{}",
        String::from_utf8_lossy(&alone.stderr)
    );
    let with = run(&["--ceiling-input", more.to_str().unwrap()]);
    assert!(with.status.success(), "{}", String::from_utf8_lossy(&with.stderr));
    let (a, w) = (&json_lines(&alone)[0], &json_lines(&with)[0]);
    assert!(
        w["model"]["contested_verdicts"].as_u64() > a["model"]["contested_verdicts"].as_u64(),
        "{} vs {}",
        w["model"],
        a["model"]
    );
    assert!(w["model"]["contested_ceiling"].is_number(), "{}", w["model"]);
    // The temperature and the logistic model see the --input records only.
    assert_eq!(a["temperature"], w["temperature"]);
    for input in triage::engine::score::INPUT_NAMES.iter().chain(&["intercept"]) {
        assert_eq!(a["model"][input], w["model"][input], "{input}");
    }
    // A ceiling input that cannot be read is a clear error, not a silent skip.
    let missing = run(&["--ceiling-input", "no/such/file.jsonl"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no/such/file.jsonl"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

#[test]
fn serve_configuration_precedence_is_flag_then_environment_then_file_then_default() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("triage.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:6000\"\nmax_concurrency = 8\nrequest_timeout = 7\nadmin_listen = \"off\"\nmax_connections = 99\nidle_timeout = 42\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args([
            "serve",
            "--print-config",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:7000",
        ])
        .env("TRIAGE_MAX_CONCURRENCY", "16")
        .env("TRIAGE_REQUEST_TIMEOUT", "9")
        .env_remove("TRIAGE_LISTEN")
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c = &json_lines(&out)[0];
    assert_eq!(c["listen"], "127.0.0.1:7000", "flag beats file");
    assert_eq!(c["sources"]["listen"], "flag");
    assert_eq!(c["max_concurrency"], 16, "environment beats file");
    assert_eq!(c["sources"]["max_concurrency"], "environment");
    assert_eq!(c["admin_listen"], "off", "file beats default");
    assert_eq!(c["sources"]["admin_listen"], "file");
    assert_eq!(c["max_message_bytes"], 10 * 1024 * 1024);
    assert_eq!(c["sources"]["max_message_bytes"], "default");
    assert_eq!(
        (c["max_connections"].as_u64(), c["idle_timeout"].as_u64()),
        (Some(99), Some(42))
    );
    assert_eq!(c["sources"]["max_connections"], "file");
    assert_eq!(c["handshake_timeout"], 10);
}

/// The shadow ruleset's settings are flags, `TRIAGE_*` variables and config-file keys like the
/// others; paths in the file are relative to it; a log without a shadow ruleset is refused.
#[test]
fn shadow_settings_layer_like_the_other_serve_settings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("candidate")).unwrap();
    let config = dir.path().join("triage.toml");
    std::fs::write(
        &config,
        "shadow_rules = \"candidate\"\nshadow_log = \"shadow.jsonl\"\nshadow_cpu = 0.2\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["serve", "--print-config", "--config", config.to_str().unwrap()])
        .env("TRIAGE_SHADOW_LOG_MAX_BYTES", "1000000")
        .env_remove("TRIAGE_SHADOW_RULES")
        .env_remove("TRIAGE_SHADOW_LOG")
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c = &json_lines(&out)[0];
    assert_eq!(c["shadow_rules"], dir.path().join("candidate").to_str().unwrap());
    assert_eq!(c["sources"]["shadow_rules"], "file");
    assert_eq!(c["shadow_log"], dir.path().join("shadow.jsonl").to_str().unwrap());
    assert_eq!(c["shadow_log_max_bytes"], 1_000_000);
    assert_eq!(c["sources"]["shadow_log_max_bytes"], "environment");
    assert_eq!(
        (c["shadow_cpu"].as_f64(), c["sources"]["shadow_cpu"].as_str()),
        (Some(0.2), Some("file"))
    );

    let out = triage(
        &["serve", "--shadow-log", "shadow.jsonl", "--admin-listen", "off"],
        root(),
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shadow_log is set but shadow_rules is not"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_invalid_configuration_fails_at_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("triage.toml");
    std::fs::write(&config, "max_concurrency = 4\nlisten_addr = \"x\"\n").unwrap();
    let out = triage(&["serve", "--config", config.to_str().unwrap()], root(), b"");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("triage.toml:2:1") && stderr.contains("unknown field `listen_addr`"),
        "{stderr}"
    );

    let out = triage(
        &["serve", "--tls-cert", "cert.pem", "--admin-listen", "off"],
        root(),
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS needs both"));
}

/// Rules over the limits are `check-rules` problems with their `file:line:column`, and the
/// ruleset is not loaded.
#[test]
fn check_rules_reports_rules_over_the_limits_with_their_location() {
    let rules = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root().join("rules")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, rules.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let many: Vec<String> = (0..1001).map(|i| format!("\"w{i}\"")).collect();
    std::fs::write(
        rules.path().join("zz-limits.toml"),
        format!(
            "[[rule]]\nid = \"long\"\nqueue = \"legal\"\nany = [\"{}\"]\n\n[[rule]]\nid = \"costly\"\nqueue = \"legal\"\nany = ['/(?s).{{2000}}x.{{2000}}/']\n\n[[rule]]\nid = \"many\"\nqueue = \"legal\"\nany = [{}]\n",
            "x".repeat(5000),
            many.join(", ")
        ),
    )
    .unwrap();
    std::fs::write(rules.path().join("zz-too-big.toml"), vec![b'#'; 17 * 1024 * 1024]).unwrap();
    let out = triage(&["check-rules", rules.path().to_str().unwrap()], root(), b"");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("zz-too-big.toml:1:1: the file is 17825792 bytes"),
        "{stderr}"
    );
    // The oversized file stops the load before any file is parsed; without it, the rules.
    std::fs::remove_file(rules.path().join("zz-too-big.toml")).unwrap();
    let out = triage(&["check-rules", rules.path().to_str().unwrap()], root(), b"");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "zz-limits.toml:4:8: term `xxxx",
        "at most 1024 bytes; this one is 5000",
        "zz-limits.toml:9:8: term `/(?s).{2000}x.{2000}/`: the regex compiles to more than 65536 bytes",
        "zz-limits.toml:14:",
        "`many` has 1001 terms",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
}

/// `--jsonl` reads at most the message limit of a line: a longer one gets an error line naming
/// its number and is never held whole, and the lines after it are classified.
#[test]
fn jsonl_lines_over_the_limit_are_errors_and_the_next_lines_are_read() {
    let mut input = b"{\"id\":\"a\",\"subject\":\"Rechnung\"}\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 11 * 1024 * 1024));
    input.extend(b"\n{\"id\":\"c\",\"subject\":\"Abmahnung\"}\n");
    let out = triage(&["classify", "--jsonl"], root(), &input);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["queue"], "contract");
    assert_eq!(lines[1]["line"], 2);
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("longer than 10485760 bytes"),
        "{}",
        lines[1]
    );
    assert_eq!(
        (lines[2]["id"].as_str(), lines[2]["queue"].as_str()),
        (Some("c"), Some("legal"))
    );
    assert_eq!(out.status.code(), Some(1));
}

/// Logs written to a file (or a pipe) carry no colour codes, and a rule file whose name holds
/// a newline cannot forge a log line: the name is escaped wherever it is reported.
#[test]
fn logs_to_a_file_have_no_colour_codes_and_file_names_cannot_forge_lines() {
    use std::time::{Duration, Instant};
    let rules = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root().join("rules")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, rules.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("serve.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            "off",
            "--rules",
        ])
        .arg(rules.path())
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Generous: a debug build loading the default ruleset while other tests do the same can
    // take tens of seconds on two cores; a rule file written before the server watches the
    // folder would never be reported.
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
            if Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let started = wait_for("triage serving");
    assert!(
        started.contains("triage serving"),
        "the server did not start:\n{started}"
    );
    let forged = "2026-01-01T00:00:00.000000Z ERROR triage: all tickets deleted";
    std::fs::write(
        rules.path().join(format!("evil\n{forged}.toml")),
        "[[rule]]\nid = \"x\"\nqueue = \n",
    )
    .unwrap();
    let text = wait_for("ruleset problem");
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("ruleset problem"), "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes in a log file:\n{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("2026-01-01T00:00:00")),
        "a forged log line:\n{text}"
    );
    assert!(text.contains("evil\\n2026-01-01"), "{text}");
}
