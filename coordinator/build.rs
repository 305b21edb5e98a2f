//! Embeds the console (`../console`, the files its `MANIFEST` lists) into the coordinator, so that
//! `herd up` serves the web UI with no file on disk and no Node at build or run time.
//!
//! For each file this writes a gzip copy into `OUT_DIR` (compressed once here, at level 9, rather
//! than on every request) and a table `console_files.rs` of `(path, content type, ETag, raw,
//! gzip)`, which `api::console` includes. The ETag is a hash of the raw bytes, so a browser keeps
//! its copy until the file changes.

use flate2::write::GzEncoder;
use flate2::Compression;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let console = manifest_dir.join("..").join("console");
    let manifest = console.join("MANIFEST");
    println!("cargo:rerun-if-changed={}", manifest.display());
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
    let mut table = String::from("&[\n");
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(path), Some(content_type), None) = (fields.next(), fields.next(), fields.next())
        else {
            panic!("{}:{}: expected `PATH TYPE`", manifest.display(), n + 1);
        };
        assert!(
            !path.contains("..") && !path.starts_with('/'),
            "{}:{}: {path} must be relative, inside console/",
            manifest.display(),
            n + 1
        );
        let file = console.join(path);
        println!("cargo:rerun-if-changed={}", file.display());
        let raw =
            std::fs::read(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let gz_path = out.join("console").join(format!("{path}.gz"));
        write_gzip(&gz_path, &raw);
        let _ = writeln!(
            table,
            "    ({:?}, {:?}, \"\\\"{:016x}\\\"\", include_bytes!({:?}), include_bytes!({:?})),",
            format!("/{path}"),
            content_type,
            fnv1a(&raw),
            file.display().to_string(),
            gz_path.display().to_string(),
        );
    }
    table.push_str("]\n");
    std::fs::write(out.join("console_files.rs"), table).expect("write console_files.rs");
}

fn write_gzip(path: &Path, raw: &[u8]) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create OUT_DIR/console");
    }
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(raw).expect("gzip");
    std::fs::write(path, gz.finish().expect("gzip")).expect("write gzip");
}

/// FNV-1a, 64 bits: enough to tell versions of a file apart, with no dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
