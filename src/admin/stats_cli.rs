//! `shardline stats`: reads a node's admin endpoint and prints, per shard
//! and merged, p50/p90/p99/p99.9/max of every latency histogram, plus
//! connections, players, instances and message rates.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::metrics::histograms::HistName;

/// Time allowed for one admin request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(clap::Args, Debug)]
pub struct StatsCli {
    /// Admin address of the node. [default: 127.0.0.1:9100]
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9100")]
    pub admin: String,
    /// Bearer token, when the node requires one.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SHARDLINE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Refresh in place every N seconds until interrupted.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<u64>,
    /// Print the node's JSON stats instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: StatsCli) -> anyhow::Result<()> {
    loop {
        let body = http_get(&cli.admin, "/stats", cli.token.as_deref())?;
        let stats: Value = serde_json::from_str(&body).context("admin /stats is not JSON")?;
        let text = if cli.json {
            serde_json::to_string_pretty(&stats)?
        } else {
            render(&stats)
        };
        match cli.watch {
            None => {
                println!("{text}");
                return Ok(());
            }
            Some(secs) => {
                // Clear the screen and home the cursor, then redraw.
                print!("\x1b[2J\x1b[H{text}\n(refreshing every {secs} s; Ctrl-C to stop)\n");
                std::io::stdout().flush()?;
                std::thread::sleep(Duration::from_secs(secs.max(1)));
            }
        }
    }
}

/// A plain HTTP/1.1 GET; returns the body of a 200 answer.
pub fn http_get(addr: &str, path: &str, token: Option<&str>) -> anyhow::Result<String> {
    let sock = addr
        .to_socket_addrs()
        .with_context(|| format!("bad admin address {addr:?}"))?
        .next()
        .with_context(|| format!("admin address {addr:?} resolves to nothing"))?;
    let mut s = TcpStream::connect_timeout(&sock, REQUEST_TIMEOUT)
        .with_context(|| format!("cannot reach the admin endpoint at {addr} (is the node running with --admin-listen {addr}?)"))?;
    s.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 || Instant::now() > deadline {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP answer from the admin endpoint")?;
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    if status != "200" {
        bail!(
            "admin endpoint answered {status} for {path}: {}",
            body.trim()
        );
    }
    Ok(body.to_owned())
}

fn ms(us: &Value) -> String {
    format!("{:.2}", us.as_f64().unwrap_or(0.0) / 1000.0)
}

/// The tables `shardline stats` prints.
pub fn render(stats: &Value) -> String {
    let mut out = String::new();
    let shards = stats["shards"].as_array().cloned().unwrap_or_default();
    out += &format!(
        "node {} ({}), up {:.0} s, {} shards, connections {}/{}, process CPU {:.2}, load {}\n\n",
        stats["node_id"].as_str().unwrap_or("?"),
        stats["region"].as_str().unwrap_or("?"),
        stats["uptime_s"].as_f64().unwrap_or(0.0),
        shards.len(),
        stats["connections_open"],
        stats["max_connections"],
        stats["process_cpu_usage"].as_f64().unwrap_or(0.0),
        stats["load_average"],
    );
    out += &format!(
        "{:<6} {:>6} {:>8} {:>8} {:>9} {:>8} {:>10} {:>10} {:>8} {:>6}\n",
        "shard",
        "cpu",
        "conns",
        "players",
        "active",
        "inst",
        "msgs in",
        "msgs out",
        "ticks/s",
        "shed"
    );
    for s in &shards {
        let c = &s["counters"];
        out += &format!(
            "{:<6} {:>6.2} {:>8} {:>8} {:>9} {:>8} {:>10} {:>10} {:>8.1} {:>6}\n",
            s["shard"].to_string(),
            s["cpu_usage"].as_f64().unwrap_or(0.0),
            s["connections_open"].to_string(),
            s["players_connected"].to_string(),
            s["players_active"].to_string(),
            s["instances"].to_string(),
            c["messages_in"].to_string(),
            c["messages_out"].to_string(),
            s["tick_rate_measured"].as_f64().unwrap_or(0.0),
            s["shedding"].to_string(),
        );
    }
    for name in HistName::ALL {
        let n = name.as_str();
        out += &format!(
            "\n{n} (ms)\n{:<6} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "shard", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        let mut rows: Vec<(String, &Value)> = shards
            .iter()
            .map(|s| (s["shard"].to_string(), &s["histograms_us"][n]))
            .collect();
        rows.push(("all".into(), &stats["histograms_us"][n]));
        for (label, h) in rows {
            out += &format!(
                "{:<6} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
                label,
                h["count"].to_string(),
                ms(&h["p50"]),
                ms(&h["p90"]),
                ms(&h["p99"]),
                ms(&h["p99_9"]),
                ms(&h["max"]),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_line_up_with_their_headers() {
        let stats = serde_json::json!({
            "node_id": "n", "region": "r", "shards": [{
                "shard": 0, "cpu_usage": 0.5, "connections_open": 12, "players_connected": 3,
                "players_active": 2, "instances": 1, "tick_rate_measured": 30.0, "shedding": false,
                "counters": {"messages_in": 100, "messages_out": 200},
                "histograms_us": {}
            }],
            "histograms_us": {}
        });
        let text = render(&stats);
        let lines: Vec<&str> = text.lines().collect();
        let header = lines.iter().position(|l| l.starts_with("shard")).unwrap();
        // JSON values are padded like the header, so the table lines up.
        assert_eq!(lines[header].len(), lines[header + 1].len(), "{text}");
        assert!(lines[header + 1].starts_with("0      "), "{text}");
    }
}
