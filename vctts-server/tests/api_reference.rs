//! `docs/API_REFERENCE.md`, executed: every example in it runs against a real
//! `vctts-server standalone` process, so the reference cannot drift from what
//! the server does.
//!
//! The document's examples are pairs of fenced ```` ```http ```` blocks: a
//! request (`METHOD /path`, headers, a blank line, a body) followed by the
//! response it gets (`HTTP/1.1 STATUS`, the headers that matter, a blank line,
//! the body's shape). The rules, also stated at the top of the document:
//! - `<name>` in a response matches any text and remembers it under `name`;
//!   `<name>` in a request is replaced by what was remembered (or by a value
//!   the harness presets: `<admin-password>`, `<admin-key>`);
//! - a JSON response body is a shape: every key shown must be there; strings
//!   must match (placeholders aside), booleans must be equal, numbers must be
//!   numbers, `null` matches anything; each element shown in an array must
//!   match some element of the actual array;
//! - a text body: each line shown must match some line of the answer (for
//!   `text/event-stream` the stream is read until they all did);
//! - a body that is one `<...>` line: any non-empty body (a WAV must be RIFF
//!   WAVE, a ZIP must start with `PK`); no body: the answer must be empty;
//! - `Content-Type: multipart/form-data` requests list `name=value` and
//!   `name=@file` parts; `reference.wav` is the harness's clip of real speech.
//!
//! Examples run in document order on one server, so state carries over (the
//! voice extracted early is synthesized with, listed and deleted later).
//! Other tests here check that the error-code table matches the code, that
//! every OpenAPI route has an example, and that the matcher itself refuses
//! what it should.

mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The admin password of the test server.
const ADMIN_PASSWORD: &str = "api-reference-password";
/// An API key with the admin scope, configured on the test server.
const ADMIN_KEY: &str = "api-reference-admin-key-0123456789";
/// How long the server may take to start and load the default voice.
const START_DEADLINE: Duration = Duration::from_secs(120);

fn reference_doc() -> (PathBuf, String) {
    let path = common::repo_root().join("docs/API_REFERENCE.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    (path, text)
}

// ------------------------------------------------------------------ parsing

/// One request of the document.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// The response an example shows.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// A request and its response, with the line of the request block.
#[derive(Debug, Clone, PartialEq)]
struct Example {
    line: usize,
    request: Request,
    expected: Expected,
}

impl Example {
    fn title(&self) -> String {
        format!(
            "API_REFERENCE.md:{}: {} {}",
            self.line, self.request.method, self.request.target
        )
    }
}

/// Splits a block into its head lines and its body (after the first blank line).
fn split_block(lines: &[String]) -> (Vec<String>, String) {
    match lines.iter().position(|l| l.trim().is_empty()) {
        Some(i) => (lines[..i].to_vec(), lines[i + 1..].join("\n").trim().to_string()),
        None => (lines.to_vec(), String::new()),
    }
}

fn parse_headers(lines: &[String], line: usize) -> Result<Vec<(String, String)>, String> {
    lines
        .iter()
        .map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty() && !k.contains(' '))
                .ok_or_else(|| format!("line {line}: {l:?} is not a header line"))
        })
        .collect()
}

/// Every example of a document, in order. Fenced blocks other than `http` are
/// ignored; an `http` request must be followed by its `http` response.
fn parse_examples(doc: &str) -> Result<Vec<Example>, String> {
    let mut blocks: Vec<(usize, Vec<String>)> = Vec::new();
    let mut lines = doc.lines().enumerate();
    while let Some((i, l)) = lines.next() {
        let t = l.trim_start();
        let Some(info) = t.strip_prefix("```") else {
            continue;
        };
        let is_http = info.split_whitespace().next() == Some("http");
        let mut body = Vec::new();
        let mut closed = false;
        for (_, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                closed = true;
                break;
            }
            body.push(l.to_string());
        }
        if !closed {
            return Err(format!("line {}: a fenced block is not closed", i + 1));
        }
        if is_http {
            blocks.push((i + 1, body));
        }
    }
    let mut out = Vec::new();
    let mut it = blocks.into_iter();
    while let Some((line, req)) = it.next() {
        let (head, body) = split_block(&req);
        let first = head
            .first()
            .ok_or_else(|| format!("line {line}: empty http block"))?;
        if first.starts_with("HTTP/") {
            return Err(format!(
                "line {line}: a response block without a request before it"
            ));
        }
        let mut parts = first.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE" | "PATCH") || !target.starts_with('/')
        {
            return Err(format!("line {line}: {first:?} is not \"METHOD /path\""));
        }
        let request = Request {
            method,
            target,
            headers: parse_headers(&head[1..], line)?,
            body,
        };
        let (rline, resp) = it
            .next()
            .ok_or_else(|| format!("line {line}: the request has no response block after it"))?;
        let (rhead, rbody) = split_block(&resp);
        let status_line = rhead.first().cloned().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("line {rline}: {status_line:?} is not \"HTTP/1.1 STATUS\""))?;
        out.push(Example {
            line,
            request,
            expected: Expected {
                status,
                headers: parse_headers(&rhead[1..], rline)?,
                body: rbody,
            },
        });
    }
    Ok(out)
}

