//! What a load run does, validated once: the target, the mode (players on
//! /play or echo clients on /echo), rates and timing, and the budget checks
//! (file descriptors, local ports) that refuse a run this process cannot
//! carry before it opens a single socket.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};

/// File descriptors a loadgen process needs besides its sockets: stdio, and
/// per executor its three io_uring rings, eventfds and timers.
pub const FD_RESERVE_BASE: u64 = 48;
pub const FD_RESERVE_PER_THREAD: u64 = 16;

/// Largest `--threads`: each executor locks 3 × `io_memory` bytes and an
/// executor per core is the model; more than the cores only adds switching.
pub const THREADS_MAX: usize = 64;

/// Most connections one process may run. The fd limit stops it well before;
/// this bounds the per-connection task list for any limit.
pub const PLAYERS_MAX: usize = 1_000_000;

/// `--message-bytes` bounds in echo mode: the first 8 bytes carry the
/// intended send time; the server's default --max-payload is 16 KiB.
pub const ECHO_MESSAGE_BYTES_MIN: usize = 8;
pub const ECHO_MESSAGE_BYTES_MAX: usize = 1 << 20;

/// Highest send rate per connection, Hz: above it the schedule's period is
/// below 100 µs, finer than a timer wake-up on this kind of machine.
pub const RATE_HZ_MAX: f64 = 10_000.0;

/// The ephemeral port range when /proc cannot be read (Linux's default).
const PORT_RANGE_DEFAULT: (u32, u32) = (32_768, 60_999);

/// Which endpoint the connections exercise.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Simulated players on /play: Hello, Join, inputs at a fixed rate, pings.
    Play {
        /// `Some(p)`: player k joins instance `{prefix}-{k / p}`; `None`: Join
        /// without an id, so the server places the player.
        players_per_instance: Option<usize>,
        /// Prefix of instance ids, so several loadgen processes can keep
        /// their players apart (or together).
        instance_prefix: String,
        input_rate_hz: f64,
        /// Ping period per player; `None` sends no pings.
        ping_interval: Option<Duration>,
        /// The protocol version players speak: 2 (deltas, acknowledged
        /// every update) or 1 (full state in every StateUpdate).
        protocol_version: u16,
        /// This fraction of the players stand still (their inputs are
        /// (0, 0)); spread evenly over the player indices.
        idle_fraction: f64,
    },
    /// Echo clients on /echo: one message of `message_bytes` at `rate_hz`.
    Echo { message_bytes: usize, rate_hz: f64 },
}

/// A `ws://host:port/path` target, resolved once at start.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// As given, for the report.
    pub url: String,
    /// `host:port` as written, for the Host header.
    pub authority: String,
    pub addr: SocketAddr,
    /// Path and query, e.g. `/play` or `/play?x=1`.
    pub path: String,
}

impl Target {
    /// Parses and resolves `url`; an empty path becomes `default_path`.
    pub fn parse(url: &str, default_path: &str) -> anyhow::Result<Target> {
        let rest = url.strip_prefix("ws://").with_context(|| {
            if url.starts_with("wss://") {
                format!("--target {url:?}: wss:// (TLS) is not supported; put the load generator next to the server or behind the TLS terminator")
            } else {
                format!("--target {url:?}: expected ws://HOST:PORT/PATH")
            }
        })?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            bail!("--target {url:?}: no host");
        }
        let path = match path {
            "" | "/" => default_path.to_owned(),
            p if p.starts_with('?') => format!("{default_path}{p}"),
            p => p.to_owned(),
        };
        let with_port = if has_port(authority) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| format!("--target {url:?}: cannot resolve {with_port}"))?
            .next()
            .with_context(|| format!("--target {url:?}: {with_port} resolves to no address"))?;
        Ok(Target {
            url: url.to_owned(),
            authority: authority.to_owned(),
            addr,
            path,
        })
    }

    /// The URL to request, with `instance` added to the query so the server
    /// routes the socket to the instance's shard before the upgrade.
    pub fn request_url(&self, instance: Option<&str>) -> String {
        let path = match instance {
            None => self.path.clone(),
            Some(id) => {
                let sep = if self.path.contains('?') { '&' } else { '?' };
                format!("{}{sep}instance={id}", self.path)
            }
        };
        format!("ws://{}{path}", self.authority)
    }
}

fn has_port(authority: &str) -> bool {
    match authority.rsplit_once(':') {
        // "[::1]:9000" has a port, "[::1]" does not.
        Some((host, port)) => !port.contains(']') && !host.is_empty(),
        None => false,
    }
}

