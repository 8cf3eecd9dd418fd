//! A region's `ScalingPolicy`: how many nodes it may run, when to add or
//! remove one, how to forecast, and which provider acts. Parsed from TOML
//! (`--policy FILE`) or `key=value` pairs (`shardline fleet config policy`),
//! stored in the directory as JSON, and validated once: an invalid policy is
//! refused with the reason and never reaches the controller. Pure code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Most nodes one region may be given: bounds the controller's per-region
/// work (one entry per node) and a typo's cost (`max_nodes = 10000`).
pub const NODES_PER_REGION_MAX: u32 = 1_000;
/// Most regions one policy file may name (each costs one history list in
/// Redis: see [`HISTORY_SAMPLES_MAX`]).
pub const REGIONS_MAX: usize = 64;
/// Most samples in one season (a day of 1-minute samples is 1,440). The
/// forecast keeps one float per slot: 8 B × this per region.
pub const SEASON_SAMPLES_MAX: u64 = 10_080;
/// Samples of history kept per region in Redis: two seasons and a margin.
/// Each is ~24 B in Redis, so a region costs at most ~0.5 MiB.
pub const HISTORY_SAMPLES_MAX: u64 = 2 * SEASON_SAMPLES_MAX + 64;
/// Shortest sample period, ms: finer than the nodes' heartbeats is noise.
pub const SAMPLE_MS_MIN: u64 = 100;
/// Longest a provider command may run before it is killed and counted as
/// failed (`command_timeout_ms` default).
pub const COMMAND_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Longest a template may be, bytes (it is logged with each action).
pub const TEMPLATE_BYTES_MAX: usize = 4096;

/// One region's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingPolicy {
    /// Never fewer nodes (not even when idle).
    #[serde(default = "defaults::min_nodes")]
    pub min_nodes: u32,
    /// Never more nodes (what the studio is ready to pay for).
    pub max_nodes: u32,
    /// Share of the region's player capacity in use above which a node is
    /// added; also the target utilisation every size is computed for.
    #[serde(default = "defaults::scale_up_threshold")]
    pub scale_up_threshold: f64,
    /// Share in use (now and forecast) below which a node is removed.
    #[serde(default = "defaults::scale_down_threshold")]
    pub scale_down_threshold: f64,
    /// Time after a scale-up before the next scale-up.
    #[serde(default = "defaults::cooldown_up_ms")]
    pub cooldown_up_ms: u64,
    /// Time after any scale event before a scale-down.
    #[serde(default = "defaults::cooldown_down_ms")]
    pub cooldown_down_ms: u64,
    /// How long a new node takes to be ready: the forecast's horizon (the
    /// controller measures the real time and uses the larger).
    #[serde(default = "defaults::node_start_ms")]
    pub node_start_ms: u64,
    /// Players one node admits, used only while the region has no node
    /// registered (otherwise the nodes' own --max-connections count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_capacity: Option<u32>,
    /// Longest a scale-down drain may take before the node is stopped
    /// anyway (gracefully: the region takes over what is left).
    #[serde(default = "defaults::drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    #[serde(default)]
    pub forecast: ForecastPolicy,
    #[serde(default)]
    pub provider: ProviderPolicy,
}

/// How the region's load is forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastPolicy {
    /// `predictive` (Holt-Winters, reactive as the floor) or `reactive`.
    #[serde(default = "defaults::mode")]
    pub mode: ForecastMode,
    /// Length of the seasonal cycle (a day by default).
    #[serde(default = "defaults::season_ms")]
    pub season_ms: u64,
    /// One history sample (the peak load seen) per this period.
    #[serde(default = "defaults::sample_ms")]
    pub sample_ms: u64,
    /// Forecast error (mean absolute error over the last
    /// `error_window` forecasts, as a share of the mean load) above which
    /// the forecast is ignored and the region is scaled reactively, until
    /// the error comes back under it.
    #[serde(default = "defaults::error_max")]
    pub error_max: f64,
    /// Forecasts the error is measured over.
    #[serde(default = "defaults::error_window")]
    pub error_window: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForecastMode {
    Predictive,
    Reactive,
}

