//! Every real fixture under `tests/fixtures/import/` imports (or fails with the expected
//! message), and its plan passes herd's own parser; for JMeter files, an independent reader
//! (a plain text scan, not the XML tree) finds the same samplers with the same methods and paths.

use super::tests::{parse, requests};
use super::*;
use std::path::{Path, PathBuf};

fn dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/import")
        .join(kind)
}

/// Files beside the fixture.
struct Beside(PathBuf);

impl ImportFiles for Beside {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(self.0.join(path)).map_err(|e| format!("{path}: {e}"))
    }
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir(kind))
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e != "md" && e != "csv"))
        .collect();
    files.sort();
    files
}

/// Files that must fail, and a part of the expected message.
/// Files whose samplers name no host (and have no HTTP Request Defaults): they fail without
/// `--target`, and import with it.
const NO_HOST: [&str; 3] = ["GenTest2_13.jmx", "extractors.jmx", "assertions.jmx"];

const EXPECTED_FAILURES: [(&str, &str); 2] = [
    // A recording template: no sampler at all.
    ("recording-with-think-time.jmx", "no request converted"),
    // A template whose method and URL are FreeMarker placeholders (`[=method]`).
    ("simple-http-request-test-plan.jmx", "no request converted"),
];

fn import_all(kind: &str, min: usize) -> usize {
    let files = fixtures(kind);
    assert!(files.len() >= min, "{kind}: {} fixtures", files.len());
    let mut ok = 0;
    for f in &files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if kind == "taurus" && name.ends_with(".jmx") {
            continue;
        }
        let bytes = std::fs::read(f).expect("read");
        let options = ImportOptions::default();
        let beside = Beside(f.parent().map(Path::to_path_buf).unwrap_or_default());
        let beside_jmeter = Beside(dir("jmeter"));
        let files: &dyn ImportFiles = if kind == "dlt" {
            &beside_jmeter
        } else {
            &beside
        };
        let mut result = convert_with(&bytes, &options, files);
        if let Err(ImportError::NoHost { .. }) = &result {
            assert!(NO_HOST.contains(&name.as_str()), "{name}: {result:?}");
            let options = ImportOptions {
                target: Some("http://127.0.0.1:8080".into()),
                ..options.clone()
            };
            result = convert_with(&bytes, &options, files);
        }
        match (EXPECTED_FAILURES.iter().find(|(n, _)| *n == name), result) {
            (Some((_, msg)), Err(e)) => assert!(e.to_string().contains(msg), "{name}: {e}"),
            (Some(_), Ok(_)) => panic!("{name}: expected to fail"),
            (None, Err(e)) => panic!("{name}: {e}"),
            (None, Ok(imported)) => {
                let plan = parse(&imported);
                assert!(!requests(&plan).is_empty(), "{name}");
                ok += 1;
            }
        }
    }
    ok
}

#[test]
fn every_jmeter_fixture_imports() {
    assert!(import_all("jmeter", 10) >= 10);
}

#[test]
fn every_taurus_fixture_imports() {
    assert!(import_all("taurus", 3) >= 3);
}

#[test]
fn every_har_fixture_imports() {
    assert!(import_all("har", 3) >= 3);
}

#[test]
fn every_dlt_fixture_imports() {
    assert!(import_all("dlt", 3) >= 3);
}

/// An HTTP sampler as the independent reader sees it.
#[derive(Debug)]
struct Seen {
    name: String,
    method: String,
    path: String,
}

fn prop_text(block: &str, name: &str) -> Option<String> {
    let key = format!("name=\"{name}\"");
    let at = block.find(&key)?;
    let after = &block[at + key.len()..];
    if after.starts_with("/>") {
        return Some(String::new());
    }
    let start = after.find('>')? + 1;
    let end = after[start..].find('<')?;
    Some(
        after[start..start + end]
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">"),
    )
}

/// Every `<HTTPSamplerProxy …>` whose own tag is not disabled, by plain text search.
fn independent_samplers(text: &str) -> Vec<Seen> {
    let mut out = Vec::new();
    for tag in ["<HTTPSamplerProxy ", "<HTTPSampler "] {
        let close = if tag.contains("Proxy") {
            "</HTTPSamplerProxy>"
        } else {
            "</HTTPSampler>"
        };
        let mut rest = text;
        while let Some(i) = rest.find(tag) {
            let open_end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
            let open = &rest[i..open_end];
            let end = rest[open_end..]
                .find(close)
                .map_or(rest.len(), |e| open_end + e);
            let block = &rest[open_end..end];
            let name = open
                .split("testname=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_default();
            if !open.contains("enabled=\"false\"") {
                out.push(Seen {
                    name: name.replace("&quot;", "\"").replace("&amp;", "&"),
                    method: prop_text(block, "HTTPSampler.method")
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| "GET".into()),
                    path: prop_text(block, "HTTPSampler.path").unwrap_or_default(),
                });
            }
            rest = &rest[end.min(rest.len())..];
        }
    }
    out
}

#[test]
fn jmeter_samplers_match_an_independent_reader() {
    let mut compared = 0;
    for f in fixtures("jmeter") {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let bytes = std::fs::read(&f).expect("read");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let seen = independent_samplers(&text);
        let options = ImportOptions {
            target: Some("http://127.0.0.1:8080".into()),
            ..ImportOptions::default()
        };
        let Ok(imported) = convert_with(&bytes, &options, &Beside(dir("jmeter"))) else {
            assert!(
                seen.is_empty() || EXPECTED_FAILURES.iter().any(|(n, _)| *n == name),
                "{name}: failed with samplers {seen:?}"
            );
            continue;
        };
        let items: Vec<&ReportItem> = imported
            .report
            .items
            .iter()
            .filter(|i| {
                i.element.ends_with("HTTPSamplerProxy") || i.element.ends_with("HTTPSampler")
            })
            .filter(|i| i.outcome != Outcome::Skipped("disabled".into()))
            .collect();
        assert_eq!(
            items.len(),
            seen.len(),
            "{name}: report {items:#?}\nseen {seen:#?}"
        );
        let plan = parse(&imported);
        let reqs = requests(&plan);
        for s in &seen {
            let static_path =
                !s.path.contains('$') && !s.path.contains("://") && !s.method.contains('$');
            let converted = items.iter().any(|i| {
                i.path.ends_with(&format!("{:?}", s.name))
                    && !matches!(i.outcome, Outcome::Skipped(_))
            });
            if !converted || !static_path {
                continue;
            }
            let want = if s.path.starts_with('/') {
                s.path.clone()
            } else {
                format!("/{}", s.path)
            };
            assert!(
                reqs.iter().any(|(m, p)| *m == s.method.to_ascii_uppercase()
                    && p.starts_with(want.trim_end_matches('?'))),
                "{name}: {} {} not in {reqs:?}",
                s.method,
                want
            );
            compared += 1;
        }
    }
    assert!(compared >= 15, "compared {compared}");
}