/// One validated load run.
#[derive(Debug, Clone)]
pub struct LoadgenConfig {
    pub target: Target,
    pub mode: Mode,
    /// Connections (players, or echo clients) this process opens.
    pub players: usize,
    /// Steady-state time after the last connection was started.
    pub duration: Duration,
    /// Connections started per second; `None`: all at once.
    pub ramp_per_s: Option<f64>,
    /// Local addresses to connect from, round-robin; empty: the kernel picks.
    pub source_ips: Vec<IpAddr>,
    /// Executors (one thread each).
    pub threads: usize,
    /// Cores to pin executor i to (`cpus[i % len]`); `None`: unpinned.
    pub cpus: Option<Vec<usize>>,
    /// TCP connect + upgrade + Hello/Join must finish within this.
    pub connect_timeout: Duration,
    /// How long to wait for the server's answer to our close frame.
    pub close_timeout: Duration,
    /// glommio registered memory per ring (locked memory: 3 rings per executor).
    pub io_memory_bytes: usize,
    /// Print a progress line on stderr every second.
    pub progress: bool,
}

impl LoadgenConfig {
    /// Defaults for a /play run against `url`: 10 players, 30 Hz inputs,
    /// pings every second, 5 s, all connections at once.
    pub fn play(url: &str, players: usize) -> anyhow::Result<LoadgenConfig> {
        Ok(LoadgenConfig {
            target: Target::parse(url, "/play")?,
            mode: Mode::Play {
                players_per_instance: None,
                instance_prefix: "lg".to_owned(),
                input_rate_hz: 30.0,
                ping_interval: Some(Duration::from_secs(1)),
                protocol_version: crate::protocol::PROTOCOL_VERSION,
                idle_fraction: 0.0,
            },
            players,
            duration: Duration::from_secs(5),
            ramp_per_s: None,
            source_ips: Vec::new(),
            threads: 1,
            cpus: None,
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
            io_memory_bytes: 512 << 10,
            progress: false,
        })
    }

    /// Defaults for an /echo run: 64-byte messages at 10 Hz per connection.
    pub fn echo(url: &str, connections: usize) -> anyhow::Result<LoadgenConfig> {
        Ok(LoadgenConfig {
            target: Target::parse(url, "/echo")?,
            mode: Mode::Echo {
                message_bytes: 64,
                rate_hz: 10.0,
            },
            ..LoadgenConfig::play(url, connections)?
        })
    }

    /// Checks values that clap cannot (relations, ranges).
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.players == 0 || self.players > PLAYERS_MAX {
            bail!("--players {}: must be 1..={PLAYERS_MAX}", self.players);
        }
        if self.threads == 0 || self.threads > THREADS_MAX {
            bail!("--threads {}: must be 1..={THREADS_MAX}", self.threads);
        }
        if self.duration.is_zero() {
            bail!("--duration must be above zero");
        }
        if let Some(r) = self.ramp_per_s {
            if !(r > 0.0 && r.is_finite()) {
                bail!("--ramp {r}: connections per second must be above zero (0 = all at once)");
            }
        }
        let rate = |flag: &str, hz: f64| {
            if hz > 0.0 && hz <= RATE_HZ_MAX {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "{flag} {hz}: must be above 0 and at most {RATE_HZ_MAX} Hz"
                ))
            }
        };
        match &self.mode {
            Mode::Play {
                players_per_instance,
                input_rate_hz,
                instance_prefix,
                protocol_version,
                idle_fraction,
                ..
            } => {
                rate("--input-rate", *input_rate_hz)?;
                use crate::protocol::{PROTOCOL_VERSION, PROTOCOL_VERSION_MIN};
                if !(PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION).contains(protocol_version) {
                    bail!("--protocol-version {protocol_version}: must be {PROTOCOL_VERSION_MIN}..={PROTOCOL_VERSION}");
                }
                if !(0.0..=1.0).contains(idle_fraction) {
                    bail!("--idle-fraction {idle_fraction}: must be from 0 to 1");
                }
                if *players_per_instance == Some(0) {
                    bail!("--players-per-instance must be at least 1");
                }
                let longest = format!("{instance_prefix}-{}", self.players);
                if crate::game::InstanceId::parse(&longest).is_err() {
                    bail!("--instance-prefix {instance_prefix:?}: instance ids must be 1..64 bytes of [A-Za-z0-9_.-]");
                }
            }
            Mode::Echo {
                message_bytes,
                rate_hz,
            } => {
                rate("--rate", *rate_hz)?;
                if !(ECHO_MESSAGE_BYTES_MIN..=ECHO_MESSAGE_BYTES_MAX).contains(message_bytes) {
                    bail!("--message-bytes {message_bytes}: must be {ECHO_MESSAGE_BYTES_MIN}..={ECHO_MESSAGE_BYTES_MAX} (the first 8 carry the send time)");
                }
            }
        }
        Ok(())
    }

    /// Time over which connections are started.
    pub fn ramp_time(&self) -> Duration {
        match self.ramp_per_s {
            Some(r) => Duration::from_secs_f64(self.players as f64 / r),
            None => Duration::ZERO,
        }
    }

    /// When connection `k` (0-based) is meant to start, after the run's start.
    pub fn connect_offset(&self, k: usize) -> Duration {
        match self.ramp_per_s {
            Some(r) => Duration::from_secs_f64(k as f64 / r),
            None => Duration::ZERO,
        }
    }

    /// Descriptors this run needs.
    pub fn fds_needed(&self) -> u64 {
        self.players as u64 + FD_RESERVE_BASE + FD_RESERVE_PER_THREAD * self.threads as u64
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard one and refuses a run that
/// needs more descriptors than that.
pub fn check_fd_budget(cfg: &LoadgenConfig) -> anyhow::Result<()> {
    let limit = raise_nofile_limit().context("cannot read RLIMIT_NOFILE")?;
    let needed = cfg.fds_needed();
    if needed > limit {
        bail!(
            "--players {} needs ~{needed} file descriptors; this process may open {limit} (ulimit -n). \
             Run several loadgen processes and merge their results with `shardline loadgen merge`.",
            cfg.players
        );
    }
    Ok(())
}

/// Returns the limit in force afterwards.
fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit; raising soft to hard is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Ok(lim.rlim_cur)
}

