//! Build script: embeds the default ruleset and compiles the gRPC contract.
//!
//! The proto is compiled with protox, a pure-Rust protobuf compiler, so no `protoc` is needed.

use std::{env, fs, path::PathBuf};

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(env::var("OUT_DIR")?);
    embed_default_rules(&out)?;
    compile_proto(&out)?;
    Ok(())
}

/// Compiles the proto with protox and writes the descriptor set that reflection serves.
fn compile_proto(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    // protox does not emit rerun-if-changed itself.
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["proto/triage/v1/triage.proto"], ["proto"])?;
    fs::write(out.join("triage_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .bytes(".triage.v1")
        .compile_fds(fds)?;
    Ok(())
}

/// Writes `default_rules.rs`: every `rules/*.toml` as `(file name, bytes)`, so an installed
/// binary carries the default ruleset.
fn embed_default_rules(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=rules");
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("rules");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut code = String::from("pub static DEFAULT_RULES: &[(&str, &[u8])] = &[\n");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("rule file name is not UTF-8")?;
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    fs::write(out.join("default_rules.rs"), code)?;
    Ok(())
}
