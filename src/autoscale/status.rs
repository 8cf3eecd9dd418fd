//! What the controller knows and has done, shared between its evaluation
//! loop and its HTTP listener (`/metrics`, `/status`, the Agones webhook).
//! Both are plain threads of one small process, so a `Mutex` is the right
//! tool here (this is not a shard).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{json, Value};

use super::decide::{Action, Decision};
use super::policy::{ProviderPolicy, ScalingPolicy};

/// One region's figures.
#[derive(Debug, Default, Clone)]
pub struct RegionStatus {
    pub policy: Option<ScalingPolicy>,
    /// A stored policy that does not validate (the region is held).
    pub policy_error: Option<String>,
    pub decision: Option<Decision>,
    /// The last action taken (not hold) and when (Unix ms).
    pub last_action: Option<(String, u64)>,
    pub override_nodes: Option<u32>,
    pub scale_ups: u64,
    pub scale_downs: u64,
    pub nodes_started: u64,
    pub start_failures: u64,
    pub stop_failures: u64,
    pub drains_done: u64,
    pub drain_timeouts: u64,
    /// Time from asking for a node to its registration, last one, ms.
    pub node_start_ms_last: Option<u64>,
    /// Drain time (evacuate → empty) of the last drained node, ms.
    pub drain_ms_last: Option<u64>,
}

#[derive(Debug)]
pub struct Status {
    /// Holds the lease: the one controller that acts.
    pub active: bool,
    pub directory_up: bool,
    pub dry_run: bool,
    pub evaluations: u64,
    pub lease_takeovers: u64,
    pub webhook_requests: u64,
    pub webhook_refused: u64,
    regions: BTreeMap<String, RegionStatus>,
}

impl Status {
    pub fn new(dry_run: bool) -> Status {
        Status {
            active: false,
            directory_up: false,
            dry_run,
            evaluations: 0,
            lease_takeovers: 0,
            webhook_requests: 0,
            webhook_refused: 0,
            regions: BTreeMap::new(),
        }
    }

    pub fn region(&mut self, name: &str) -> &mut RegionStatus {
        self.regions.entry(name.to_owned()).or_default()
    }

    pub fn set_policy(&mut self, region: &str, p: ScalingPolicy) {
        let r = self.region(region);
        r.policy = Some(p);
        r.policy_error = None;
    }

    pub fn record(&mut self, d: Decision) {
        let r = self.region(&d.region.clone());
        r.decision = Some(d);
    }

    /// Keeps only the regions that still have a policy.
    pub fn retain_regions(&mut self, names: &[String]) {
        self.regions.retain(|r, _| names.contains(r));
    }

    /// The region whose policy's Agones Fleet is `fleet`.
    pub fn region_of_fleet(&self, fleet: &str) -> Option<String> {
        self.regions.iter().find_map(|(name, r)| match &r.policy {
            Some(ScalingPolicy {
                provider: ProviderPolicy::Agones { fleet: f },
                ..
            }) if f == fleet => Some(name.clone()),
            _ => None,
        })
    }

    /// The replica count to give Agones for `region`; `None`: do not scale
    /// (standby, directory unreachable, no decision yet).
    pub fn agones_replicas(&self, region: &str) -> Option<u32> {
        if !(self.active && self.directory_up) {
            return None;
        }
        let d = self.regions.get(region)?.decision.as_ref()?;
        Some(match &d.action {
            // Down one node at a time, as the policy goes (Agones stops
            // the game server it picks, gracefully).
            Action::Down { .. } => d.current.saturating_sub(1),
            _ => d.desired,
        })
    }

    /// `GET /status`.
    pub fn to_json(&self) -> Value {
        let regions: BTreeMap<&String, Value> = self
            .regions
            .iter()
            .map(|(name, r)| {
                (
                    name,
                    json!({
                        "decision": r.decision,
                        "policy": r.policy,
                        "policy_error": r.policy_error,
                        "override_nodes": r.override_nodes,
                        "last_action": r.last_action.as_ref().map(|(a, t)| json!({"action": a, "at_ms": t})),
                        "node_start_ms_last": r.node_start_ms_last,
                        "drain_ms_last": r.drain_ms_last,
                    }),
                )
            })
            .collect();
        json!({
            "active": self.active,
            "directory_up": self.directory_up,
            "dry_run": self.dry_run,
            "regions": regions,
        })
    }

