//! What each admin endpoint answers.

use serde_json::{json, Value};

use crate::admin::gather::{self, AdminState};
use crate::admin::{Request, Response};
use crate::game::InstanceId;
use crate::metrics::histograms::HistName;
use crate::metrics::prometheus;
use crate::metrics::report::{encode_histogram, NodeStats};
use crate::runtime::{MeshMsg, Shard};
use crate::shard::mesh::{RuntimeSettings, ShardMsg};

/// Keys POST /config accepts, and the ones it refuses with a reason.
const SAFE_KEYS: [&str; 4] = [
    "max_connections",
    "heartbeat_ms",
    "players_per_instance_max",
    "log_level",
];

pub async fn route(shard: &Shard, state: &AdminState, req: Request) -> Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/metrics") => {
            let (stats, _) = gather::node_stats(shard, state, true, gather::ADMIN_READ_TIMEOUT).await;
            let mut text = prometheus::render(&stats);
            stuck_metrics(&mut text, shard);
            if let Some(dir) = &shard.node.directory {
                text.push_str(&dir.metrics.render(&stats.node_id));
            }
            let mut r = Response::text(200, text);
            r.content_type = "text/plain; version=0.0.4; charset=utf-8";
            r
        }
        ("GET", "/health") => {
            let h = state.health.borrow().clone();
            // The watchdog's view is live, not from the last evaluation.
            let stuck = gather::stuck_shards(shard);
            let healthy = h.healthy && stuck.is_empty();
            let reason = match stuck.first() {
                Some(s) => s.to_string(),
                None => h.reason,
            };
            let body = json!({
                "healthy": healthy,
                "reason": reason,
                "evaluated_s_ago": h.evaluated_at.elapsed().as_secs_f64(),
                "stuck_shards": stuck,
            });
            Response::json(if healthy { 200 } else { 503 }, &body)
        }
        ("GET", "/ready") => {
            let (stats, missing) = gather::node_stats(shard, state, false, gather::ADMIN_READ_TIMEOUT).await;
            let stuck = gather::stuck_shards(shard);
            let mut reasons: Vec<String> = stuck.iter().map(|s| s.to_string()).collect();
            let missing: Vec<usize> = missing
                .into_iter()
                .filter(|m| !stuck.iter().any(|s| s.shard == *m))
                .collect();
            reasons.extend(not_ready_reasons(&stats, &missing, state));
            let body = json!({ "ready": reasons.is_empty(), "reasons": reasons, "stuck_shards": stuck });
            Response::json(if reasons.is_empty() { 200 } else { 503 }, &body)
        }
        ("GET", "/stats") => {
            let with_instances = req.query_param("instances") == Some("1");
            let (stats, missing) = gather::node_stats(shard, state, with_instances, gather::ADMIN_READ_TIMEOUT).await;
            let mut v = stats.to_json();
            v["missing_shards"] = json!(missing);
            Response::json(200, &v)
        }
        ("GET", "/instances") => {
            let (stats, _) = gather::node_stats(shard, state, true, gather::ADMIN_READ_TIMEOUT).await;
            let list: Vec<_> = stats
                .shards
                .iter()
                .flat_map(|s| s.instance_list.iter())
                .collect();
            Response::json(200, &json!({ "instances": list }))
        }
        ("GET", path) if path.starts_with("/instances/") => {
            let raw = &path["/instances/".len()..];
            let Ok(id) = InstanceId::parse(raw) else {
                return Response::json(400, &json!({"error": format!("bad instance id {raw:?}")}));
            };
            match gather::instance_detail(shard, &id).await {
                Some(d) => Response::json(200, &serde_json::to_value(d).expect("serialize")),
                None => Response::json(404, &json!({"error": format!("no instance {id}")})),
            }
        }
        ("GET", "/histograms") => histograms(shard, state, &req).await,
        ("GET", "/fleet") => fleet(shard).await,
        ("GET", path) if crate::web::admin_asset(path).is_some() => {
            let page = crate::web::admin_asset(path).expect("checked");
            Response {
                status: 200,
                content_type: page.content_type,
                body: page.body.to_vec(),
                extra_headers: vec![("X-Content-Type-Options", "nosniff".into())],
            }
        }
        ("POST", "/config") => configure(shard, &req),
        ("POST", "/drain") => drain(shard, state, true).await,
        ("GET", "/drain") => drain(shard, state, false).await,
        (_, "/metrics" | "/health" | "/ready" | "/stats" | "/instances" | "/histograms" | "/fleet") => {
            Response::text(405, "use GET\n")
        }
        (_, "/config") => Response::text(405, "use POST with a JSON object\n"),
        _ => Response::text(
            404,
            "endpoints: GET /metrics /health /ready /stats /instances /instances/{id} /histograms?shard=N&name=.. /fleet; POST /config /drain\n",
        ),
    }
}

