//! The controller's decision for one region at one evaluation: a pure
//! function of the policy, the region as the directory shows it, the
//! forecast, a manual override and what the controller did before (its
//! cooldowns and the drain under way). No clock: `now_ms` is a parameter.
//!
//! - Size: the nodes needed to hold `max(load now, forecast peak)` at
//!   `scale_up_threshold` of their capacity, within `[min, max]`. The
//!   forecast only ever raises it (reactive is the floor), and only while
//!   its measured error is within the policy's `error_max`.
//! - Up: every missing node at once, then `cooldown_up_ms`.
//! - Down: one node at a time, only when the load now *and* the forecast are
//!   below `scale_down_threshold`, `cooldown_down_ms` after any scale event,
//!   no node starting and no other drain under way; the node with the
//!   fewest players goes (it has the fewest games to move).
//! - An override pins the size (within `max_nodes`), cooldowns and
//!   thresholds aside; drains still go one at a time.

use serde::Serialize;

use super::forecast::Forecast;
use super::policy::{ForecastMode, ScalingPolicy};

/// One registered node of the region, as the directory shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub id: String,
    pub capacity: u32,
    pub load: u32,
    pub draining: bool,
}

/// The region now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionView {
    pub nodes: Vec<NodeView>,
    /// Nodes asked for and not registered yet.
    pub starting: u32,
}

/// What the controller remembers of a region between evaluations (kept in
/// Redis too, so a controller that takes over respects the cooldowns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RegionMemory {
    pub last_up_ms: Option<u64>,
    pub last_down_ms: Option<u64>,
    /// The node being drained, and since when.
    pub draining: Option<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Hold,
    /// Start `count` nodes.
    Up {
        count: u32,
    },
    /// Drain node `node` (its games move live to the others), then stop it.
    Down {
        node: String,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Hold => "hold",
            Action::Up { .. } => "up",
            Action::Down { .. } => "down",
        }
    }
}

/// One evaluation's outcome (logged, exported in /metrics).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub region: String,
    /// Nodes running and starting, not draining.
    pub current: u32,
    /// The size the policy (or the override) asks for now.
    pub desired: u32,
    pub action: Action,
    pub reason: String,
    /// Players connected in the region.
    pub load: u64,
    /// Players the region's nodes (not draining) admit.
    pub capacity: u64,
    /// The forecast peak over the node start horizon, when there is one.
    pub forecast: Option<f64>,
    pub forecast_error: Option<f64>,
    /// The forecast counted in this decision.
    pub forecast_used: bool,
    /// Time before the action held by a cooldown may happen, ms.
    pub cooldown_left_ms: u64,
}

/// Everything one decision depends on.
pub struct Inputs<'a> {
    pub region: &'a str,
    pub policy: &'a ScalingPolicy,
    pub view: &'a RegionView,
    pub forecast: Option<Forecast>,
    /// How far ahead the forecast looks, ms (for the reason).
    pub horizon_ms: u64,
    pub override_nodes: Option<u32>,
    pub memory: &'a RegionMemory,
    pub now_ms: u64,
}