// ----------------------------------------------------------------- matching

/// Values remembered from answers (and preset ones).
type Vars = BTreeMap<String, String>;

/// Whether `name` is a placeholder name (`<session>`, `<voice-id>`).
fn is_var_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A pattern cut into literal text and placeholders.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    Hole(&'a str),
}

fn pieces(pattern: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('<') {
        match rest[start..].find('>') {
            Some(len) if len > 1 => {
                if start > 0 {
                    out.push(Piece::Text(&rest[..start]));
                }
                out.push(Piece::Hole(&rest[start + 1..start + len]));
                rest = &rest[start + len + 1..];
            }
            _ => break,
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// Matches `text` against a pattern with `<...>` holes; holes named like
/// variables are remembered in `vars`.
fn pattern_match(pattern: &str, text: &str, vars: &mut Vars) -> bool {
    let ps = pieces(pattern);
    let mut caught = Vec::new();
    let mut pos = 0;
    for (i, p) in ps.iter().enumerate() {
        match p {
            Piece::Text(t) => {
                if !text[pos..].starts_with(t) {
                    return false;
                }
                pos += t.len();
            }
            Piece::Hole(name) => {
                // A hole takes everything up to the next literal (the last one
                // takes the rest); it must not be empty.
                let end = match ps.get(i + 1) {
                    Some(Piece::Text(next)) => match text[pos..].find(next) {
                        Some(off) => pos + off,
                        None => return false,
                    },
                    _ => text.len(),
                };
                if end == pos {
                    return false;
                }
                caught.push((name.to_string(), text[pos..end].to_string()));
                pos = end;
            }
        }
    }
    if pos != text.len() {
        return false;
    }
    for (name, value) in caught {
        if is_var_name(&name) {
            vars.insert(name, value);
        }
    }
    true
}

/// Checks a JSON value against the shape an example shows.
fn shape(expected: &Value, actual: &Value, path: &str, vars: &mut Vars) -> Result<(), String> {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let mismatch = || {
        Err(format!(
            "{path}: expected {} like {expected}, got {actual}",
            kind(expected)
        ))
    };
    match (expected, actual) {
        (Value::Null, _) => Ok(()),
        (Value::Bool(a), Value::Bool(b)) if a == b => Ok(()),
        (Value::Number(_), Value::Number(_)) => Ok(()),
        (Value::String(p), Value::String(s)) => {
            if pattern_match(p, s, vars) {
                Ok(())
            } else {
                mismatch()
            }
        }
        (Value::Array(want), Value::Array(got)) => {
            for (i, w) in want.iter().enumerate() {
                let mut found = false;
                let mut last_err = String::from("the array is empty");
                for g in got {
                    let mut tried = vars.clone();
                    match shape(w, g, &format!("{path}[{i}]"), &mut tried) {
                        Ok(()) => {
                            *vars = tried;
                            found = true;
                            break;
                        }
                        Err(e) => last_err = e,
                    }
                }
                if !found {
                    return Err(format!(
                        "{path}: no element matches the example's element {i} ({w}); last mismatch: {last_err}"
                    ));
                }
            }
            Ok(())
        }
        (Value::Object(want), Value::Object(got)) => {
            for (k, w) in want {
                let sub = format!("{path}.{k}");
                match got.get(k) {
                    Some(g) => shape(w, g, &sub, vars)?,
                    None => {
                        return Err(format!(
                            "{sub}: missing (got keys {:?})",
                            got.keys().collect::<Vec<_>>()
                        ));
                    }
                }
            }
            Ok(())
        }
        _ => mismatch(),
    }
}

/// Replaces `<name>` in request text with remembered values.
fn substitute(text: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::new();
    for p in pieces(text) {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Hole(name) if is_var_name(name) => match vars.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    return Err(format!(
                        "<{name}> is used before an answer showed it (known: {:?})",
                        vars.keys().collect::<Vec<_>>()
                    ));
                }
            },
            Piece::Hole(other) => {
                out.push('<');
                out.push_str(other);
                out.push('>');
            }
        }
    }
    Ok(out)
}

