//! How a check reads: an aligned table with the consequences under it, or
//! JSON for scripts (written by hand: the crate has no JSON dependency).

use std::fmt::Write as _;

use super::check::{Report, Verdict};

/// The table, then one line per mismatch.
pub fn text(r: &Report, process: &str) -> String {
    let mut out = String::new();
    let f = &r.flags;
    let origin = if r.flags_are_profiles {
        "the profile's sizing"
    } else {
        "as given"
    };
    let _ = writeln!(out, "profile {}: {}", r.profile, r.summary);
    let _ = writeln!(
        out,
        "flags:   --max-connections {} --shards {} --io-memory-bytes {} ({origin})",
        f.max_connections, f.shards, f.io_memory_bytes
    );
    let cap = if r.ipc_lock { "yes" } else { "no" };
    let _ = writeln!(out, "limits:  {process}, CAP_IPC_LOCK: {cap}\n");
    let header = ["SETTING", "LIVE", "WANTED", "VERDICT"];
    let width = |i: usize, cell: fn(&super::check::Row) -> &str| {
        r.rows
            .iter()
            .map(|row| cell(row).chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let w0 = width(0, |row| &row.setting);
    let w1 = width(1, |row| &row.live);
    let w2 = width(2, |row| &row.wanted);
    let _ = writeln!(
        out,
        "{:<w0$}  {:<w1$}  {:<w2$}  {}",
        header[0], header[1], header[2], header[3]
    );
    for row in &r.rows {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row.setting,
            row.live,
            row.wanted,
            row.verdict.label()
        );
    }
    let n = r.mismatches();
    if n == 0 {
        let _ = writeln!(
            out,
            "\nno mismatches: this host matches profile {}",
            r.profile
        );
        return out;
    }
    let plural = if n == 1 { "" } else { "es" };
    let _ = writeln!(out, "\n{n} mismatch{plural}:");
    for row in r.rows.iter().filter(|x| x.verdict == Verdict::Mismatch) {
        if let Some(c) = &row.consequence {
            let _ = writeln!(out, "- {c}");
        }
    }
    out
}

/// The same report as one JSON object.
pub fn json(r: &Report) -> String {
    let f = &r.flags;
    let rows: Vec<String> = r
        .rows
        .iter()
        .map(|row| {
            let verdict = match row.verdict {
                Verdict::Ok => "ok",
                Verdict::Mismatch => "mismatch",
                Verdict::Absent => "absent",
            };
            format!(
                "{{\"setting\":{},\"live\":{},\"wanted\":{},\"verdict\":\"{verdict}\",\"consequence\":{}}}",
                string(&row.setting),
                string(&row.live),
                string(&row.wanted),
                row.consequence.as_deref().map_or("null".to_owned(), string)
            )
        })
        .collect();
    format!(
        "{{\"profile\":{},\"flags\":{{\"max_connections\":{},\"shards\":{},\"io_memory_bytes\":{}}},\
         \"ipc_lock\":{},\"mismatches\":{},\"rows\":[{}]}}",
        string(&r.profile),
        f.max_connections,
        f.shards,
        f.io_memory_bytes,
        r.ipc_lock,
        r.mismatches(),
        rows.join(",")
    )
}

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::super::check::Row;
    use super::super::profile::Sizing;
    use super::*;

    fn report() -> Report {
        Report {
            profile: "p".into(),
            summary: "s".into(),
            flags: Sizing {
                max_connections: 10,
                shards: 1,
                io_memory_bytes: 65536,
            },
            flags_are_profiles: true,
            ipc_lock: false,
            rows: vec![
                Row {
                    setting: "nofile".into(),
                    live: "20000 (hard 20000)".into(),
                    wanted: "≥ 65536".into(),
                    verdict: Verdict::Mismatch,
                    consequence: Some("too \"few\"\nfiles".into()),
                },
                Row {
                    setting: "net.core.somaxconn".into(),
                    live: "4096".into(),
                    wanted: "≥ 4096".into(),
                    verdict: Verdict::Ok,
                    consequence: None,
                },
            ],
        }
    }

    #[test]
    fn json_escapes_and_counts() {
        let j = json(&report());
        assert!(j.contains(r#""consequence":"too \"few\"\nfiles""#), "{j}");
        assert!(j.contains(r#""consequence":null"#), "{j}");
        assert!(j.contains(r#""mismatches":1"#), "{j}");
        assert!(j.contains(r#""wanted":"≥ 65536""#), "{j}");
        assert_eq!(string("\u{1}"), "\"\\u0001\"");
    }

    #[test]
    fn text_aligns_columns_and_lists_consequences() {
        let t = text(&report(), "this process");
        let lines: Vec<&str> = t.lines().collect();
        let header = lines.iter().position(|l| l.starts_with("SETTING")).unwrap();
        let verdict_col = lines[header].find("VERDICT").unwrap();
        let row = lines[header + 1];
        // Columns are aligned by characters ("≥" is one character, three bytes).
        let col = row
            .char_indices()
            .position(|(i, _)| i == row.find("MISMATCH").unwrap());
        assert_eq!(col, Some(verdict_col));
        assert!(t.contains("1 mismatch:\n- too \"few\"\nfiles"), "{t}");
    }
}
