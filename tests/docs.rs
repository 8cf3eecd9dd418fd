//! The docs say what the code does, and cannot drift from it unseen:
//!
//! - README.md's flag table has one row per flag of `shardline serve
//!   --help`, no row for a flag that does not exist, and the same default;
//! - docs/protocol.md's error table lists every `ErrorCode` of the schema
//!   with its number, its close-code table every close code the server
//!   sends, and its HTTP table every status the game listener answers;
//! - every test a document names (`file::test_name`) exists.
//!
//! A failure names the exact row to add, remove or correct.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use shardline::net::close::CloseReason;
use shardline::protocol::ErrorCode;

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The rows of the first markdown table after `heading`, as cells.
fn table_after(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let at = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} section"));
    doc[at..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

// ------------------------------------------------------------------ flags

/// `serve --help`: flag → its `[default: …]` (None when it has none).
fn help_flags() -> BTreeMap<String, Option<String>> {
    let out = common::shardline_cli(&["serve", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut flags = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("--").or_else(|| {
            t.strip_prefix("-h, --")
                .or_else(|| t.split_once(", --").map(|(_, r)| r))
        }) {
            let name = format!("--{}", rest.split_whitespace().next().unwrap_or(""));
            flags.insert(name.clone(), None);
            current = Some(name);
        } else if let Some(name) = &current {
            if let Some(at) = t.find("[default: ") {
                let rest = &t[at + "[default: ".len()..];
                let default = rest.split(']').next().unwrap_or("").to_owned();
                flags.insert(name.clone(), Some(default));
            }
        }
    }
    for meta in ["--help", "--config"] {
        flags.remove(meta);
    }
    flags
}

/// README's flag table: flag → its default cell (a row may list several
/// flags, e.g. `--join-secret` / `--join-secret-file`).
fn readme_flags() -> BTreeMap<String, String> {
    let readme = repo_file("README.md");
    let mut flags = BTreeMap::new();
    for row in table_after(&readme, "## Flags") {
        for flag in row[0]
            .split('`')
            .filter(|c| c.starts_with("--"))
            .map(str::to_owned)
        {
            flags.insert(flag, row.get(2).cloned().unwrap_or_default());
        }
    }
    flags
}

/// A default as written in either place, compared loosely: backticks,
/// case and the explanation after a `:` (help) or in parentheses (README)
/// do not count.
fn default_core(text: &str) -> String {
    let t = text.replace('`', "").to_lowercase();
    let t = t.split(": ").next().unwrap_or("");
    t.split(" (").next().unwrap_or("").trim().to_owned()
}

#[test]
fn readme_flag_table_matches_serve_help() {
    let help = help_flags();
    let readme = readme_flags();
    assert!(help.len() > 30, "serve --help parsed to {help:?}");
    let mut problems = Vec::new();
    for (flag, default) in &help {
        match readme.get(flag) {
            None => problems.push(format!(
                "README.md's flag table has no row for {flag} (serve --help default: {})",
                default.as_deref().unwrap_or("none")
            )),
            Some(cell) => {
                if let Some(d) = default {
                    if default_core(cell) != default_core(d) {
                        problems.push(format!(
                            "README.md's row for {flag} says default {cell:?}; serve --help says {d:?}"
                        ));
                    }
                }
            }
        }
    }
    for flag in readme.keys() {
        if !help.contains_key(flag) {
            problems.push(format!(
                "README.md's flag table lists {flag}, which serve --help does not know"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

// ------------------------------------------------------------------ protocol

/// The schema's `enum ErrorCode`: name → number (None = 0 left out).
fn schema_error_codes() -> BTreeMap<String, u16> {
    let schema = repo_file("schemas/shardline.fbs");
    let at = schema
        .find("enum ErrorCode")
        .expect("enum ErrorCode in the schema");
    let body = &schema[at..];
    let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
    body.lines()
        .map(|l| l.trim())
        .filter(|l| !l.starts_with("///") && l.contains('='))
        .map(|l| {
            let (name, n) = l.trim_end_matches(',').split_once('=').unwrap();
            (name.trim().to_owned(), n.trim().parse().unwrap())
        })
        .filter(|(name, _)| name != "None")
        .collect()
}

#[test]
fn protocol_error_table_matches_the_schema() {
    let schema = schema_error_codes();
    // The generated code agrees with the schema text (names and numbers).
    for (name, n) in &schema {
        let code = ErrorCode(*n);
        assert_eq!(
            code.variant_name(),
            Some(name.as_str()),
            "the generated ErrorCode({n}) is not {name}: run bash scripts/gen-protocol.sh"
        );
    }
    let doc = repo_file("docs/protocol.md");
    let mut documented = BTreeMap::new();
    for row in table_after(&doc, "## Errors") {
        let cell = &row[0];
        let (name, n) = cell
            .trim_end_matches(')')
            .split_once(" (")
            .unwrap_or_else(|| panic!("docs/protocol.md error row {cell:?} is not `Name (N)`"));
        documented.insert(name.to_owned(), n.parse::<u16>().expect("a number"));
    }
    let mut problems = Vec::new();
    for (name, n) in &schema {
        match documented.get(name) {
            None => problems.push(format!(
                "docs/protocol.md's error table has no row for {name} ({n})"
            )),
            Some(d) if d != n => problems.push(format!(
                "docs/protocol.md says {name} ({d}); the schema says {name} = {n}"
            )),
            Some(_) => {}
        }
    }
    for name in documented.keys() {
        if !schema.contains_key(name) {
            problems.push(format!(
                "docs/protocol.md's error table lists {name}, which the schema does not have"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Source files of the game listener and its sessions, without their test
/// modules and comments.
fn listener_sources() -> Vec<(String, String)> {
    [
        "src/runtime/accept.rs",
        "src/net/driver.rs",
        "src/net/http.rs",
        "src/runtime/echo.rs",
        "src/net/echo_frames.rs",
        "src/net/echo_conn.rs",
        "src/net/echo_worker.rs",
        "src/runtime/fleet_http.rs",
    ]
    .iter()
    .map(|p| {
        let text = repo_file(p);
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        (p.to_string(), code)
    })
    .collect()
}

/// Every close code the server sends: each `CloseReason` (the sessions'
/// closes), the error codes' closes, and tungstenite close codes named
/// in the listener's sources (e.g. /echo's 1007).
fn close_codes_in_code() -> BTreeMap<u16, String> {
    let mut codes = BTreeMap::new();
    for r in CloseReason::ALL {
        codes.insert(r.code(), format!("CloseReason::{r:?}"));
    }
    for (name, n) in schema_error_codes() {
        let e = shardline::protocol::ProtocolError::new(ErrorCode(n), "x");
        if let Some(c) = e.close_code() {
            codes.insert(c, format!("Error({name})"));
        }
    }
    for (file, code) in listener_sources() {
        for (i, _) in code.match_indices("CloseCode::") {
            let name: String = code[i + "CloseCode::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            let n = match name.as_str() {
                "Normal" => 1000,
                "Away" => 1001,
                "Protocol" => 1002,
                "Unsupported" => 1003,
                "Invalid" => 1007,
                "Policy" => 1008,
                "Size" => 1009,
                "Error" => 1011,
                "Again" => 1013,
                // `CloseCode::from(…)`: a number made elsewhere (CloseReason).
                "from" => continue,
                other => {
                    panic!("{file} sends CloseCode::{other}: add its number to this test's table")
                }
            };
            codes.insert(n, format!("CloseCode::{name} in {file}"));
        }
    }
    codes
}

#[test]
fn protocol_close_codes_match_the_code() {
    let doc = repo_file("docs/protocol.md");
    let documented: BTreeSet<u16> = table_after(&doc, "## Close codes")
        .iter()
        .map(|row| row[0].parse().expect("a close code"))
        .collect();
    let sent = close_codes_in_code();
    let mut problems = Vec::new();
    for (code, source) in &sent {
        if !documented.contains(code) {
            problems.push(format!(
                "docs/protocol.md's close-code table has no row for {code} (sent: {source})"
            ));
        }
    }
    for code in &documented {
        if !sent.contains_key(code) {
            problems.push(format!(
                "docs/protocol.md's close-code table lists {code}, which the server never sends"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn protocol_http_statuses_match_the_listener() {
    let mut sent = BTreeMap::new();
    for (file, code) in listener_sources() {
        for (i, _) in code.match_indices(['4', '5']) {
            let word: String = code[i..].chars().take(4).collect();
            let digits: String = word.chars().take_while(|c| c.is_ascii_digit()).collect();
            let before = code[..i].chars().last().unwrap_or(' ');
            // A status is an argument or a match arm: `503,` `503)` `404 =>`
            // (not a buffer size such as `[0u8; N]` or `= N;`).
            let after = code[i + digits.len()..].chars().next().unwrap_or(' ');
            if digits.len() == 3
                && !before.is_ascii_alphanumeric()
                && before != '_'
                && matches!(after, ',' | ')' | ' ')
            {
                let n: u16 = digits.parse().unwrap();
                if (400..600).contains(&n) {
                    sent.entry(n).or_insert(file.clone());
                }
            }
        }
    }
    let doc = repo_file("docs/protocol.md");
    let documented: BTreeSet<u16> = table_after(&doc, "## HTTP answers")
        .iter()
        .map(|row| row[0].parse().expect("an HTTP status"))
        .collect();
    let mut problems = Vec::new();
    for (status, file) in &sent {
        if !documented.contains(status) {
            problems.push(format!(
                "docs/protocol.md's HTTP table has no row for {status} (answered in {file})"
            ));
        }
    }
    for status in &documented {
        if !sent.contains_key(status) {
            problems.push(format!(
                "docs/protocol.md's HTTP table lists {status}, which the game listener never answers"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

// ------------------------------------------------------------------ tests cited

#[test]
fn every_test_a_document_names_exists() {
    let docs = [
        "README.md",
        "SECURITY.md",
        "BENCHMARKS.md",
        "docs/protocol.md",
        "docs/fleet.md",
    ];
    let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut problems = Vec::new();
    let mut cited = 0;
    for doc in docs {
        let text = repo_file(doc);
        for span in text.split('`').skip(1).step_by(2) {
            let Some((file, name)) = span.split_once("::") else {
                continue;
            };
            let path = tests_dir.join(format!("{file}.rs"));
            let is_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !is_name || !path.is_file() {
                continue;
            }
            cited += 1;
            let source = std::fs::read_to_string(&path).unwrap();
            if !source.contains(&format!("fn {name}(")) {
                problems.push(format!(
                    "{doc} names {span}, but tests/{file}.rs has no such test"
                ));
            }
        }
    }
    assert!(
        cited > 10,
        "only {cited} tests cited: is the parser broken?"
    );
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