/// Whether a body is one descriptive placeholder (`<the WAV>`).
fn is_placeholder_body(body: &str) -> bool {
    let t = body.trim();
    t.starts_with('<') && t.ends_with('>') && !t[1..].contains('<')
}

/// The media type of a content type, lower case, without parameters.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Checks an answer against an example's expected response.
fn check_answer(
    expected: &Expected,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    vars: &mut Vars,
) -> Result<(), String> {
    let text = String::from_utf8_lossy(body);
    if status != expected.status {
        return Err(format!(
            "status {status}, the document says {}; body: {}",
            expected.status,
            text.chars().take(600).collect::<String>()
        ));
    }
    for (name, want) in &expected.headers {
        let got = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>();
        if got.is_empty() {
            return Err(format!("header {name} is missing (got {headers:?})"));
        }
        let ok = got.iter().any(|g| {
            if name.eq_ignore_ascii_case("content-type") && !want.contains(';') && !want.contains('<') {
                essence(g) == want.to_ascii_lowercase()
            } else {
                pattern_match(want, g, vars)
            }
        });
        if !ok {
            return Err(format!("header {name}: {got:?} does not match {want:?}"));
        }
    }
    let want = expected.body.trim();
    if want.is_empty() {
        if !body.is_empty() {
            return Err(format!("expected no body, got {} bytes: {}", body.len(), text));
        }
        return Ok(());
    }
    if is_placeholder_body(want) {
        if body.is_empty() {
            return Err("expected a body, got none".into());
        }
        let ct = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(essence)
            .unwrap_or_default();
        if ct == "audio/wav" && !(body.len() > 44 && &body[..4] == b"RIFF" && &body[8..12] == b"WAVE") {
            return Err("the audio/wav body is not a RIFF WAVE file".into());
        }
        if ct == "application/zip" && !body.starts_with(b"PK") {
            return Err("the application/zip body is not a ZIP file".into());
        }
        return Ok(());
    }
    if want.starts_with('{') || want.starts_with('[') {
        let shown: Value = serde_json::from_str(want)
            .map_err(|e| format!("the document's JSON body does not parse: {e}"))?;
        let got: Value =
            serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON ({e}): {text}"))?;
        return shape(&shown, &got, "body", vars);
    }
    text_lines_match(want, &text, vars)
}