/// Who starts and stops the region's nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProviderPolicy {
    /// Decide, log and export only (someone else acts on `desired`).
    #[default]
    None,
    /// Commands run by the controller (`sh -c`), with `{node}`, `{region}`,
    /// `{directory}` and (to stop a `foreground` node) `{pid}` replaced.
    Process {
        /// e.g. `systemctl start shardline@{node}`.
        scale_up: String,
        /// e.g. `systemctl stop shardline@{node}`. Optional with
        /// `foreground`: then the controller sends SIGTERM to the node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scale_down: Option<String>,
        /// `scale_up` *is* the node process (`exec shardline serve …`): the
        /// controller keeps it running instead of waiting for it to exit.
        #[serde(default)]
        foreground: bool,
        #[serde(default = "defaults::command_timeout_ms")]
        command_timeout_ms: u64,
    },
    /// An Agones Fleet sized through the FleetAutoscaler webhook: Agones
    /// asks, the controller answers `replicas`.
    Agones {
        /// The Fleet's name (`FleetAutoscaleRequest.name`).
        fleet: String,
    },
}

impl Default for ForecastPolicy {
    fn default() -> Self {
        ForecastPolicy {
            mode: defaults::mode(),
            season_ms: defaults::season_ms(),
            sample_ms: defaults::sample_ms(),
            error_max: defaults::error_max(),
            error_window: defaults::error_window(),
        }
    }
}

mod defaults {
    use super::ForecastMode;
    pub fn min_nodes() -> u32 {
        1
    }
    pub fn scale_up_threshold() -> f64 {
        0.75
    }
    pub fn scale_down_threshold() -> f64 {
        0.4
    }
    pub fn cooldown_up_ms() -> u64 {
        30_000
    }
    pub fn cooldown_down_ms() -> u64 {
        300_000
    }
    pub fn node_start_ms() -> u64 {
        60_000
    }
    pub fn drain_timeout_ms() -> u64 {
        60_000
    }
    pub fn mode() -> ForecastMode {
        ForecastMode::Predictive
    }
    pub fn season_ms() -> u64 {
        86_400_000
    }
    pub fn sample_ms() -> u64 {
        60_000
    }
    pub fn error_max() -> f64 {
        0.3
    }
    pub fn error_window() -> u32 {
        30
    }
    pub fn command_timeout_ms() -> u64 {
        super::COMMAND_TIMEOUT_MS_DEFAULT
    }
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("region {region}: {field}: {why}")]
    Invalid {
        region: String,
        field: &'static str,
        why: String,
    },
    #[error("{0}")]
    Parse(String),
}

/// The policies of every region, by name (the `[regions.NAME]` tables).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub regions: BTreeMap<String, ScalingPolicy>,
}

impl PolicyFile {
    /// Parses and validates a TOML policy file.
    pub fn parse_toml(text: &str) -> Result<PolicyFile, PolicyError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| PolicyError::Parse(e.message().to_owned()))?;
        if file.regions.is_empty() {
            return Err(PolicyError::Parse("no [regions.NAME] table".into()));
        }
        if file.regions.len() > REGIONS_MAX {
            return Err(PolicyError::Parse(format!(
                "{} regions; at most {REGIONS_MAX}",
                file.regions.len()
            )));
        }
        for (region, p) in &file.regions {
            p.validate(region)?;
        }
        Ok(file)
    }
}

