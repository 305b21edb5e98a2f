//! HTTP breadth in a plan: `hosts:` overrides, a step's own `timeout`, and `parallel` steps.

use super::tests_http::{assert_has, errors};
use super::*;

fn plan(extra: &str, scenario: &str) -> String {
    format!(
        "version: 1\nname: t\ntarget: http://api.test:8080\nload: {{stages: [{{duration: 1s, vus: 1}}]}}\n\
         scenario: {scenario}\n{extra}\n"
    )
}

#[test]
fn hosts_map_names_to_addresses_and_round_trip() {
    let p = from_yaml_str(&plan(
        "hosts: {API.test: 127.0.0.1, other.test: '10.0.0.5:9090', v6.test: '[::1]:8443'}",
        "[{get: /}]",
    ))
    .expect("valid");
    let found: Vec<(String, String)> = p
        .hosts
        .iter()
        .map(|h| (h.name.clone(), h.address()))
        .collect();
    assert_eq!(
        found,
        vec![
            ("api.test".into(), "127.0.0.1".into()),
            ("other.test".into(), "10.0.0.5:9090".into()),
            ("v6.test".into(), "[::1]:8443".into()),
        ]
    );
    assert_eq!(from_value(&p.to_json()), Ok(p));
    // Without `hosts`, the plan's JSON has none (what agents receive is unchanged).
    let plain = from_yaml_str(&plan("", "[{get: /}]")).expect("valid");
    assert!(plain.hosts.is_empty() && plain.to_json().get("hosts").is_none());
}

#[test]
fn bad_hosts_are_named_each_at_its_entry() {
    let e = errors(&plan(
        "hosts: {'http://a.test': 127.0.0.1, b.test: other.test, c.test: 3, 'd.test:80': 1.2.3.4, \
         e.test: '1.2.3.4:0', A.test: 1.1.1.1, a.TEST: 2.2.2.2}",
        "[{get: /}]",
    ));
    assert_has(&e, "hosts.http://a.test: is not a host name");
    assert_has(&e, "hosts.b.test: \"other.test\" is not an IP address");
    assert_has(&e, "hosts.c.test: must be an IP address, got a number");
    assert_has(&e, "hosts.d.test:80: is not a host name");
    assert_has(&e, "hosts.e.test: \"1.2.3.4:0\": the port must be");
    assert_has(&e, "hosts.a.TEST: is given twice");
    assert_has(
        &errors(&plan("hosts: [a.test]", "[{get: /}]")),
        "hosts: must be a map of host names to IP addresses",
    );
}

#[test]
fn a_step_timeout_overrides_the_plans_for_that_step() {
    let p = from_yaml_str(&plan(
        "options: {timeout: 5s}",
        "[{get: /slow, timeout: 250ms}, {get: /}]",
    ))
    .expect("valid");
    let timeouts: Vec<Option<Duration>> = p
        .scenario
        .iter()
        .map(|s| match s {
            Step::Request(r) => r.timeout,
            _ => None,
        })
        .collect();
    assert_eq!(timeouts, vec![Some(Duration::from_millis(250)), None]);
    assert_eq!(from_value(&p.to_json()), Ok(p));
    let e = errors(&plan("", "[{get: /a, timeout: 0s}, {get: /b, timeout: 3}]"));
    assert_has(&e, "scenario[0].timeout: must be > 0");
    assert_has(&e, "scenario[1].timeout: must be a duration with a unit");
}

#[test]
fn parallel_holds_requests_that_count_as_steps_of_their_own() {
    let p = from_yaml_str(&plan(
        "",
        "[{get: /page}, {parallel: [{get: /a.css}, {name: logo, get: /logo.png, \
          extract: {etag: {header: etag}}}, {get: '/b?e=${etag}'}]}]",
    ))
    .expect("valid");
    let Step::Parallel(inner) = &p.scenario[1] else {
        panic!("a parallel step: {:?}", p.scenario[1]);
    };
    assert_eq!(inner.len(), 3);
    assert_eq!(
        p.step_labels(),
        vec!["GET /page", "GET /a.css", "logo", "GET /b?e=${etag}"]
    );
    assert_eq!(from_value(&p.to_json()), Ok(p));
    let e = errors(&plan(
        "",
        "[{parallel: []}, {parallel: [{get: /a}, {think: 1s}, {group: g, steps: [{get: /}]}]}, \
          {parallel: {get: /}}, {parallel: [{get: /}], name: x}]",
    ));
    assert_has(&e, "scenario[0].parallel: must have at least one step");
    assert_has(
        &e,
        "scenario[1].parallel[1]: must be a request (get, post, …): parallel holds requests only",
    );
    assert_has(&e, "scenario[1].parallel[2]: must be a request");
    assert_has(&e, "scenario[2].parallel: must be a list of steps");
    assert_has(&e, "scenario[3].name: unknown field");
}