pub fn decide(i: &Inputs) -> Decision {
    let p = i.policy;
    let active: Vec<&NodeView> = i.view.nodes.iter().filter(|n| !n.draining).collect();
    let current = active.len() as u32 + i.view.starting;
    let load: u64 = i.view.nodes.iter().map(|n| u64::from(n.load)).sum();
    let capacity: u64 = active.iter().map(|n| u64::from(n.capacity)).sum();
    let observed = i.view.nodes.iter().map(|n| n.capacity).max();
    let forecast_used = p.forecast.mode == ForecastMode::Predictive
        && i.forecast.is_some_and(|f| f.usable(p.forecast.error_max));
    let mut d = Decision {
        region: i.region.to_owned(),
        current,
        desired: current,
        action: Action::Hold,
        reason: String::new(),
        load,
        capacity,
        forecast: i.forecast.map(|f| f.peak),
        forecast_error: i.forecast.and_then(|f| f.error),
        forecast_used,
        cooldown_left_ms: 0,
    };
    let Some(node_cap) = p.node_capacity_or(observed) else {
        // Capacity unknown (no node yet): only min_nodes can be decided.
        if current < p.min_nodes && i.override_nodes.is_none() {
            d.desired = p.min_nodes;
            d.action = Action::Up {
                count: p.min_nodes - current,
            };
            d.reason = format!("{} {current}→{}: min_nodes", i.region, p.min_nodes);
        } else {
            d.reason = format!(
                "{}: no node registered and no node_capacity in the policy: holding",
                i.region
            );
        }
        return d;
    };
    let peak = if forecast_used {
        i.forecast.map_or(0.0, |f| f.peak)
    } else {
        0.0
    };
    let demand = (load as f64).max(peak);
    let per_node = f64::from(node_cap) * p.scale_up_threshold;
    let needed = (demand / per_node).ceil() as u32;
    let sized = needed.clamp(p.min_nodes, p.max_nodes);
    let why = explain(i, &d, node_cap, demand, peak);
    if let Some(n) = i.override_nodes {
        d.desired = n.min(p.max_nodes);
        return overridden(i, d, &active);
    }
    d.desired = sized;
    if sized > current {
        let left = cooldown_left(i.memory.last_up_ms, p.cooldown_up_ms, i.now_ms);
        if left > 0 {
            d.cooldown_left_ms = left;
            d.reason = format!(
                "{} {current}→{sized} held: scale-up cooldown, {} s left ({why})",
                i.region,
                secs(left)
            );
            return d;
        }
        // Draining nodes still run: max_nodes counts them too.
        let room = p
            .max_nodes
            .saturating_sub(i.view.nodes.len() as u32 + i.view.starting);
        if room == 0 {
            d.reason = format!(
                "{} {current}→{sized} held: max_nodes ({}) running, counting draining ones ({why})",
                i.region, p.max_nodes
            );
            return d;
        }
        d.action = Action::Up {
            count: (sized - current).min(room),
        };
        d.reason = format!("{} {current}→{sized}: {why}", i.region);
        return d;
    }
    if sized == current {
        d.reason = format!("{} {current}: steady ({why})", i.region);
        return d;
    }
    // sized < current: the guards of a scale-down.
    let down_at = capacity as f64 * p.scale_down_threshold;
    let forecast_low = !forecast_used || peak < down_at;
    if !((load as f64) < down_at && forecast_low) {
        d.desired = current;
        d.reason = format!(
            "{} {current}: above the scale-down threshold {} ({why})",
            i.region, p.scale_down_threshold
        );
        return d;
    }
    if let Some(held) = down_blocked(i, &active) {
        d.reason = format!("{} {current}→{sized} held: {held}", i.region);
        return d;
    }
    let since = i.memory.last_up_ms.max(i.memory.last_down_ms);
    let left = cooldown_left(since, p.cooldown_down_ms, i.now_ms);
    if left > 0 {
        d.cooldown_left_ms = left;
        d.reason = format!(
            "{} {current}→{sized} held: scale-down cooldown, {} s left ({why})",
            i.region,
            secs(left)
        );
        return d;
    }
    let node = pick_to_drain(&active);
    d.reason = format!(
        "{} {current}→{}: drain {node}; {why}",
        i.region,
        current - 1
    );
    d.action = Action::Down { node };
    d
}

/// The decision under a manual override.
fn overridden(i: &Inputs, mut d: Decision, active: &[&NodeView]) -> Decision {
    let (current, want) = (d.current, d.desired);
    if want > current {
        d.action = Action::Up {
            count: want - current,
        };
        d.reason = format!("{} {current}→{want}: manual override", i.region);
    } else if want < current {
        match down_blocked(i, active) {
            Some(held) => {
                d.reason = format!(
                    "{} {current}→{want} (manual override) held: {held}",
                    i.region
                )
            }
            None => {
                let node = pick_to_drain(active);
                d.reason = format!(
                    "{} {current}→{}: manual override to {want}; drain {node}",
                    i.region,
                    current - 1
                );
                d.action = Action::Down { node };
            }
        }
    } else {
        d.reason = format!("{} {current}: manual override", i.region);
    }
    d
}

/// Why a drain cannot start now, if it cannot.
fn down_blocked(i: &Inputs, active: &[&NodeView]) -> Option<String> {
    if let Some((node, _)) = &i.memory.draining {
        return Some(format!("node {node} is still draining"));
    }
    if i.view.nodes.iter().any(|n| n.draining) {
        return Some("a node is draining".into());
    }
    if i.view.starting > 0 {
        return Some(format!("{} node(s) still starting", i.view.starting));
    }
    if active.len() < 2 {
        return Some("no other node would take its games".into());
    }
    None
}

/// The node with the fewest players (ties: the last id, the newest name).
fn pick_to_drain(active: &[&NodeView]) -> String {
    active
        .iter()
        .min_by(|a, b| a.load.cmp(&b.load).then_with(|| b.id.cmp(&a.id)))
        .map(|n| n.id.clone())
        .expect("at least two active nodes")
}

fn cooldown_left(since: Option<u64>, cooldown_ms: u64, now_ms: u64) -> u64 {
    since.map_or(0, |t| (t + cooldown_ms).saturating_sub(now_ms))
}