impl ScalingPolicy {
    /// A policy with every default and `max_nodes`.
    pub fn with_max(max_nodes: u32) -> ScalingPolicy {
        ScalingPolicy {
            min_nodes: defaults::min_nodes(),
            max_nodes,
            scale_up_threshold: defaults::scale_up_threshold(),
            scale_down_threshold: defaults::scale_down_threshold(),
            cooldown_up_ms: defaults::cooldown_up_ms(),
            cooldown_down_ms: defaults::cooldown_down_ms(),
            node_start_ms: defaults::node_start_ms(),
            node_capacity: None,
            drain_timeout_ms: defaults::drain_timeout_ms(),
            forecast: ForecastPolicy::default(),
            provider: ProviderPolicy::None,
        }
    }

    /// Parses a stored policy (JSON) and validates it.
    pub fn from_json(region: &str, json: &str) -> Result<ScalingPolicy, PolicyError> {
        let p: ScalingPolicy = serde_json::from_str(json)
            .map_err(|e| PolicyError::Parse(format!("region {region}: {e}")))?;
        p.validate(region)?;
        Ok(p)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a policy serialises")
    }

    /// Applies `key=value` pairs on top of `self` (a region's current
    /// policy, or the defaults) and validates the result. Nested keys use a
    /// dot: `forecast.mode=reactive`, `provider.kind=process`.
    pub fn with_pairs(&self, region: &str, pairs: &[String]) -> Result<ScalingPolicy, PolicyError> {
        let mut v = serde_json::to_value(self).expect("a policy serialises");
        for pair in pairs {
            let (k, raw) = pair
                .split_once('=')
                .ok_or_else(|| PolicyError::Parse(format!("{pair:?}: expected key=value")))?;
            let value = parse_scalar(raw);
            let mut at = &mut v;
            let mut parts = k.split('.').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    at[part] = value.clone();
                } else {
                    if !at[part].is_object() {
                        at[part] = serde_json::json!({});
                    }
                    at = &mut at[part];
                }
            }
        }
        let p: ScalingPolicy = serde_json::from_value(v)
            .map_err(|e| PolicyError::Parse(format!("region {region}: {e}")))?;
        p.validate(region)?;
        Ok(p)
    }

    /// Checks every field and their relations.
    pub fn validate(&self, region: &str) -> Result<(), PolicyError> {
        let bad = |field: &'static str, why: String| PolicyError::Invalid {
            region: region.to_owned(),
            field,
            why,
        };
        if region.is_empty()
            || region.len() > 64
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(bad(
                "region",
                "a region name is 1-64 bytes of [A-Za-z0-9_.-]".into(),
            ));
        }
        if self.max_nodes == 0 || self.max_nodes > NODES_PER_REGION_MAX {
            return Err(bad(
                "max_nodes",
                format!("{} must be 1..={NODES_PER_REGION_MAX}", self.max_nodes),
            ));
        }
        if self.min_nodes > self.max_nodes {
            return Err(bad(
                "min_nodes",
                format!("{} is above max_nodes ({})", self.min_nodes, self.max_nodes),
            ));
        }
        let up = self.scale_up_threshold;
        let down = self.scale_down_threshold;
        if !(up > 0.0 && up <= 1.0) {
            return Err(bad(
                "scale_up_threshold",
                format!("{up} must be a share of capacity in (0, 1]"),
            ));
        }
        if !(down >= 0.0 && down < up) {
            return Err(bad(
                "scale_down_threshold",
                format!("{down} must be at least 0 and below scale_up_threshold ({up}), or the region would flap"),
            ));
        }
        if self.cooldown_down_ms < self.cooldown_up_ms {
            return Err(bad(
                "cooldown_down_ms",
                format!(
                    "{} is below cooldown_up_ms ({}): scale up fast, down slowly",
                    self.cooldown_down_ms, self.cooldown_up_ms
                ),
            ));
        }
        if self.node_start_ms == 0 {
            return Err(bad("node_start_ms", "must be above 0".into()));
        }
        if self.drain_timeout_ms == 0 {
            return Err(bad("drain_timeout_ms", "must be above 0".into()));
        }
        match self.node_capacity {
            Some(0) => return Err(bad("node_capacity", "must be above 0".into())),
            None if self.min_nodes == 0 => return Err(bad(
                "node_capacity",
                "required with min_nodes = 0 (an empty region has no node to read capacity from)"
                    .into(),
            )),
            _ => {}
        }
        self.forecast.validate(&bad)?;
        self.provider.validate(&bad)
    }

    /// Players one node of the region holds: the registered nodes' own
    /// figure (the largest), else `node_capacity`.
    pub fn node_capacity_or(&self, observed: Option<u32>) -> Option<u32> {
        observed.filter(|c| *c > 0).or(self.node_capacity)
    }
}