#[test]
fn body_files_inside_parallel_are_read_too() {
    struct One;
    impl PlanFiles for One {
        fn read(&self, _path: &str, _limit: usize) -> Result<Vec<u8>, String> {
            Ok(b"abc".to_vec())
        }
    }
    let p = from_yaml_str_with(
        &plan("", "[{parallel: [{put: /u, body_file: x.bin}]}]"),
        &One,
    )
    .expect("valid");
    let Step::Parallel(inner) = &p.scenario[0] else {
        panic!("a parallel step");
    };
    let Step::Request(r) = &inner[0] else {
        panic!("a request");
    };
    assert_eq!(
        r.body_file.as_ref().map(|f| f.content.clone()),
        Some(bytes::Bytes::from_static(b"abc"))
    );
}

#[test]
fn body_files_inside_a_scenario_of_several_are_read_too() {
    let p = from_yaml_str_with(
        "version: 1\nname: t\ntarget: http://api.test:8080\nscenarios:\n  \
         a: {load: {vus: 1, duration: 1s}, steps: [{get: /a}]}\n  \
         b: {load: {vus: 1, duration: 1s}, steps: [{put: /u, body_file: x.bin}]}\n",
        &Files(vec![("x.bin", "abc")]),
    )
    .expect("valid");
    let Step::Request(r) = &p.scenarios[1].steps[0] else {
        panic!("a request");
    };
    assert_eq!(
        r.body_file.as_ref().map(|f| f.content.clone()),
        Some(bytes::Bytes::from_static(b"abc"))
    );
}

/// A file reader from a map, standing in for the coordinator's file system.
struct Files(Vec<(&'static str, &'static str)>);

impl PlanFiles for Files {
    fn read(&self, path: &str, _limit: usize) -> Result<Vec<u8>, String> {
        self.0
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, text)| text.as_bytes().to_vec())
            .ok_or_else(|| "No such file".to_string())
    }
}

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

#[test]
fn tls_files_are_read_next_to_the_plan_and_travel_inside_it() {
    let files = Files(vec![("ca.pem", CERT), ("c.pem", CERT), ("c.key", KEY)]);
    let p = from_yaml_str_with(
        &plan(
            "options: {tls: {ca: ca.pem, client_cert: c.pem, client_key: c.key}}",
            "[{get: /}]",
        ),
        &files,
    )
    .expect("valid");
    let tls = &p.options.tls;
    assert_eq!(tls.ca.as_ref().map(|f| f.path.as_str()), Some("ca.pem"));
    assert_eq!(tls.client_key.as_ref().map(|f| f.pem.as_str()), Some(KEY));
    let json = p.to_json();
    assert_eq!(json["options"]["tls"]["client_cert"]["pem"], CERT);
    assert_eq!(from_value(&json), Ok(p));
    // A plain plan's options carry no `tls` or `proxy`.
    let plain = from_yaml_str(&plan("", "[{get: /}]")).expect("valid");
    assert!(plain.to_json()["options"].get("tls").is_none());
    assert!(plain.to_json()["options"].get("proxy").is_none());
}

#[test]
fn tls_mistakes_are_named_at_their_field_all_at_once() {
    let files = Files(vec![("key.pem", KEY), ("cert.pem", CERT)]);
    let e: Vec<String> = from_yaml_str_with(
        &plan(
            "options: {tls: {ca: key.pem, client_cert: missing.pem, client_key: cert.pem, crl: x}}",
            "[{get: nope}]",
        ),
        &files,
    )
    .expect_err("invalid")
    .0
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_has(&e, "options.tls.client_cert: missing.pem: No such file");
    assert_has(&e, "options.tls.ca: key.pem: holds no PEM certificate");
    assert_has(
        &e,
        "options.tls.client_key: cert.pem: holds no PEM private key",
    );
    assert_has(&e, "options.tls.crl: unknown field");
    assert_has(&e, "scenario[0].get: must be a path");
    let e = errors(&plan("options: {tls: {client_cert: c.pem}}", "[{get: /}]"));
    assert_has(
        &e,
        "options.tls.client_cert: the file \"c.pem\" was not read",
    );
    assert_has(&e, "options.tls.client_key: is required with client_cert");
}