/// `GET /fleet`: this node's view of its fleet (regions and live nodes,
/// as of the last directory heartbeat), or `{"directory": null}` for a
/// standalone node.
async fn fleet(shard: &Shard) -> Response {
    let Some(dir) = &shard.node.directory else {
        return Response::json(200, &json!({ "directory": null }));
    };
    let query = crate::directory::RouteQuery::Fleet;
    match dir
        .ask(|reply| crate::directory::ToAgent::Route { query, reply })
        .await
    {
        Some((status, mut body)) => {
            body["directory"] = json!("redis");
            Response::json(status, &body)
        }
        None => Response::json(
            503,
            &json!({"error": "the directory agent did not answer in time"}),
        ),
    }
}

/// `shardline_shard_stuck{shard, instance}`: 1 while the watchdog sees the
/// shard stuck, with the instance it was stepping.
fn stuck_metrics(out: &mut String, shard: &Shard) {
    use std::fmt::Write;
    let stuck = gather::stuck_shards(shard);
    let _ = writeln!(
        out,
        "# HELP shardline_shard_stuck 1 while the watchdog sees the shard stuck (no tick finished for --stuck-shard-ms), with the instance it was stepping"
    );
    let _ = writeln!(out, "# TYPE shardline_shard_stuck gauge");
    for id in 0..shard.shards {
        match stuck.iter().find(|s| s.shard == id) {
            Some(s) => {
                let instance = s
                    .instance
                    .as_deref()
                    .unwrap_or("")
                    .replace(['"', '\\', '\n'], "_");
                let _ = writeln!(
                    out,
                    "shardline_shard_stuck{{shard=\"{id}\",instance=\"{instance}\"}} 1"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "shardline_shard_stuck{{shard=\"{id}\",instance=\"\"}} 0"
                );
            }
        }
    }
}

fn not_ready_reasons(stats: &NodeStats, missing: &[usize], state: &AdminState) -> Vec<String> {
    let mut reasons = Vec::new();
    if stats.draining {
        reasons.push("draining".to_owned());
    }
    for s in stats.shards.iter().filter(|s| s.shedding) {
        reasons.push(format!(
            "shard {} is shedding load (ticks late or CPU over the threshold)",
            s.shard
        ));
    }
    if !missing.is_empty() {
        reasons.push(format!("shards {missing:?} are not answering"));
    }
    let h = state.health.borrow();
    if !h.healthy {
        reasons.push(format!("unhealthy: {}", h.reason));
    }
    reasons
}

async fn histograms(shard: &Shard, state: &AdminState, req: &Request) -> Response {
    let (stats, missing) =
        gather::node_stats(shard, state, false, gather::ADMIN_READ_TIMEOUT).await;
    let shard_sel = req.query_param("shard").unwrap_or("all");
    let names: Vec<HistName> = match req.query_param("name") {
        Some(n) => match HistName::parse(n) {
            Some(h) => vec![h],
            None => {
                let known: Vec<_> = HistName::ALL.iter().map(|h| h.as_str()).collect();
                return Response::json(
                    400,
                    &json!({"error": format!("unknown histogram {n:?}"), "known": known}),
                );
            }
        },
        None => HistName::ALL.to_vec(),
    };
    let mut out = serde_json::Map::new();
    for name in &names {
        let h = if shard_sel == "all" {
            stats.merged(*name)
        } else {
            let n = match shard_sel.parse::<usize>() {
                Ok(n) if n < shard.shards => n,
                _ => {
                    return Response::json(
                        400,
                        &json!({"error": format!("no shard {shard_sel:?}: use 0..{} or all", shard.shards)}),
                    )
                }
            };
            let Some(s) = stats.shards.iter().find(|s| s.shard == n) else {
                debug_assert!(missing.contains(&n));
                return Response::json(
                    503,
                    &json!({"error": format!(
                        "shard {n} did not answer within {:?}",
                        gather::ADMIN_READ_TIMEOUT
                    )}),
                );
            };
            s.histogram(*name)
                .cloned()
                .unwrap_or_else(crate::metrics::histograms::new_histogram)
        };
        out.insert(name.as_str().into(), Value::String(encode_histogram(&h)));
    }
    if req.query_param("name").is_some() {
        let (_, v) = out.into_iter().next().expect("one histogram");
        let mut r = Response::text(200, v.as_str().unwrap_or_default().to_owned() + "\n");
        r.extra_headers.push((
            "X-Histogram-Encoding",
            "hdrhistogram-v2-deflate-base64; unit=us".into(),
        ));
        return r;
    }
    Response::json(
        200,
        &json!({ "shard": shard_sel, "encoding": "hdrhistogram-v2-deflate-base64", "unit": "us", "histograms": out }),
    )
}