/// Each non-empty line of `want` must match some line of `got`.
fn text_lines_match(want: &str, got: &str, vars: &mut Vars) -> Result<(), String> {
    for w in want.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !got.lines().any(|g| pattern_match(w, g.trim(), vars)) {
            return Err(format!(
                "no line of the answer matches {w:?}; the answer starts: {}",
                got.chars().take(800).collect::<String>()
            ));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------- server

/// A `vctts-server standalone` process (the crate's test harness,
/// `tests/common`) with its temp folder.
struct Standalone {
    server: common::Server,
    _dir: tempfile::TempDir,
}

impl Standalone {
    /// Starts the server with the real default voice and the fixture tone
    /// color converter (so voices can be extracted), and waits until it is
    /// ready.
    async fn start() -> Standalone {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = common::models_dir().join("openvoice/base");
        assert!(
            base.join("en_US-joe-medium.onnx").is_file(),
            "the default voice is missing: run scripts/setup.sh (looked in {})",
            base.display()
        );
        let models = dir.path().join("models");
        let ov = models.join("openvoice");
        std::fs::create_dir_all(&ov).expect("models dir");
        std::os::unix::fs::symlink(&base, ov.join("base")).expect("link the default voice");
        let conv = common::repo_root().join("vctts-engines/tests/fixtures/graphs/openvoice/converter");
        assert!(
            conv.join("tone_clone_model.onnx").is_file(),
            "the fixture tone color converter is missing ({})",
            conv.display()
        );
        std::os::unix::fs::symlink(&conv, ov.join("converter")).expect("link the converter");
        let yaml = format!(
            "server: {{ host: 127.0.0.1, port: 0 }}\n\
             limiter: {{ enabled: true, global_rpm: 100000, ip_rpm: 100000, concurrent_limit: 8 }}\n\
             default_engine: openvoice\n\
             auth:\n\
             \x20 admin_password: \"{ADMIN_PASSWORD}\"\n\
             \x20 api_keys:\n\
             \x20   - {{ name: ops, key: \"{ADMIN_KEY}\", scopes: [admin] }}\n"
        );
        vctts_server::config::GatewayConfig::parse(&yaml, &vctts_server::config::Env::empty())
            .expect("the test config is valid");
        let config = common::write(dir.path(), "gateway.yaml", &yaml);
        let models = models.to_string_lossy().into_owned();
        let data = dir.path().join("data").to_string_lossy().into_owned();
        let server = common::Server::start(&[
            "standalone",
            "--config",
            &config,
            "--models",
            &models,
            "--data",
            &data,
        ]);
        let http = common::http();
        let health = format!("{}/api/v3/health", server.base);
        common::eventually(START_DEADLINE, "the standalone server to be ready", || {
            let req = http.get(&health).send();
            async move { matches!(req.await, Ok(r) if r.status() == 200).then_some(()) }
        })
        .await;
        Standalone { server, _dir: dir }
    }
}

/// Files multipart examples may attach.
struct Fixtures {
    files: BTreeMap<String, Vec<u8>>,
}

impl Fixtures {
    /// `reference.wav`: more than 10 s of real speech (the harness's clip).
    fn make() -> Fixtures {
        let mut files = BTreeMap::new();
        files.insert("reference.wav".to_string(), common::reference_wav());
        Fixtures { files }
    }
}

/// Sends one example's request.
async fn send(
    http: &reqwest::Client,
    base: &str,
    req: &Request,
    vars: &Vars,
    fixtures: &Fixtures,
) -> Result<reqwest::Response, String> {
    let target = substitute(&req.target, vars)?;
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut b = http.request(method, format!("{base}{target}"));
    let mut multipart = false;
    for (name, value) in &req.headers {
        let value = substitute(value, vars)?;
        if name.eq_ignore_ascii_case("host") {
            continue;
        }
        if name.eq_ignore_ascii_case("content-type") && essence(&value) == "multipart/form-data" {
            multipart = true;
            continue;
        }
        b = b.header(name.as_str(), value);
    }
    let body = substitute(&req.body, vars)?;
    if multipart {
        let mut form = reqwest::multipart::Form::new();
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| format!("multipart line {line:?} is not name=value"))?;
            if let Some(file) = value.strip_prefix('@') {
                let bytes = fixtures
                    .files
                    .get(file)
                    .ok_or_else(|| format!("no fixture file {file:?}"))?
                    .clone();
                let part = reqwest::multipart::Part::bytes(bytes)
                    .file_name(file.to_string())
                    .mime_str("audio/wav")
                    .map_err(|e| e.to_string())?;
                form = form.part(name.to_string(), part);
            } else {
                form = form.text(name.to_string(), value.to_string());
            }
        }
        b = b.multipart(form);
    } else if !body.is_empty() {
        b = b.body(body);
    }
    b.send().await.map_err(|e| format!("request failed: {e}"))
}

/// Reads an event stream until every expected line was seen (or a deadline).
async fn read_events(res: reqwest::Response, want: &str, vars: &mut Vars) -> Result<Vec<u8>, String> {
    use futures::StreamExt;
    let mut stream = res.bytes_stream();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mut probe = vars.clone();
        if text_lines_match(want, &String::from_utf8_lossy(&got), &mut probe).is_ok() {
            return Ok(got);
        }
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => got.extend_from_slice(&chunk),
            Ok(Some(Err(e))) => return Err(format!("the event stream failed: {e}")),
            Ok(None) | Err(_) => return Ok(got),
        }
    }
}

