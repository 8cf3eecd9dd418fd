//! The load balancer's brain: which node a player should connect to, from
//! the registry's view of the fleet. Pure code: the view is a parameter.

use serde::{Deserialize, Serialize};

/// One node as it registers itself (the value of `sl:node:{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    pub region: String,
    /// Free text for operators (e.g. "eu-west-1a", "Frankfurt").
    pub location: String,
    /// Base WebSocket URL clients connect to (`…/play`, `…/echo`).
    pub url: String,
    pub shards: usize,
    /// Players the node admits (--max-connections).
    pub capacity: usize,
    /// Players connected or holding a seat now.
    pub load: usize,
    /// Instances it runs.
    pub instances: usize,
    /// Accepting new players: not draining and not shedding load.
    pub healthy: bool,
    pub draining: bool,
}

impl NodeInfo {
    /// Can take one more new player.
    pub fn has_room(&self) -> bool {
        self.healthy && !self.draining && self.load < self.capacity
    }
}

/// A region as `GET /v1/regions` shows it: the sums of its nodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionInfo {
    pub name: String,
    pub nodes: usize,
    /// Where its nodes run (`--location`), distinct, sorted.
    pub locations: Vec<String>,
    /// Instances its nodes run.
    pub instances: usize,
    pub capacity: usize,
    pub load: usize,
    /// Some node of it has room.
    pub healthy: bool,
    /// Base URL of a node to probe for latency (its `/echo`).
    pub url: String,
    pub echo_url: String,
}

/// Regions by name, each the sum of its nodes.
pub fn regions(nodes: &[NodeInfo]) -> Vec<RegionInfo> {
    let mut names: Vec<&str> = nodes.iter().map(|n| n.region.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let of: Vec<&NodeInfo> = nodes.iter().filter(|n| n.region == name).collect();
            // Probe the node a player would be sent to, if any has room.
            let probe = least_loaded(nodes, name).unwrap_or(of[0]);
            let mut locations: Vec<String> = of.iter().map(|n| n.location.clone()).collect();
            locations.sort_unstable();
            locations.dedup();
            RegionInfo {
                name: name.to_owned(),
                nodes: of.len(),
                locations,
                instances: of.iter().map(|n| n.instances).sum(),
                capacity: of.iter().map(|n| n.capacity).sum(),
                load: of.iter().map(|n| n.load).sum(),
                healthy: of.iter().any(|n| n.has_room()),
                url: probe.url.clone(),
                echo_url: format!("{}/echo", probe.url),
            }
        })
        .collect()
}

/// The node of `region` with room and the fewest players (ties: by id, so
/// the answer is stable).
pub fn least_loaded<'a>(nodes: &'a [NodeInfo], region: &str) -> Option<&'a NodeInfo> {
    nodes
        .iter()
        .filter(|n| n.region == region && n.has_room())
        .min_by(|a, b| a.load.cmp(&b.load).then_with(|| a.id.cmp(&b.id)))
}

/// The node for a player who measured `latencies` (region, ms): the
/// nearest region with room, else the next nearest, and so on.
pub fn by_latencies<'a>(
    nodes: &'a [NodeInfo],
    latencies: &[(String, u32)],
) -> Option<&'a NodeInfo> {
    let mut order: Vec<&(String, u32)> = latencies.iter().collect();
    order.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    order.into_iter().find_map(|(r, _)| least_loaded(nodes, r))
}

/// Most regions a latencies query may list.
pub const LATENCIES_MAX: usize = 32;

/// Parses `eu:23,us:81` (region:milliseconds, comma-separated).
pub fn parse_latencies(s: &str) -> Result<Vec<(String, u32)>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (region, ms) = part
            .split_once(':')
            .ok_or_else(|| format!("{part:?}: expected region:ms"))?;
        let ms = ms
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("{part:?}: latency must be whole milliseconds"))?;
        if region.is_empty() {
            return Err(format!("{part:?}: empty region"));
        }
        out.push((region.to_owned(), ms));
    }
    if out.is_empty() {
        return Err("no region:ms pairs".into());
    }
    if out.len() > LATENCIES_MAX {
        return Err(format!("more than {LATENCIES_MAX} regions"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, region: &str, load: usize, capacity: usize) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            region: region.into(),
            location: String::new(),
            url: format!("ws://{id}"),
            shards: 1,
            capacity,
            load,
            instances: 0,
            healthy: true,
            draining: false,
        }
    }

    #[test]
    fn least_loaded_counts_players_and_skips_full_or_draining() {
        let mut nodes = vec![
            node("a", "eu", 5, 10),
            node("b", "eu", 2, 10),
            node("c", "us", 0, 10),
        ];
        assert_eq!(least_loaded(&nodes, "eu").unwrap().id, "b");
        nodes[1].draining = true;
        assert_eq!(least_loaded(&nodes, "eu").unwrap().id, "a");
        nodes[0].load = 10;
        assert_eq!(least_loaded(&nodes, "eu"), None);
        assert_eq!(least_loaded(&nodes, "asia"), None);
    }

    #[test]
    fn latencies_pick_the_nearest_region_with_room() {
        let mut nodes = vec![node("a", "eu", 1, 10), node("c", "us", 0, 10)];
        let lat = parse_latencies("us:81, eu:23").unwrap();
        assert_eq!(by_latencies(&nodes, &lat).unwrap().id, "a");
        nodes[0].load = 10;
        assert_eq!(by_latencies(&nodes, &lat).unwrap().id, "c");
        nodes[1].healthy = false;
        assert_eq!(by_latencies(&nodes, &lat), None);
    }

    #[test]
    fn regions_sum_their_nodes() {
        let mut nodes = vec![
            node("a", "eu", 1, 10),
            node("b", "eu", 3, 20),
            node("c", "us", 0, 5),
        ];
        nodes[0].instances = 2;
        nodes[1].instances = 5;
        nodes[0].location = "eu-west-1b".into();
        nodes[1].location = "eu-west-1a".into();
        let r = regions(&nodes);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].name.as_str(), r[0].capacity, r[0].load, r[0].instances),
            ("eu", 30, 4, 7)
        );
        assert_eq!(r[0].locations, ["eu-west-1a", "eu-west-1b"]);
        assert_eq!(r[0].echo_url, "ws://a/echo");
        assert!(r[1].healthy);
    }

    #[test]
    fn bad_latencies_are_refused() {
        assert!(parse_latencies("").is_err());
        assert!(parse_latencies("eu").is_err());
        assert!(parse_latencies("eu:x").is_err());
        assert!(parse_latencies(":3").is_err());
        assert_eq!(parse_latencies("eu:1").unwrap(), vec![("eu".into(), 1)]);
    }
}
