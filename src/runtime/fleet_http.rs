//! The directory's answers on the game listener: `GET /v1/regions`,
//! `GET /v1/route?instance=ID|region=R|latencies=eu:23,us:81`, and the
//! answer to `/play?instance=ID` when another node owns that instance (an
//! upgrade, then `Error(WrongNode)` whose message is the owner's URL).

use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::Shard;
use crate::directory::route::parse_latencies;
use crate::directory::{RouteQuery, ToAgent};
use crate::game::InstanceId;
use crate::protocol::{Encoder, ErrorCode};
use crate::util::time::until;
use crate::util::ws;

/// How long a redirected client is given to read its answer and close.
const REDIRECT_LINGER: Duration = Duration::from_secs(1);

/// Answers a `/v1/…` request (`target` is the path and query).
pub async fn serve<S: futures_lite::AsyncWrite + Unpin>(
    shard: &Shard,
    stream: &mut S,
    target: &str,
) {
    let (status, body) = answer(shard, target).await;
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let body = serde_json::to_vec(&body).expect("JSON");
    let bytes = crate::net::http::response_with(status, reason, "application/json", &body);
    let _ = stream.write_all(&bytes).await;
    let _ = stream.close().await;
}

async fn answer(shard: &Shard, target: &str) -> (u16, serde_json::Value) {
    let Some(dir) = shard.node.directory.as_ref() else {
        return (
            404,
            serde_json::json!({"error": "this node runs standalone (no --directory)"}),
        );
    };
    let query = match parse(target) {
        Ok(q) => q,
        Err((status, e)) => return (status, serde_json::json!({ "error": e })),
    };
    dir.ask(|reply| ToAgent::Route { query, reply })
        .await
        .unwrap_or_else(|| {
            (
                503,
                serde_json::json!({"error": "the directory did not answer in time"}),
            )
        })
}

/// `/v1/regions` or `/v1/route?…` → the query. Pure.
pub fn parse(target: &str) -> Result<RouteQuery, (u16, String)> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let param = |key: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| {
                v.replace("%3A", ":")
                    .replace("%3a", ":")
                    .replace("%2C", ",")
                    .replace("%2c", ",")
            })
    };
    match path {
        "/v1/regions" => Ok(RouteQuery::Regions),
        "/v1/route" => {
            if let Some(id) = param("instance") {
                return InstanceId::parse(&id)
                    .map(RouteQuery::Instance)
                    .map_err(|e| (400, e.to_string()));
            }
            if let Some(r) = param("region") {
                return Ok(RouteQuery::Region(r));
            }
            if let Some(l) = param("latencies") {
                return parse_latencies(&l)
                    .map(RouteQuery::Latencies)
                    .map_err(|e| (400, e));
            }
            Err((
                400,
                "use ?instance=ID, ?region=R or ?latencies=eu:23,us:81".into(),
            ))
        }
        _ => Err((404, "directory endpoints: /v1/regions, /v1/route".into())),
    }
}

/// Upgrades, sends `Error(WrongNode, url)`, and closes (1000): the client
/// connects to `url` instead. Written in one go on the accepting task (the
/// connection never reaches the driver).
pub async fn redirect(
    shard: &Shard,
    mut stream: TcpStream,
    head: &[u8],
    deadline: Instant,
    instance: &InstanceId,
    url: &str,
) {
    let Ok(mut bytes) = crate::net::http::upgrade_response(head) else {
        shard.metrics.handshakes_failed.inc();
        let reply =
            crate::net::http::response(400, "Bad Request", "expected a WebSocket upgrade\n");
        let _ = until(deadline, stream.write_all(&reply)).await;
        return;
    };
    let mut enc = Encoder::new();
    ws::push_server_frame(
        &mut bytes,
        ws::OPCODE_BINARY,
        enc.error(ErrorCode::WrongNode, url),
    );
    ws::push_close(&mut bytes, 1000, "instance is on another node");
    shard.metrics.errors_sent.inc();
    tracing::debug!(instance = %instance, owner = url, "instance owned by another node: client pointed there");
    let bound = Instant::now() + REDIRECT_LINGER;
    if until(bound, stream.write_all(&bytes)).await.is_none() {
        return;
    }
    // Read (and drop) until the client's close and the end of the stream.
    let _ = until(bound, async {
        let mut sink = [0u8; DRAIN_CHUNK_BYTES];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Bytes read at a time while draining a redirected client (stack buffer).
const DRAIN_CHUNK_BYTES: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse() {
        assert_eq!(parse("/v1/regions"), Ok(RouteQuery::Regions));
        assert_eq!(
            parse("/v1/route?instance=a-1"),
            Ok(RouteQuery::Instance(InstanceId::parse("a-1").unwrap()))
        );
        assert_eq!(
            parse("/v1/route?region=eu"),
            Ok(RouteQuery::Region("eu".into()))
        );
        assert_eq!(
            parse("/v1/route?latencies=eu%3A23%2Cus:81"),
            Ok(RouteQuery::Latencies(vec![
                ("eu".into(), 23),
                ("us".into(), 81)
            ]))
        );
        assert_eq!(parse("/v1/route").unwrap_err().0, 400);
        assert_eq!(parse("/v1/route?instance=a/b").unwrap_err().0, 400);
        assert_eq!(parse("/v1/nope").unwrap_err().0, 404);
    }
}