#[test]
fn a_proxy_is_an_http_url_with_optional_credentials() {
    let p = from_yaml_str(&plan(
        "options: {proxy: 'http://user:pw@proxy.local:3128/'}",
        "[{get: /}]",
    ))
    .expect("valid");
    let proxy = p.options.proxy.clone().expect("a proxy");
    assert_eq!((proxy.host.as_str(), proxy.port), ("proxy.local", 3128));
    assert_eq!(proxy.authorization().as_deref(), Some("Basic dXNlcjpwdw=="));
    assert_eq!(from_value(&p.to_json()), Ok(p));
    let p = from_yaml_str(&plan("options: {proxy: 'http://[::1]'}", "[{get: /}]")).expect("valid");
    let proxy = p.options.proxy.expect("a proxy");
    assert_eq!(
        (proxy.host.as_str(), proxy.port, proxy.credentials),
        ("::1", 80, None)
    );
    for (bad, says) in [
        ("https://p:1", "must be an http:// URL"),
        ("http://p:1/path", "must be just http://host:port"),
        ("http://p:x", "port \"x\" is not a number"),
        ("http://:8080", "names no host"),
    ] {
        let e = errors(&plan(&format!("options: {{proxy: '{bad}'}}"), "[{get: /}]"));
        assert!(
            e.iter()
                .any(|m| m.starts_with("options.proxy: ") && m.contains(says)),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn multipart_parts_read_their_files_and_round_trip() {
    let files = Files(vec![("docs/a.pdf", "%PDF-1.4")]);
    let p = from_yaml_str_with(
        &plan(
            "vars: {who: alice}",
            "[{post: /upload, multipart: [{name: user, value: '${who}'}, {name: n, value: 3}, \
              {name: doc, file: docs/a.pdf, content_type: application/pdf}, \
              {name: raw, file: docs/a.pdf, filename: other.bin}]}]",
        ),
        &files,
    )
    .expect("valid");
    let Step::Request(r) = &p.scenario[0] else {
        panic!("a request");
    };
    assert_eq!(r.multipart.len(), 4);
    assert_eq!(r.multipart[0].value, FormValue::Text("${who}".into()));
    assert_eq!(r.multipart[1].value, FormValue::Text("3".into()));
    let FormValue::File {
        file,
        filename,
        content_type,
    } = &r.multipart[2].value
    else {
        panic!("a file part");
    };
    assert_eq!(
        (&file.content[..], filename.as_str(), content_type.as_str()),
        (&b"%PDF-1.4"[..], "a.pdf", "application/pdf")
    );
    let FormValue::File {
        filename,
        content_type,
        ..
    } = &r.multipart[3].value
    else {
        panic!("a file part");
    };
    assert_eq!(
        (filename.as_str(), content_type.as_str()),
        ("other.bin", "application/octet-stream")
    );
    assert_eq!(from_value(&p.to_json()), Ok(p));
}

#[test]
fn multipart_mistakes_are_named_at_their_part() {
    let files = Files(vec![]);
    let e: Vec<String> = from_yaml_str_with(
        &plan(
            "",
            "[{post: /a, multipart: [{name: f, file: missing.bin}, {value: x}, \
              {name: g, value: x, file: y}, {name: h, value: x, filename: z}]}, \
              {post: /b, body: x, multipart: [{name: a, value: b}]}, \
              {post: /c, multipart: []}, \
              {post: /d, headers: {content-type: text/plain}, multipart: [{name: a, value: b}]}]",
        ),
        &files,
    )
    .expect_err("invalid")
    .0
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_has(
        &e,
        "scenario[0].multipart[0].file: missing.bin: No such file",
    );
    assert_has(&e, "scenario[0].multipart[1].name: is required");
    assert_has(&e, "scenario[0].multipart[2]: has value and file");
    assert_has(
        &e,
        "scenario[0].multipart[3].filename: belongs to a file part",
    );
    assert!(
        !e.iter().any(|m| m.contains("needs value")),
        "an unread file is reported once: {e:?}"
    );
    assert_has(&e, "scenario[1]: has body and multipart");
    assert_has(&e, "scenario[2].multipart: must have at least one part");
    assert_has(
        &e,
        "scenario[3].headers.content-type: a multipart body sets its own content type",
    );
    assert_has(
        &errors(&plan(
            "",
            "[{post: /a, multipart: [{name: i, value: '${nope}'}]}]",
        )),
        "scenario[0].multipart[0].value: unknown variable ${nope}",
    );
}
