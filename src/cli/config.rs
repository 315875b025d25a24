//! Layered configuration for `triage serve`: flag > environment (`TRIAGE_*`) > `--config`
//! file > default. clap handles flags, environment and defaults; this module lays the file
//! under them and reports where every value came from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;

use super::serve::Args;

/// The settings a config file may hold: the `serve` flags, with underscores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<SocketAddr>,
    rules: Option<PathBuf>,
    admin_listen: Option<String>,
    max_message_bytes: Option<usize>,
    max_concurrency: Option<usize>,
    request_timeout: Option<u64>,
    auth_token_file: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    admin_tls: Option<bool>,
    admin_tls_cert: Option<PathBuf>,
    admin_tls_key: Option<PathBuf>,
    max_connections: Option<usize>,
    admin_max_connections: Option<usize>,
    handshake_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    max_streams_per_connection: Option<u32>,
    keepalive_interval: Option<u64>,
    worker_threads: Option<usize>,
    milter_listen: Option<String>,
    milter_route: Option<bool>,
    milter_intake: Option<Vec<String>>,
    shadow_rules: Option<PathBuf>,
    shadow_log: Option<PathBuf>,
    shadow_log_max_bytes: Option<u64>,
    shadow_cpu: Option<f64>,
}

/// Where each setting's value came from.
pub type Sources = BTreeMap<&'static str, &'static str>;

/// Lays the `--config` file under flags and environment; returns each setting's source.
pub fn layer(args: &mut Args, matches: &ArgMatches) -> anyhow::Result<Sources> {
    let file = match &args.config {
        Some(path) => read(path)?,
        None => File::default(),
    };
    let base = args
        .config
        .as_ref()
        .and_then(|p| p.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut sources = Sources::new();
    let explicit = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    macro_rules! layer {
        ($field:ident, $value:expr) => {{
            let id = stringify!($field);
            let source = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                _ => "default",
            };
            match $value {
                Some(v) if !explicit(id) => {
                    args.$field = v;
                    sources.insert(id, "file");
                }
                _ => {
                    sources.insert(id, source);
                }
            }
        }};
    }
    // Relative paths in the file are relative to the file, as in every tool people know.
    let path = |p: Option<PathBuf>| p.map(|p| if p.is_absolute() { p } else { base.join(p) });
    layer!(listen, file.listen);
    layer!(rules, path(file.rules).map(Some));
    layer!(admin_listen, file.admin_listen);
    layer!(max_message_bytes, file.max_message_bytes);
    layer!(max_concurrency, file.max_concurrency);
    layer!(request_timeout, file.request_timeout);
    layer!(auth_token_file, path(file.auth_token_file).map(Some));
    layer!(tls_cert, path(file.tls_cert).map(Some));
    layer!(tls_key, path(file.tls_key).map(Some));
    layer!(tls_client_ca, path(file.tls_client_ca).map(Some));
    layer!(admin_tls, file.admin_tls);
    layer!(admin_tls_cert, path(file.admin_tls_cert).map(Some));
    layer!(admin_tls_key, path(file.admin_tls_key).map(Some));
    layer!(max_connections, file.max_connections);
    layer!(admin_max_connections, file.admin_max_connections);
    layer!(handshake_timeout, file.handshake_timeout);
    layer!(idle_timeout, file.idle_timeout);
    layer!(max_streams_per_connection, file.max_streams_per_connection);
    layer!(keepalive_interval, file.keepalive_interval);
    layer!(worker_threads, file.worker_threads.map(Some));
    layer!(milter_listen, file.milter_listen.map(Some));
    layer!(milter_route, file.milter_route);
    layer!(milter_intake, file.milter_intake);
    layer!(shadow_rules, path(file.shadow_rules).map(Some));
    layer!(shadow_log, path(file.shadow_log).map(Some));
    layer!(shadow_log_max_bytes, file.shadow_log_max_bytes);
    layer!(shadow_cpu, file.shadow_cpu);
    Ok(sources)
}

fn read(path: &Path) -> anyhow::Result<File> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let at = e.span().map(|s| {
            let before = &text[..s.start.min(text.len())];
            format!(
                ":{}:{}",
                before.matches('\n').count() + 1,
                before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1
            )
        });
        anyhow::anyhow!(
            "config file {}{}: {}",
            path.display(),
            at.unwrap_or_default(),
            e.message()
        )
    })
}

/// The effective configuration as one JSON object: values and their sources. Nothing secret
/// is printed: tokens live in the token file, which is named, never read out.
pub fn effective(args: &Args, sources: &Sources) -> anyhow::Result<String> {
    let mut values = serde_json::to_value(args)?;
    if let Some(map) = values.as_object_mut() {
        map.insert("config".into(), serde_json::json!(args.config));
        map.insert("sources".into(), serde_json::to_value(sources)?);
    }
    Ok(values.to_string())
}
