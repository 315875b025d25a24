//! Load generator: drives `Classify` with realistic tickets, then `GetRuleset` (the cheapest
//! call: the transport's ceiling) for the same time, and prints requests/s, latency
//! percentiles and the Classify/GetRuleset throughput ratio.
//!
//! `cargo run --release --example loadgen -- --addr http://127.0.0.1:50051 --concurrency 64 --seconds 10`
//! (add `--token T` when the server requires authentication). Requests stop after `--seconds`.
//!
//! `--write-bodies DIR` writes request bodies for h2load instead (see `benches/h2load.sh`): one
//! gRPC-framed `ClassifyRequest` per language, the development ticket of median size in it, and
//! an empty `GetRulesetRequest`.
//!
//! With `--server-pid PID` (Linux) it also reads the server's CPU time (user and system, from
//! `/proc/PID/stat`) before and after each phase and prints the server CPU per call: a figure
//! that contention with the load generator on the same cores does not hide. The system part
//! is largely the loopback TCP path (on loopback the sender's `writev` also delivers to the
//! receiving socket), so it tells the transport's kernel cost from the server's own work.

use std::time::{Duration, Instant};

use clap::Parser;
use tonic::transport::Channel;
use triage::server::pb;
use triage::server::pb::triage_client::TriageClient;

#[derive(Debug, Parser)]
struct Args {
    /// Server URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// HTTP/2 connections to spread the calls over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Bearer token, when the server requires one.
    #[arg(long)]
    token: Option<String>,
    /// The server's process id: report its CPU time per call (Linux `/proc`).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Write h2load request bodies into this directory and exit.
    #[arg(long)]
    write_bodies: Option<std::path::PathBuf>,
}

/// CPU time of a process: user and system.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    user: Duration,
    system: Duration,
}

impl Cpu {
    fn total(self) -> Duration {
        self.user + self.system
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(before.user),
            system: self.system.saturating_sub(before.system),
        }
    }
}

/// CPU time of process `pid` so far, from `/proc/PID/stat` (fields 14 `utime` and 15
/// `stime`, in clock ticks; see proc(5)).
fn cpu_time(pid: u32) -> Option<Cpu> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Option<Duration> {
        let t = fields.get(i)?.parse::<u64>().ok()?;
        Some(Duration::from_secs_f64(t as f64 / USER_HZ))
    };
    Some(Cpu {
        user: ticks(11)?,
        system: ticks(12)?,
    })
}

/// Clock ticks per second of `/proc` times: the kernel's USER_HZ, 100 on every Linux
/// architecture (time(7)).
const USER_HZ: f64 = 100.0;

/// Tickets from the development corpus, as realistic bodies for the load.
fn tickets() -> Vec<pb::ClassifyRequest> {
    labelled_tickets().into_iter().map(|(_, t)| t).collect()
}

/// The development tickets with their language label.
fn labelled_tickets() -> Vec<(String, pb::ClassifyRequest)> {
    include_str!("../tests/data/dev/tickets.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            let lang = v["lang"].as_str().unwrap_or("xx").to_string();
            (
                lang,
                pb::ClassifyRequest {
                    id: v["id"].as_str().unwrap_or_default().to_string(),
                    input: Some(pb::classify_request::Input::Ticket(pb::Ticket {
                        subject: v["subject"].as_str().unwrap_or_default().to_string(),
                        body: v["body"].as_str().unwrap_or_default().to_string(),
                        from: v["from"].as_str().unwrap_or_default().to_string(),
                        ..Default::default()
                    })),
                    ..Default::default()
                },
            )
        })
        .collect()
}

/// A message as a gRPC frame: uncompressed, its length as 4 bytes big-endian, its bytes
/// (the gRPC over HTTP/2 protocol's Length-Prefixed-Message).
fn grpc_frame(message: &impl prost::Message) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let mut frame = vec![0];
    frame.extend_from_slice(
        &u32::try_from(bytes.len())
            .expect("a ticket under 4 GiB")
            .to_be_bytes(),
    );
    frame.extend_from_slice(&bytes);
    frame
}