    /// `GET /metrics` (Prometheus text format).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, rows: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP shardline_autoscale_{name} {help}");
            let _ = writeln!(out, "# TYPE shardline_autoscale_{name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(out, "shardline_autoscale_{name}{labels} {v}");
            }
        };
        let one = |v: u64| vec![(String::new(), v.to_string())];
        gauge(
            "active",
            "1 while this controller holds the lease and acts.",
            "gauge",
            one(u64::from(self.active)),
        );
        gauge(
            "directory_up",
            "1 while the directory (Redis) answers; while 0 every region is held.",
            "gauge",
            one(u64::from(self.directory_up)),
        );
        gauge(
            "dry_run",
            "1 when decisions are logged but not acted on (--dry-run).",
            "gauge",
            one(u64::from(self.dry_run)),
        );
        gauge(
            "evaluations_total",
            "Evaluations run while active.",
            "counter",
            one(self.evaluations),
        );
        gauge(
            "lease_takeovers_total",
            "Times this controller became the active one.",
            "counter",
            one(self.lease_takeovers),
        );
        gauge(
            "webhook_requests_total",
            "Agones FleetAutoscaleReview requests answered.",
            "counter",
            one(self.webhook_requests),
        );
        gauge(
            "webhook_refused_total",
            "Webhook requests refused (malformed: 400, unknown Fleet: 404).",
            "counter",
            one(self.webhook_refused),
        );
        let per = |f: &dyn Fn(&RegionStatus) -> Option<String>| -> Vec<(String, String)> {
            self.regions
                .iter()
                .filter_map(|(name, r)| f(r).map(|v| (format!("{{region=\"{name}\"}}"), v)))
                .collect()
        };
        let dec = |f: fn(&Decision) -> String| move |r: &RegionStatus| r.decision.as_ref().map(f);
        gauge(
            "nodes_desired",
            "Nodes the policy (or an override) asks for.",
            "gauge",
            per(&dec(|d| d.desired.to_string())),
        );
        gauge(
            "nodes_current",
            "Nodes running or starting, not draining.",
            "gauge",
            per(&dec(|d| d.current.to_string())),
        );
        gauge(
            "load_players",
            "Players in the region.",
            "gauge",
            per(&dec(|d| d.load.to_string())),
        );
        gauge(
            "capacity_players",
            "Players the region's nodes (not draining) admit.",
            "gauge",
            per(&dec(|d| d.capacity.to_string())),
        );
        gauge(
            "forecast_players",
            "Forecast peak load over the node start horizon.",
            "gauge",
            per(&|r| r.decision.as_ref()?.forecast.map(|f| format!("{f:.1}"))),
        );
        gauge(
            "forecast_error_ratio",
            "Weighted absolute error of the recent forecasts (0.1 = 10 %).",
            "gauge",
            per(&|r| {
                r.decision
                    .as_ref()?
                    .forecast_error
                    .map(|e| format!("{e:.4}"))
            }),
        );
        gauge(
            "forecast_used",
            "1 when the forecast counted in the last decision (0: reactive).",
            "gauge",
            per(&dec(|d| u64::from(d.forecast_used).to_string())),
        );
        gauge(
            "cooldown_left_ms",
            "Time before a cooldown lets the held action happen.",
            "gauge",
            per(&dec(|d| d.cooldown_left_ms.to_string())),
        );
        gauge(
            "override_nodes",
            "A manual override's node count (absent: none).",
            "gauge",
            per(&|r| r.override_nodes.map(|n| n.to_string())),
        );
        gauge(
            "policy_invalid",
            "1 when the region's stored policy does not validate (held).",
            "gauge",
            per(&|r| Some(u64::from(r.policy_error.is_some()).to_string())),
        );
        let mut last = Vec::new();
        for (name, r) in &self.regions {
            if let Some((a, t)) = &r.last_action {
                last.push((
                    format!("{{region=\"{name}\",action=\"{a}\"}}"),
                    t.to_string(),
                ));
            }
        }
        gauge(
            "last_action_timestamp_ms",
            "When the last action (up or down) was taken, Unix ms, labelled with it.",
            "gauge",
            last,
        );
        gauge(
            "scale_ups_total",
            "Scale-ups decided.",
            "counter",
            per(&|r| Some(r.scale_ups.to_string())),
        );
        gauge(
            "scale_downs_total",
            "Scale-downs (drains) decided.",
            "counter",
            per(&|r| Some(r.scale_downs.to_string())),
        );
        gauge(
            "nodes_started_total",
            "Nodes that registered after being asked for.",
            "counter",
            per(&|r| Some(r.nodes_started.to_string())),
        );
        gauge(
            "start_failures_total",
            "Node starts that failed or timed out.",
            "counter",
            per(&|r| Some(r.start_failures.to_string())),
        );
        gauge(
            "stop_failures_total",
            "Node stops that failed.",
            "counter",
            per(&|r| Some(r.stop_failures.to_string())),
        );
        gauge(
            "drains_total",
            "Drains finished (node empty, then stopped).",
            "counter",
            per(&|r| Some(r.drains_done.to_string())),
        );
        gauge(
            "drain_timeouts_total",
            "Drains stopped at drain_timeout_ms with games left (the region took them over).",
            "counter",
            per(&|r| Some(r.drain_timeouts.to_string())),
        );
        gauge(
            "node_start_ms",
            "Measured time from asking for a node to its registration, last one.",
            "gauge",
            per(&|r| r.node_start_ms_last.map(|v| v.to_string())),
        );
        gauge(
            "drain_ms",
            "Measured time to empty the last drained node.",
            "gauge",
            per(&|r| r.drain_ms_last.map(|v| v.to_string())),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_name_every_region_figure() {
        let mut s = Status::new(true);
        s.active = true;
        s.set_policy("eu", ScalingPolicy::with_max(3));
        s.record(Decision {
            region: "eu".into(),
            current: 2,
            desired: 3,
            action: Action::Up { count: 1 },
            reason: "x".into(),
            load: 1500,
            capacity: 2000,
            forecast: Some(1800.0),
            forecast_error: Some(0.05),
            forecast_used: true,
            cooldown_left_ms: 0,
        });
        s.region("eu").last_action = Some(("up".into(), 1234));
        let text = s.render();
        for line in [
            "shardline_autoscale_active 1",
            "shardline_autoscale_dry_run 1",
            "shardline_autoscale_nodes_desired{region=\"eu\"} 3",
            "shardline_autoscale_nodes_current{region=\"eu\"} 2",
            "shardline_autoscale_forecast_players{region=\"eu\"} 1800.0",
            "shardline_autoscale_forecast_error_ratio{region=\"eu\"} 0.0500",
            "shardline_autoscale_cooldown_left_ms{region=\"eu\"} 0",
            "shardline_autoscale_last_action_timestamp_ms{region=\"eu\",action=\"up\"} 1234",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        assert_eq!(s.to_json()["regions"]["eu"]["decision"]["desired"], 3);
    }
}
