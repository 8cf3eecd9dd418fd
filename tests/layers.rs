//! The layers `src/lib.rs` documents are real: a module uses only the
//! modules listed before it in the layout map at the top of `lib.rs`.
//!
//! Reads the map (`//! - [`name`]: …` lines, lowest layer first), then
//! every `.rs` file under `src/`, and fails on any `crate::name` path (in a
//! `use` or inline, outside comments) that reaches a module listed after
//! the file's own, naming the file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules of the layout map, lowest first.
fn layers() -> Vec<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("read src/lib.rs");
    lib.lines()
        .filter_map(|l| l.strip_prefix("//! - [`"))
        .filter_map(|l| l.split_once("`]").map(|(name, _)| name.to_owned()))
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// Every top-level module named by a `crate::` path in `code`, including
/// grouped imports (`use crate::{a::x, b};`).
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
        rest = after;
    }
    found
}

/// The line without its comment (`//` outside a string literal).
fn code_part(line: &str) -> &str {
    let mut in_str = false;
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => in_str = !in_str,
            b'/' if !in_str && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

#[test]
fn the_layout_map_lists_every_module_once() {
    let layers = layers();
    assert!(
        layers.len() >= 10,
        "layout map not found in src/lib.rs: {layers:?}"
    );
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let declared: Vec<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect();
    assert_eq!(
        declared, layers,
        "src/lib.rs declares its modules in the order of its layout map, each once"
    );
}

#[test]
fn no_module_uses_a_higher_layer() {
    let layers = layers();
    let rank: HashMap<&str, usize> = layers
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut violations = Vec::new();
    for file in &files {
        let module = module_of(file);
        let Some(&own) = rank.get(module.as_str()) else {
            continue; // lib.rs, main.rs
        };
        let text = std::fs::read_to_string(file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = code_part(line);
            for dep in crate_paths(code) {
                if let Some(&theirs) = rank.get(dep.as_str()) {
                    if theirs > own {
                        violations.push(format!(
                            "{}:{}: `{module}` uses `{dep}`, a higher layer: {}",
                            file.strip_prefix(src()).unwrap().display(),
                            n + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layer order of src/lib.rs:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_inline_paths() {
    assert_eq!(
        crate_paths("use crate::{game::X, net::y};"),
        ["game", "net"]
    );
    assert_eq!(
        crate_paths("let a = crate::cli::f(crate::util::g());"),
        ["cli", "util"]
    );
    assert_eq!(code_part("x(); // crate::cli"), "x(); ");
    assert_eq!(
        code_part(r#"s("// not a comment"); crate::a"#),
        r#"s("// not a comment"); crate::a"#
    );
}