// -------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_of_the_api_reference_runs_against_a_live_server() {
    let (path, doc) = reference_doc();
    let examples = parse_examples(&doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        examples.len() >= 20,
        "only {} examples in the reference",
        examples.len()
    );
    let fixtures = Fixtures::make();
    let standalone = Standalone::start().await;
    let base = standalone.server.base.clone();
    let http = common::http();
    let mut vars = Vars::new();
    vars.insert("admin-password".into(), ADMIN_PASSWORD.into());
    vars.insert("admin-key".into(), ADMIN_KEY.into());
    let mut failures = Vec::new();
    for ex in &examples {
        let outcome = async {
            let res = send(&http, &base, &ex.request, &vars, &fixtures).await?;
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            let streaming = headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| essence(ct) == "text/event-stream");
            let body = if streaming {
                read_events(res, &ex.expected.body, &mut vars.clone()).await?
            } else {
                res.bytes()
                    .await
                    .map_err(|e| format!("reading the body: {e}"))?
                    .to_vec()
            };
            check_answer(&ex.expected, status, &headers, &body, &mut vars)
        }
        .await;
        if let Err(e) = outcome {
            failures.push(format!("{}: {e}", ex.title()));
        }
    }
    // On failure the harness prints the server's log as it drops.
    assert!(
        failures.is_empty(),
        "{} of {} examples do not match the live server:\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n")
    );
}

/// `(code, status)` rows of the document's error table.
fn error_table(doc: &str) -> BTreeMap<String, u16> {
    let mut rows = BTreeMap::new();
    for l in doc.lines() {
        let cells: Vec<&str> = l.trim().trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() < 2 {
            continue;
        }
        let (Some(code), Ok(status)) = (
            cells[0].strip_prefix('`').and_then(|c| c.strip_suffix('`')),
            cells[1].parse::<u16>(),
        ) else {
            continue;
        };
        if code.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            rows.insert(code.to_string(), status);
        }
    }
    rows
}

/// The codes a source file's `fn code` returns (`=> "name",`).
fn codes_in_source(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let start = text
        .find("fn code(")
        .unwrap_or_else(|| panic!("no fn code in {}", path.display()));
    let body = &text[start..];
    let end = body.find("\n    }\n").unwrap_or(body.len());
    body[..end]
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("=> \"")?;
            Some(rest.split('"').next()?.to_string())
        })
        .collect()
}

