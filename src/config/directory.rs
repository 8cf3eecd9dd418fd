//! `--directory …` and the flags that go with it (the fleet's Redis
//! directory, `crate::directory`).

use std::time::Duration;

/// How often the registry entry is refreshed (and load published).
pub const DIRECTORY_HEARTBEAT_MS_DEFAULT: u64 = 1_000;
/// A node not refreshed for this long is dead; its region takes over.
pub const DIRECTORY_TTL_MS_DEFAULT: u64 = 5_000;
/// Largest replicated snapshot of one instance, compressed bytes. Costs
/// Redis memory: this × instances of the fleet in the worst case.
pub const REPLICA_BYTES_MAX_DEFAULT: usize = 1 << 20;
/// Replica writes per second a node may send the directory
/// (`--replica-writes-per-s-max`); beyond it replicas get older.
pub const REPLICA_WRITES_PER_S_MAX_DEFAULT: u32 = 1_000;

/// `--directory …` and the flags that go with it.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// `redis://HOST:PORT` or `redis+sentinel://HOST:PORT,…/MASTER`.
    pub url: String,
    /// Base WebSocket URL players reach this node at; `None`: derived from
    /// the listen address once bound.
    pub public_url: Option<String>,
    pub location: String,
    pub heartbeat: Duration,
    pub ttl: Duration,
    pub replica_bytes_max: usize,
    /// Replica writes per second at most (`directory::budget`).
    pub replica_writes_per_s_max: u32,
}

impl DirectoryConfig {
    /// `Some` with --directory; the other directory flags need it.
    pub fn resolve(opts: &super::ServeOpts) -> Result<Option<DirectoryConfig>, super::ConfigError> {
        use super::invalid;
        let Some(url) = opts.directory.clone().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        if let Err(e) = super::endpoint::Endpoint::parse(&url) {
            return Err(invalid(
                "directory",
                format!("{}: {e}", super::endpoint::redacted(&url)),
            ));
        }
        let heartbeat_ms = opts
            .directory_heartbeat_ms
            .unwrap_or(DIRECTORY_HEARTBEAT_MS_DEFAULT);
        let ttl_ms = opts.directory_ttl_ms.unwrap_or(DIRECTORY_TTL_MS_DEFAULT);
        if heartbeat_ms == 0 {
            return Err(invalid("directory-heartbeat-ms", "must be at least 1"));
        }
        // Two missed heartbeats must not make a live node look dead.
        if ttl_ms < heartbeat_ms * 2 {
            return Err(invalid(
                "directory-ttl-ms",
                format!(
                    "{ttl_ms} must be at least twice --directory-heartbeat-ms ({heartbeat_ms})"
                ),
            ));
        }
        if let Some(u) = &opts.public_url {
            if !(u.starts_with("ws://") || u.starts_with("wss://")) {
                return Err(invalid(
                    "public-url",
                    format!("{u:?}: expected ws://… or wss://…"),
                ));
            }
        }
        let replica_bytes_max = opts.replica_bytes_max.unwrap_or(REPLICA_BYTES_MAX_DEFAULT);
        if replica_bytes_max < 1024 {
            return Err(invalid("replica-bytes-max", "must be at least 1024 bytes"));
        }
        let replica_writes_per_s_max = opts
            .replica_writes_per_s_max
            .unwrap_or(REPLICA_WRITES_PER_S_MAX_DEFAULT);
        if replica_writes_per_s_max == 0 {
            return Err(invalid("replica-writes-per-s-max", "must be at least 1"));
        }
        Ok(Some(DirectoryConfig {
            url,
            public_url: opts
                .public_url
                .clone()
                .map(|u| u.trim_end_matches('/').to_owned()),
            location: opts
                .location
                .clone()
                .or_else(|| opts.region.clone())
                .unwrap_or_else(|| "local".into()),
            heartbeat: Duration::from_millis(heartbeat_ms),
            ttl: Duration::from_millis(ttl_ms),
            replica_bytes_max,
            replica_writes_per_s_max,
        }))
    }
}