impl ForecastPolicy {
    fn validate(
        &self,
        bad: &dyn Fn(&'static str, String) -> PolicyError,
    ) -> Result<(), PolicyError> {
        if self.sample_ms < SAMPLE_MS_MIN {
            return Err(bad(
                "forecast.sample_ms",
                format!("{} is below {SAMPLE_MS_MIN}", self.sample_ms),
            ));
        }
        if self.season_ms < self.sample_ms * 2 || self.season_ms % self.sample_ms != 0 {
            return Err(bad(
                "forecast.season_ms",
                format!(
                    "{} must be a whole number (at least 2) of sample_ms ({})",
                    self.season_ms, self.sample_ms
                ),
            ));
        }
        if self.season_samples() > SEASON_SAMPLES_MAX {
            return Err(bad(
                "forecast.season_ms",
                format!(
                    "{} samples per season; at most {SEASON_SAMPLES_MAX} (raise sample_ms)",
                    self.season_samples()
                ),
            ));
        }
        if !(self.error_max > 0.0 && self.error_max.is_finite()) {
            return Err(bad("forecast.error_max", "must be above 0".into()));
        }
        if self.error_window == 0 || u64::from(self.error_window) > HISTORY_SAMPLES_MAX {
            return Err(bad(
                "forecast.error_window",
                format!("must be 1..={HISTORY_SAMPLES_MAX}"),
            ));
        }
        Ok(())
    }

    pub fn season_samples(&self) -> u64 {
        self.season_ms / self.sample_ms.max(1)
    }
}

impl ProviderPolicy {
    fn validate(
        &self,
        bad: &dyn Fn(&'static str, String) -> PolicyError,
    ) -> Result<(), PolicyError> {
        match self {
            ProviderPolicy::None => Ok(()),
            ProviderPolicy::Process {
                scale_up,
                scale_down,
                foreground,
                command_timeout_ms,
            } => {
                check_template("provider.scale_up", scale_up, bad)?;
                if !scale_up.contains("{node}") {
                    return Err(bad(
                        "provider.scale_up",
                        "must contain {node}: each node needs its own name".into(),
                    ));
                }
                match scale_down {
                    Some(t) => check_template("provider.scale_down", t, bad)?,
                    None if !foreground => {
                        return Err(bad(
                            "provider.scale_down",
                            "required unless foreground = true (then the node gets SIGTERM)".into(),
                        ))
                    }
                    None => {}
                }
                if *command_timeout_ms == 0 {
                    return Err(bad("provider.command_timeout_ms", "must be above 0".into()));
                }
                Ok(())
            }
            ProviderPolicy::Agones { fleet } => {
                if fleet.is_empty() || fleet.len() > 253 {
                    return Err(bad(
                        "provider.fleet",
                        "the Agones Fleet's name (1-253 bytes)".into(),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// Known placeholders in a command template.
const PLACEHOLDERS: [&str; 4] = ["{node}", "{region}", "{directory}", "{pid}"];

fn check_template(
    field: &'static str,
    t: &str,
    bad: &dyn Fn(&'static str, String) -> PolicyError,
) -> Result<(), PolicyError> {
    if t.trim().is_empty() {
        return Err(bad(field, "empty command".into()));
    }
    if t.len() > TEMPLATE_BYTES_MAX {
        return Err(bad(
            field,
            format!("longer than {TEMPLATE_BYTES_MAX} bytes"),
        ));
    }
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| bad(field, format!("unclosed {{ in {t:?}")))?;
        let name = &rest[open..open + close + 1];
        // `${var}` is the shell's, not a placeholder.
        let shell = open > 0 && rest.as_bytes()[open - 1] == b'$';
        if !shell && !PLACEHOLDERS.contains(&name) {
            return Err(bad(
                field,
                format!(
                    "unknown placeholder {name} (known: {})",
                    PLACEHOLDERS.join(" ")
                ),
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

/// `5` → number, `true` → bool, anything else → string.
fn parse_scalar(raw: &str) -> serde_json::Value {
    if let Ok(n) = raw.parse::<u64>() {
        return n.into();
    }
    if let Ok(f) = raw.parse::<f64>() {
        if f.is_finite() {
            return f.into();
        }
    }
    match raw {
        "true" => true.into(),
        "false" => false.into(),
        s => s.into(),
    }
}

/// Fills a command template. Values are the controller's own (node names
/// it made, region names validated above, the pid it recorded), so no
/// shell quoting is needed beyond what the template itself does.
pub fn fill(template: &str, node: &str, region: &str, directory: &str, pid: Option<u32>) -> String {
    template
        .replace("{node}", node)
        .replace("{region}", region)
        .replace("{directory}", directory)
        .replace("{pid}", &pid.map_or_else(String::new, |p| p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[regions.eu]
min_nodes = 2
max_nodes = 10
scale_up_threshold = 0.75
scale_down_threshold = 0.4
cooldown_up_ms = 30000
cooldown_down_ms = 300000
node_start_ms = 90000
[regions.eu.provider]
kind = "process"
scale_up = "systemctl start shardline@{node}"
scale_down = "systemctl stop shardline@{node}"

[regions.us]
max_nodes = 4
[regions.us.forecast]
mode = "reactive"
[regions.us.provider]
kind = "agones"
fleet = "shardline-us"
"#;

    #[test]
    fn a_policy_file_parses_with_defaults() {
        let f = PolicyFile::parse_toml(FILE).unwrap();
        let eu = &f.regions["eu"];
        assert_eq!(
            (eu.min_nodes, eu.max_nodes, eu.node_start_ms),
            (2, 10, 90_000)
        );
        assert_eq!(eu.forecast.mode, ForecastMode::Predictive);
        let us = &f.regions["us"];
        assert_eq!(us.min_nodes, 1);
        assert_eq!(us.forecast.mode, ForecastMode::Reactive);
        assert_eq!(
            us.provider,
            ProviderPolicy::Agones {
                fleet: "shardline-us".into()
            }
        );
        // JSON round trip (how the directory stores it).
        let back = ScalingPolicy::from_json("eu", &eu.to_json()).unwrap();
        assert_eq!(&back, eu);
    }

    fn refused(toml_region: &str) -> String {
        let text = format!("[regions.eu]\n{toml_region}");
        PolicyFile::parse_toml(&text).unwrap_err().to_string()
    }

    #[test]
    fn invalid_policies_are_refused_with_the_reason() {
        assert!(refused("max_nodes = 0").contains("max_nodes: 0 must be 1..="));
        assert!(
            refused("max_nodes = 2\nmin_nodes = 3").contains("min_nodes: 3 is above max_nodes (2)")
        );
        assert!(refused("max_nodes = 2\nscale_up_threshold = 1.5").contains("scale_up_threshold"));
        assert!(refused("max_nodes = 2\nscale_down_threshold = 0.8")
            .contains("below scale_up_threshold (0.75), or the region would flap"));
        assert!(
            refused("max_nodes = 2\ncooldown_up_ms = 60000\ncooldown_down_ms = 1000")
                .contains("scale up fast, down slowly")
        );
        assert!(refused("max_nodes = 2\nnode_start_ms = 0").contains("node_start_ms"));
        assert!(refused("max_nodes = 2\nmin_nodes = 0").contains("node_capacity: required"));
        assert!(refused("max_nodes = 2\nmax_nodez = 3").contains("unknown field `max_nodez`"));
        assert!(refused("min_nodes = 1").contains("missing field `max_nodes`"));
        assert!(
            refused("max_nodes = 2\n[regions.eu.forecast]\nsample_ms = 50")
                .contains("forecast.sample_ms")
        );
        assert!(
            refused("max_nodes = 2\n[regions.eu.forecast]\nseason_ms = 1000\nsample_ms = 300")
                .contains("whole number")
        );
        assert!(refused(
            "max_nodes = 2\n[regions.eu.forecast]\nseason_ms = 604800000\nsample_ms = 1000"
        )
        .contains("samples per season"));
        assert!(refused("max_nodes = 2\n[regions.eu.provider]\nkind = \"process\"\nscale_up = \"start x\"\nscale_down = \"x\"")
            .contains("must contain {node}"));
        assert!(refused(
            "max_nodes = 2\n[regions.eu.provider]\nkind = \"process\"\nscale_up = \"start {node}\""
        )
        .contains("scale_down: required unless foreground"));
        assert!(refused("max_nodes = 2\n[regions.eu.provider]\nkind = \"process\"\nscale_up = \"start {nod}\"\nscale_down = \"x\"")
            .contains("unknown placeholder {nod}"));
        assert!(
            refused("max_nodes = 2\n[regions.eu.provider]\nkind = \"agones\"\nfleet = \"\"")
                .contains("provider.fleet")
        );
        assert!(
            refused("max_nodes = 2\n[regions.eu.provider]\nkind = \"cloud\"")
                .contains("unknown variant `cloud`")
        );
        let bad_name = PolicyFile::parse_toml("[regions.\"e u\"]\nmax_nodes = 2").unwrap_err();
        assert!(bad_name.to_string().contains("region"), "{bad_name}");
        assert!(PolicyFile::parse_toml("")
            .unwrap_err()
            .to_string()
            .contains("no [regions.NAME]"));
    }

    #[test]
    fn pairs_change_a_policy_and_are_validated() {
        let base = ScalingPolicy::with_max(4);
        let p = base
            .with_pairs(
                "eu",
                &[
                    "min_nodes=2".into(),
                    "scale_up_threshold=0.8".into(),
                    "forecast.mode=reactive".into(),
                    "provider.kind=agones".into(),
                    "provider.fleet=game".into(),
                ],
            )
            .unwrap();
        assert_eq!(p.min_nodes, 2);
        assert_eq!(p.scale_up_threshold, 0.8);
        assert_eq!(p.forecast.mode, ForecastMode::Reactive);
        assert_eq!(
            p.provider,
            ProviderPolicy::Agones {
                fleet: "game".into()
            }
        );
        let e = base.with_pairs("eu", &["min_nodes=9".into()]).unwrap_err();
        assert!(
            e.to_string()
                .contains("min_nodes: 9 is above max_nodes (4)"),
            "{e}"
        );
        assert!(base.with_pairs("eu", &["nope".into()]).is_err());
        assert!(base.with_pairs("eu", &["colour=blue".into()]).is_err());
    }

    #[test]
    fn shell_variables_are_not_placeholders() {
        let t = "n={node}; exec taskset -c ${n##*-} serve";
        assert!(check_template("f", t, &|f, w| PolicyError::Invalid {
            region: "eu".into(),
            field: f,
            why: w
        })
        .is_ok());
    }

    #[test]
    fn templates_are_filled() {
        assert_eq!(
            fill(
                "kill -TERM {pid} # {node} {region} {directory}",
                "eu-3",
                "eu",
                "redis://r",
                Some(42)
            ),
            "kill -TERM 42 # eu-3 eu redis://r"
        );
    }
}