#[test]
fn the_error_table_lists_every_code_with_its_real_status() {
    let (_, doc) = reference_doc();
    let table = error_table(&doc);
    // Every core kind from the one table, plus the wire-only codes.
    let mut codes: Vec<String> = vctts_core::error::SPECS
        .iter()
        .map(|s| s.code.to_string())
        .collect();
    codes.extend(codes_in_source(
        &common::repo_root().join("vctts-server/src/error.rs"),
    ));
    assert!(
        codes.len() >= 30,
        "found only {} codes in the sources",
        codes.len()
    );
    let mut problems = Vec::new();
    for code in &codes {
        let real = vctts_server::error::status_for(code).as_u16();
        match table.get(code) {
            None => problems.push(format!("`{code}` ({real}) is not in the table")),
            Some(s) if *s != real => {
                problems.push(format!("`{code}`: the table says {s}, the server answers {real}"))
            }
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "docs/API_REFERENCE.md error table:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_openapi_operation_has_an_example() {
    let (path, doc) = reference_doc();
    let examples = parse_examples(&doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let openapi: Value = serde_json::from_str(&vctts_server::openapi::document()).expect("OpenAPI JSON");
    let mut missing = Vec::new();
    for (template, item) in openapi["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let covered = examples.iter().any(|ex| {
                ex.request.method.eq_ignore_ascii_case(method)
                    && route_matches(template, ex.request.target.split('?').next().unwrap_or(""))
            });
            if !covered {
                missing.push(format!("{} {template}", method.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations without an example in the reference: {missing:?}"
    );
}

/// Whether a concrete path (placeholders allowed) fits a route template.
fn route_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| (a.starts_with('{') && a.ends_with('}') && !b.is_empty()) || a == b)
}

#[test]
fn the_examples_parse_into_requests_and_responses() {
    let doc = "intro\n\n```http\nPOST /api/v3/x?y=1\nContent-Type: application/json\n\n{\"a\": 1}\n```\n\
               text\n```http\nHTTP/1.1 201 Created\nX-Id: <id>\n\n{\"id\": \"<id>\"}\n```\n\
               ```json\n{\"ignored\": true}\n```\n```http\nDELETE /v/<id>\n```\n```http\nHTTP/1.1 204 No Content\n```\n";
    let ex = parse_examples(doc).unwrap();
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].line, 3);
    assert_eq!(ex[0].request.method, "POST");
    assert_eq!(ex[0].request.target, "/api/v3/x?y=1");
    assert_eq!(
        ex[0].request.headers,
        vec![("Content-Type".to_string(), "application/json".to_string())]
    );
    assert_eq!(ex[0].request.body, "{\"a\": 1}");
    assert_eq!(ex[0].expected.status, 201);
    assert_eq!(ex[0].expected.body, "{\"id\": \"<id>\"}");
    assert_eq!(ex[1].expected.status, 204);
    assert!(ex[1].expected.body.is_empty());

    assert!(
        parse_examples("```http\nHTTP/1.1 200 OK\n```\n").is_err(),
        "a response first"
    );
    assert!(parse_examples("```http\nGET /x\n```\n").is_err(), "no response");
    assert!(parse_examples("```http\nFETCH /x\n```\n```http\nHTTP/1.1 200\n```\n").is_err());
    assert!(parse_examples("```http\nGET /x\n```\n```http\nHTTP/1.1 OK\n```\n").is_err());
    assert!(parse_examples("```http\nGET /x\nnot a header\n```\n```http\nHTTP/1.1 200\n```\n").is_err());
    assert!(parse_examples("```http\nGET /x\n").is_err(), "unclosed block");
}

#[test]
fn patterns_match_literals_and_capture_holes() {
    let mut vars = Vars::new();
    assert!(pattern_match("abc", "abc", &mut vars));
    assert!(!pattern_match("abc", "abcd", &mut vars));
    assert!(!pattern_match("abc", "ab", &mut vars));
    assert!(pattern_match("<uuid>", "6f1c-22", &mut vars));
    assert_eq!(vars["uuid"], "6f1c-22");
    assert!(!pattern_match("<uuid>", "", &mut vars), "a hole is never empty");
    assert!(pattern_match(
        "vctts_session=<session>; HttpOnly; Max-Age=<ttl>",
        "vctts_session=tok123; HttpOnly; Max-Age=43200",
        &mut vars
    ));
    assert_eq!(vars["session"], "tok123");
    assert_eq!(vars["ttl"], "43200");
    assert!(!pattern_match("a=<x>; b", "a=1; c", &mut vars));
    assert!(pattern_match("<a WAV file>", "anything", &mut vars));
    assert!(!vars.contains_key("a WAV file"), "descriptions are not variables");
    assert_eq!(
        substitute("/v/<uuid>?x=<ttl>", &vars).unwrap(),
        "/v/6f1c-22?x=43200"
    );
    assert!(substitute("/v/<unknown>", &vars).is_err());
    assert_eq!(substitute("<not a var>", &vars).unwrap(), "<not a var>");
}

