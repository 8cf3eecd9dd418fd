//! The process's log filter: set once at start, changed at run time by the
//! admin API (`POST /config` with `log_level`).

use std::sync::OnceLock;

use anyhow::Context;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

/// Handle to change the log filter at run time.
static LOG_FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber with `level` (or `$RUST_LOG`, or `info`).
pub fn init_logging(level: Option<&str>) -> anyhow::Result<()> {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).with_context(|| format!("--log-level {l:?}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_ansi(ansi).with_target(false))
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging: {e}"))?;
    let _ = LOG_FILTER.set(handle);
    Ok(())
}

/// Replaces the log filter (e.g. "debug", "info,shardline=trace").
pub fn set_log_filter(directive: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(directive).map_err(|e| e.to_string())?;
    let handle = LOG_FILTER.get().ok_or("logging is not initialised")?;
    handle.reload(filter).map_err(|e| e.to_string())
}