/// Writes `classify-LANG-ID.bin` for each language (its ticket of median size) and
/// `get-ruleset.bin` into `dir`, for h2load's `--data`.
fn write_bodies(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut by_language: std::collections::BTreeMap<String, Vec<pb::ClassifyRequest>> = Default::default();
    for (lang, ticket) in labelled_tickets() {
        by_language.entry(lang).or_default().push(ticket);
    }
    for (lang, mut tickets) in by_language {
        tickets.sort_by_key(prost::Message::encoded_len);
        let median = &tickets[tickets.len() / 2];
        let name = format!("classify-{lang}-{}.bin", median.id);
        std::fs::write(dir.join(name), grpc_frame(median))?;
    }
    std::fs::write(dir.join("get-ruleset.bin"), grpc_frame(&pb::GetRulesetRequest {}))
}

struct Phase {
    calls: usize,
    errors: usize,
    latencies_us: Vec<u32>,
    elapsed: Duration,
    /// The server's CPU time during the phase, when its pid was given.
    server_cpu: Option<Cpu>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<11} {:>9.0} req/s  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  ({} calls, {} errors)",
            self.rate(),
            self.percentile(0.50),
            self.percentile(0.90),
            self.percentile(0.99),
            self.calls,
            self.errors
        );
        if let Some(cpu) = self.server_cpu {
            let per_call = |d: Duration| d.as_secs_f64() * 1e6 / self.calls.max(1) as f64;
            println!(
                "{:<11} server CPU {:.1} µs per call: user {:.1}, system {:.1} ({:.2} s of CPU in {:.2} s)",
                "",
                per_call(cpu.total()),
                per_call(cpu.user),
                per_call(cpu.system),
                cpu.total().as_secs_f64(),
                self.elapsed.as_secs_f64()
            );
        }
    }
}

async fn run(channels: &[Channel], args: &Args, classify: bool) -> Phase {
    let tickets = std::sync::Arc::new(tickets());
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let cpu_before = args.server_pid.and_then(cpu_time);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|worker| {
            let mut client = TriageClient::new(channels[worker % channels.len()].clone());
            let tickets = tickets.clone();
            let token = args.token.clone();
            tokio::spawn(async move {
                let (mut calls, mut errors, mut latencies) = (0usize, 0usize, Vec::new());
                let mut i = worker;
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let ok = if classify {
                        let mut req = tonic::Request::new(tickets[i % tickets.len()].clone());
                        authorize(&mut req, &token);
                        client.classify(req).await.is_ok()
                    } else {
                        let mut req = tonic::Request::new(pb::GetRulesetRequest {});
                        authorize(&mut req, &token);
                        client.get_ruleset(req).await.is_ok()
                    };
                    latencies.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    calls += 1;
                    errors += usize::from(!ok);
                    i += 1;
                }
                (calls, errors, latencies)
            })
        })
        .collect();
    let mut phase = Phase {
        calls: 0,
        errors: 0,
        latencies_us: Vec::new(),
        elapsed: Duration::ZERO,
        server_cpu: None,
    };
    for t in tasks {
        let (calls, errors, latencies) = t.await.expect("worker");
        phase.calls += calls;
        phase.errors += errors;
        phase.latencies_us.extend(latencies);
    }
    phase.elapsed = started.elapsed();
    let cpu_after = args.server_pid.and_then(cpu_time);
    phase.server_cpu = cpu_before.zip(cpu_after).map(|(b, a)| a.since(b));
    phase.latencies_us.sort_unstable();
    phase
}

fn authorize<T>(req: &mut tonic::Request<T>, token: &Option<String>) {
    if let Some(t) = token {
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("token is ASCII"),
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(dir) = &args.write_bodies {
        write_bodies(dir)?;
        return Ok(());
    }
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(Channel::from_shared(args.addr.clone())?.connect().await?);
    }
    println!(
        "loadgen: {} for {} s per phase, concurrency {}, {} connections",
        args.addr,
        args.seconds,
        args.concurrency,
        channels.len()
    );
    let classify = run(&channels, &args, true).await;
    classify.print("Classify");
    let ruleset = run(&channels, &args, false).await;
    ruleset.print("GetRuleset");
    println!(
        "ratio Classify/GetRuleset: {:.2}",
        classify.rate() / ruleset.rate()
    );
    if let (Some(c), Some(r)) = (classify.server_cpu, ruleset.server_cpu) {
        let per_call = |cpu: Cpu, calls: usize| cpu.total().as_secs_f64() / calls.max(1) as f64;
        println!(
            "server CPU per call Classify/GetRuleset: {:.2} (the engine's share of a call: {:.0}%)",
            per_call(c, classify.calls) / per_call(r, ruleset.calls),
            100.0 * (1.0 - per_call(r, ruleset.calls) / per_call(c, classify.calls)).max(0.0)
        );
    }
    Ok(())
}