/// Refuses a run that needs more local ports toward the target than the
/// ephemeral range gives its source addresses.
pub fn check_port_budget(cfg: &LoadgenConfig) -> anyhow::Result<()> {
    let (lo, hi) = read_port_range().unwrap_or(PORT_RANGE_DEFAULT);
    let per_source = u64::from(hi.saturating_sub(lo) + 1);
    let sources = cfg.source_ips.len().max(1) as u64;
    let players = cfg.players as u64;
    if players > per_source * sources {
        let needed = players.div_ceil(per_source);
        bail!(
            "--players {players} needs {players} local ports toward {}; the ephemeral port range \
             {lo}-{hi} (net.ipv4.ip_local_port_range) gives {per_source} per source address. \
             Spread the connections with --source-ips over at least {needed} addresses \
             (e.g. --source-ips 127.0.0.1-{needed} for a loopback target).",
            cfg.target.addr
        );
    }
    Ok(())
}

fn read_port_range() -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(str::parse::<u32>);
    match (it.next()?, it.next()?) {
        (Ok(lo), Ok(hi)) if lo <= hi => Some((lo, hi)),
        _ => None,
    }
}

/// Parses "500ms", "3s", "2m", "1.5s" or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration like 500ms, 3s or 2m"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("{s:?}: unknown unit {other:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Parses "127.0.0.1,127.0.0.2", "::1" or the range "127.0.0.1-8" (the last
/// IPv4 octet runs from 1 to 8).
pub fn parse_source_ips(s: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Ok(ip) = part.parse::<IpAddr>() {
            out.push(ip);
            continue;
        }
        let bad = || format!("{part:?} is not an address or a range like 127.0.0.1-8");
        let (first, last) = part.rsplit_once('-').ok_or_else(bad)?;
        let first: Ipv4Addr = first.parse().map_err(|_| bad())?;
        let last: u8 = last.parse().map_err(|_| bad())?;
        let [a, b, c, d] = first.octets();
        if last < d {
            return Err(bad());
        }
        out.extend((d..=last).map(|x| IpAddr::V4(Ipv4Addr::new(a, b, c, x))));
    }
    if out.is_empty() {
        return Err("lists no addresses".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn source_ip_ranges_expand() {
        let ips = parse_source_ips("127.0.0.1-3, 10.0.0.9").expect("valid");
        let want: Vec<IpAddr> = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "10.0.0.9"]
            .iter()
            .map(|s| s.parse().expect("ip"))
            .collect();
        assert_eq!(ips, want);
        assert!(parse_source_ips("127.0.0.5-2").is_err());
        assert!(parse_source_ips("nope").is_err());
    }

    #[test]
    fn targets_keep_path_and_add_the_instance() {
        let t = Target::parse("ws://127.0.0.1:9000/play", "/play").expect("valid");
        assert_eq!(
            t.addr,
            "127.0.0.1:9000".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(
            t.request_url(Some("lg-3")),
            "ws://127.0.0.1:9000/play?instance=lg-3"
        );
        let t = Target::parse("ws://127.0.0.1:9000", "/echo").expect("valid");
        assert_eq!(t.request_url(None), "ws://127.0.0.1:9000/echo");
        let t = Target::parse("ws://127.0.0.1:9000/play?v=1", "/play").expect("valid");
        assert_eq!(
            t.request_url(Some("a")),
            "ws://127.0.0.1:9000/play?v=1&instance=a"
        );
        assert!(Target::parse("wss://x:1/play", "/play").is_err());
        assert!(Target::parse("http://x:1/play", "/play").is_err());
    }

    #[test]
    fn fd_budget_counts_players_and_reserve() {
        let mut cfg = LoadgenConfig::play("ws://127.0.0.1:9/play", 25_000).expect("valid");
        assert_eq!(cfg.fds_needed(), 25_064);
        cfg.threads = 2;
        assert_eq!(cfg.fds_needed(), 25_080);
    }

    #[test]
    fn ramp_spreads_connections() {
        let mut cfg = LoadgenConfig::play("ws://127.0.0.1:9/play", 100).expect("valid");
        assert_eq!(cfg.connect_offset(50), Duration::ZERO);
        cfg.ramp_per_s = Some(50.0);
        assert_eq!(cfg.connect_offset(50), Duration::from_secs(1));
        assert_eq!(cfg.ramp_time(), Duration::from_secs(2));
    }
}