/// `forecast 7,900 players in 90 s, capacity 6,000, threshold 0.75`.
fn explain(i: &Inputs, d: &Decision, node_cap: u32, demand: f64, peak: f64) -> String {
    let p = i.policy;
    let basis = if d.forecast_used && peak >= d.load as f64 {
        format!(
            "forecast {} players in {} s",
            thousands(peak.round() as u64),
            secs(i.horizon_ms)
        )
    } else if p.forecast.mode == ForecastMode::Predictive && !d.forecast_used {
        let why = match d.forecast_error {
            Some(e) => format!(
                "forecast error {:.0} % > {:.0} %: reactive",
                e * 100.0,
                p.forecast.error_max * 100.0
            ),
            None => "forecast not measured yet: reactive".into(),
        };
        format!("load {} players ({why})", thousands(d.load))
    } else {
        format!("load {} players", thousands(demand.round() as u64))
    };
    format!(
        "{basis}, capacity {} ({} per node), threshold {}",
        thousands(d.capacity),
        thousands(u64::from(node_cap)),
        p.scale_up_threshold
    )
}

fn secs(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// 7900 → "7,900".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (k, c) in s.chars().enumerate() {
        if k > 0 && (s.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, load: u32) -> NodeView {
        NodeView {
            id: id.into(),
            capacity: 2000,
            load,
            draining: false,
        }
    }

    fn policy() -> ScalingPolicy {
        let mut p = ScalingPolicy::with_max(10);
        p.min_nodes = 2;
        p.cooldown_up_ms = 30_000;
        p.cooldown_down_ms = 300_000;
        p.node_start_ms = 90_000;
        p
    }

    fn forecast(peak: f64, error: f64) -> Option<Forecast> {
        Some(Forecast {
            peak,
            error: Some(error),
            seasonal: true,
            samples: 100,
        })
    }

    struct Case {
        policy: ScalingPolicy,
        view: RegionView,
        forecast: Option<Forecast>,
        over: Option<u32>,
        memory: RegionMemory,
        now_ms: u64,
    }

    impl Case {
        fn new(loads: &[u32]) -> Case {
            Case {
                policy: policy(),
                view: RegionView {
                    nodes: loads
                        .iter()
                        .enumerate()
                        .map(|(k, l)| node(&format!("eu-{}", k + 1), *l))
                        .collect(),
                    starting: 0,
                },
                forecast: None,
                over: None,
                memory: RegionMemory::default(),
                now_ms: 1_000_000,
            }
        }

        fn run(&self) -> Decision {
            decide(&Inputs {
                region: "eu",
                policy: &self.policy,
                view: &self.view,
                forecast: self.forecast,
                horizon_ms: 90_000,
                override_nodes: self.over,
                memory: &self.memory,
                now_ms: self.now_ms,
            })
        }
    }

    #[test]
    fn the_forecast_scales_up_ahead_and_says_why() {
        let mut c = Case::new(&[1500, 1500, 1500]);
        // 4,500 of 6,000 = 0.75: not above the threshold now.
        assert_eq!(c.run().action, Action::Hold);
        c.forecast = forecast(7_900.0, 0.05);
        let d = c.run();
        assert_eq!(d.action, Action::Up { count: 3 });
        assert_eq!(d.desired, 6);
        assert_eq!(
            d.reason,
            "eu 3→6: forecast 7,900 players in 90 s, capacity 6,000 (2,000 per node), threshold 0.75"
        );
        assert!(d.forecast_used);
    }

    #[test]
    fn a_wrong_forecast_falls_back_to_reactive() {
        let mut c = Case::new(&[1500, 1500, 1500]);
        c.forecast = forecast(7_900.0, 0.6);
        let d = c.run();
        assert_eq!(d.action, Action::Hold);
        assert!(!d.forecast_used);
        assert!(
            d.reason.contains("forecast error 60 % > 30 %: reactive"),
            "{}",
            d.reason
        );
        // Reactive mode ignores even a good forecast.
        c.forecast = forecast(7_900.0, 0.01);
        c.policy.forecast.mode = ForecastMode::Reactive;
        assert_eq!(c.run().action, Action::Hold);
        // The reactive threshold alone: 4,800 players need 4 nodes.
        c.view.nodes[0].load = 1800;
        assert_eq!(c.run().action, Action::Up { count: 1 });
    }

    #[test]
    fn scale_up_waits_for_its_cooldown_and_counts_starting_nodes() {
        let mut c = Case::new(&[1900, 1900]);
        c.memory.last_up_ms = Some(c.now_ms - 10_000);
        let d = c.run();
        assert_eq!(d.action, Action::Hold);
        assert_eq!(d.cooldown_left_ms, 20_000);
        assert!(
            d.reason.contains("scale-up cooldown, 20 s left"),
            "{}",
            d.reason
        );
        c.now_ms += 20_000;
        assert_eq!(c.run().action, Action::Up { count: 1 });
        c.view.starting = 1;
        assert_eq!(c.run().action, Action::Hold, "the starting node counts");
        // Never above max_nodes.
        c.view.nodes[0].load = 100_000;
        let d = c.run();
        assert_eq!(d.desired, 10);
        assert_eq!(d.action, Action::Up { count: 7 });
        // A draining node still counts against max_nodes.
        c.view.starting = 0;
        c.view.nodes.extend((3..=10).map(|k| NodeView {
            draining: k == 10,
            ..node(&format!("eu-{k}"), 1900)
        }));
        let d = c.run();
        assert_eq!(d.action, Action::Hold, "{}", d.reason);
        assert!(d.reason.contains("max_nodes (10) running"), "{}", d.reason);
    }

    #[test]
    fn scale_down_is_slow_one_node_at_a_time_and_never_below_min() {
        let mut c = Case::new(&[100, 50, 300, 10]);
        c.memory.last_up_ms = Some(c.now_ms - 100_000);
        let d = c.run();
        assert_eq!(d.action, Action::Hold, "cooldown after the last scale-up");
        assert!(
            d.reason.contains("scale-down cooldown, 200 s left"),
            "{}",
            d.reason
        );
        c.now_ms += 200_000;
        let d = c.run();
        assert_eq!(
            d.action,
            Action::Down {
                node: "eu-4".into()
            },
            "{}",
            d.reason
        );
        assert_eq!(d.desired, 2);
        // One drain at a time.
        c.memory.draining = Some(("eu-4".into(), c.now_ms));
        assert_eq!(c.run().action, Action::Hold);
        c.memory.draining = None;
        c.view.nodes[3].draining = true;
        assert_eq!(c.run().action, Action::Hold);
        // min_nodes: two nodes left stay.
        let c = Case::new(&[0, 0]);
        let d = c.run();
        assert_eq!((d.action, d.desired), (Action::Hold, 2));
    }

    #[test]
    fn no_scale_down_while_the_forecast_or_the_load_is_high() {
        // 1,000 of 8,000: below 0.4 now…
        let mut c = Case::new(&[250, 250, 250, 250]);
        // …but the evening peak is coming.
        c.forecast = forecast(4_000.0, 0.05);
        let d = c.run();
        assert_eq!(d.action, Action::Hold);
        assert!(
            d.reason.contains("above the scale-down threshold"),
            "{}",
            d.reason
        );
        c.forecast = forecast(500.0, 0.05);
        assert!(matches!(c.run().action, Action::Down { .. }));
        // Between the thresholds: hold (no flapping).
        let c = Case::new(&[1000, 1000, 1000, 400]);
        assert_eq!(c.run().action, Action::Hold);
    }

    #[test]
    fn no_up_down_up_within_a_cooldown() {
        // Scale up, then the load drops at once: no drain before
        // cooldown_down_ms has passed since the scale-up.
        let mut c = Case::new(&[1900, 1900]);
        let d = c.run();
        assert_eq!(d.action, Action::Up { count: 1 });
        c.memory.last_up_ms = Some(c.now_ms);
        c.view = Case::new(&[10, 10, 10]).view;
        for dt in [1_000, 100_000, 299_999] {
            c.now_ms = 1_000_000 + dt;
            assert_eq!(c.run().action, Action::Hold, "at +{dt} ms");
        }
        c.now_ms = 1_000_000 + 300_000;
        assert!(matches!(c.run().action, Action::Down { .. }));
    }

    #[test]
    fn an_override_pins_the_size() {
        let mut c = Case::new(&[10, 10]);
        c.over = Some(5);
        c.memory.last_up_ms = Some(c.now_ms);
        let d = c.run();
        assert_eq!(d.action, Action::Up { count: 3 }, "cooldowns aside");
        assert_eq!(d.reason, "eu 2→5: manual override");
        c.over = Some(50);
        assert_eq!(c.run().desired, 10, "within max_nodes");
        let mut c = Case::new(&[10, 10, 10]);
        c.over = Some(1);
        assert!(matches!(c.run().action, Action::Down { .. }));
        c.memory.draining = Some(("eu-3".into(), 0));
        assert_eq!(c.run().action, Action::Hold);
    }

    #[test]
    fn an_empty_region_gets_min_nodes_then_needs_a_capacity() {
        let mut c = Case::new(&[]);
        let d = c.run();
        assert_eq!(d.action, Action::Up { count: 2 });
        assert_eq!(d.reason, "eu 0→2: min_nodes");
        c.view.starting = 2;
        assert_eq!(c.run().action, Action::Hold);
        c.view.starting = 0;
        c.policy.min_nodes = 0;
        assert_eq!(c.run().action, Action::Hold, "no capacity to size by");
        c.policy.min_nodes = 2;
        c.policy.node_capacity = Some(100);
        let d = c.run();
        assert_eq!(d.action, Action::Up { count: 2 }, "min_nodes");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