fn configure(shard: &Shard, req: &Request) -> Response {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) else {
        return Response::json(
            400,
            &json!({"error": "body must be a JSON object, e.g. {\"max_connections\": 5000}"}),
        );
    };
    let refused: Vec<String> = body
        .keys()
        .filter(|k| !SAFE_KEYS.contains(&k.as_str()))
        .map(|k| format!("{k}: cannot change at run time (restart the node with the new flag); changeable: {}", SAFE_KEYS.join(", ")))
        .collect();
    if !refused.is_empty() {
        return Response::json(400, &json!({"error": "refused", "refused": refused}));
    }
    let positive = |k: &str| -> Result<Option<u64>, String> {
        match body.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| format!("{k} must be a positive integer")),
        }
    };
    let parsed = (|| -> Result<_, String> {
        Ok((
            positive("max_connections")?,
            positive("heartbeat_ms")?,
            positive("players_per_instance_max")?,
            match body.get("log_level") {
                None => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err("log_level must be a string".into()),
            },
        ))
    })();
    let (max_conn, heartbeat_ms, ppi, log_level) = match parsed {
        Ok(v) => v,
        Err(e) => return Response::json(400, &json!({ "error": e })),
    };
    if let Some(ppi) = ppi {
        let needed = crate::config::state_update_bytes_max(ppi as usize);
        if needed > shard.cfg().write_buffer_bytes {
            return Response::json(
                400,
                &json!({"error": format!(
                "players_per_instance_max {ppi} needs {needed}-byte updates; --write-buffer-bytes is {}", shard.cfg().write_buffer_bytes)}),
            );
        }
    }
    if let Some(level) = &log_level {
        if let Err(e) = crate::util::logging::set_log_filter(level) {
            return Response::json(400, &json!({ "error": format!("log_level: {e}") }));
        }
    }
    if let Some(n) = max_conn {
        shard.node.budget.set_limit(n as usize);
    }
    let mut settings = shard.core.borrow().settings;
    if let Some(ms) = heartbeat_ms {
        settings.heartbeat = std::time::Duration::from_millis(ms);
    }
    if let Some(n) = ppi {
        settings.players_per_instance_max = n as usize;
    }
    apply_everywhere(shard, settings);
    tracing::info!(
        ?max_conn,
        ?heartbeat_ms,
        ?ppi,
        ?log_level,
        "configuration changed at run time"
    );
    Response::json(
        200,
        &json!({
            "max_connections": shard.node.budget.limit(),
            "heartbeat_ms": settings.heartbeat.as_millis() as u64,
            "players_per_instance_max": settings.players_per_instance_max,
            "log_level": log_level,
        }),
    )
}

fn apply_everywhere(shard: &Shard, settings: RuntimeSettings) {
    shard.core.borrow_mut().settings = settings;
    for to in (0..shard.shards).filter(|&s| s != shard.id) {
        shard.send_mesh(to, MeshMsg::Core(ShardMsg::Configure(settings)));
    }
}

async fn drain(shard: &Shard, state: &AdminState, start: bool) -> Response {
    if start && !shard.core.borrow().draining {
        tracing::info!("drain requested: no new placements; running games go on");
        shard.core.borrow_mut().draining = true;
        for to in (0..shard.shards).filter(|&s| s != shard.id) {
            shard.send_mesh(to, MeshMsg::Core(ShardMsg::Drain));
        }
    }
    let (stats, _) = gather::node_stats(shard, state, false, gather::ADMIN_READ_TIMEOUT).await;
    let players: usize = stats
        .shards
        .iter()
        .map(|s| s.players_connected + s.seats_detached)
        .sum();
    Response::json(
        if start { 202 } else { 200 },
        &json!({ "draining": stats.draining || start, "players": players, "empty": players == 0 }),
    )
}