#[test]
fn shapes_refuse_what_the_example_does_not_allow() {
    use serde_json::json;
    let mut vars = Vars::new();
    let exp = json!({"a": "x", "n": 1, "b": true, "any": null, "list": [{"id": "<id>"}], "obj": {"k": "v"}});
    let ok = json!({"a": "x", "n": 2.5, "b": true, "any": [1], "list": [{"id": "i1"}, {"id": "i2", "more": 1}],
                    "obj": {"k": "v", "extra": 0}, "extra": "fine"});
    shape(&exp, &ok, "body", &mut vars).unwrap();
    assert_eq!(vars["id"], "i1");
    let bad = |v: Value| shape(&exp, &v, "body", &mut Vars::new()).unwrap_err();
    let mut v = ok.clone();
    v.as_object_mut().unwrap().remove("a");
    assert!(bad(v).contains("body.a: missing"));
    let mut v = ok.clone();
    v["a"] = json!("y");
    assert!(bad(v).contains("body.a"));
    let mut v = ok.clone();
    v["n"] = json!("1");
    assert!(bad(v).contains("body.n"));
    let mut v = ok.clone();
    v["b"] = json!(false);
    assert!(bad(v).contains("body.b"));
    let mut v = ok.clone();
    v["list"] = json!([]);
    assert!(bad(v).contains("body.list"));
    let mut v = ok.clone();
    v["list"] = json!([{"name": "x"}]);
    assert!(bad(v).contains("body.list"));
    let mut v = ok.clone();
    v["obj"] = json!("v");
    assert!(bad(v).contains("body.obj"));
    // Array elements may match in any order, each against some element.
    shape(&json!([2, "b"]), &json!(["b", 1]), "body", &mut Vars::new()).unwrap();
    assert!(shape(&json!(["c"]), &json!(["b", "a"]), "body", &mut Vars::new()).is_err());
}

#[test]
fn answers_are_checked_for_status_headers_and_body() {
    use reqwest::header::{HeaderMap, HeaderValue};
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert("x-request-id", HeaderValue::from_static("r-1"));
    let exp = Expected {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-Request-Id".into(), "<rid>".into()),
        ],
        body: "{\"ok\": true}".into(),
    };
    let mut vars = Vars::new();
    check_answer(&exp, 200, &h, b"{\"ok\": true, \"more\": 1}", &mut vars).unwrap();
    assert_eq!(vars["rid"], "r-1");
    assert!(check_answer(&exp, 201, &h, b"{\"ok\": true}", &mut vars).is_err());
    assert!(check_answer(&exp, 200, &h, b"{\"ok\": false}", &mut vars).is_err());
    assert!(check_answer(&exp, 200, &h, b"not json", &mut vars).is_err());
    let mut no_id = h.clone();
    no_id.remove("x-request-id");
    assert!(check_answer(&exp, 200, &no_id, b"{\"ok\": true}", &mut vars).is_err());

    let mut wav_h = HeaderMap::new();
    wav_h.insert("content-type", HeaderValue::from_static("audio/wav"));
    let wav = Expected {
        status: 200,
        headers: vec![("Content-Type".into(), "audio/wav".into())],
        body: "<the WAV>".into(),
    };
    let mut riff = b"RIFF\0\0\0\0WAVE".to_vec();
    riff.resize(64, 0);
    check_answer(&wav, 200, &wav_h, &riff, &mut vars).unwrap();
    assert!(check_answer(&wav, 200, &wav_h, &[0u8; 64], &mut vars).is_err());
    assert!(check_answer(&wav, 200, &wav_h, b"", &mut vars).is_err());

    let empty = Expected {
        status: 204,
        headers: vec![],
        body: String::new(),
    };
    check_answer(&empty, 204, &HeaderMap::new(), b"", &mut vars).unwrap();
    assert!(check_answer(&empty, 204, &HeaderMap::new(), b"x", &mut vars).is_err());

    let text = Expected {
        status: 200,
        headers: vec![],
        body: "# TYPE <name> counter\nup <n>".into(),
    };
    check_answer(
        &text,
        200,
        &HeaderMap::new(),
        b"a 1\n# TYPE reqs counter\nup 1\n",
        &mut vars,
    )
    .unwrap();
    assert!(
        check_answer(
            &text,
            200,
            &HeaderMap::new(),
            b"# TYPE reqs gauge\nup 1\n",
            &mut vars
        )
        .is_err()
    );
}

#[test]
fn route_templates_match_concrete_paths() {
    assert!(route_matches("/api/v3/voices/{id}", "/api/v3/voices/alice"));
    assert!(route_matches("/api/v3/voices/{id}", "/api/v3/voices/<voice-id>"));
    assert!(!route_matches("/api/v3/voices/{id}", "/api/v3/voices"));
    assert!(!route_matches("/api/v3/voices/{id}", "/api/v3/voices/a/audio"));
    assert!(route_matches("/api/v3/health", "/api/v3/health"));
    assert!(!route_matches("/api/v3/health", "/api/v3/health/live"));
}
