//! The directory's answers on the game listener: `GET /v1/regions`,
//! `GET /v1/route?instance=ID|region=R|latencies=eu:23,us:81`, and the
//! answer to `/play?instance=ID` when another node owns that instance (an
//! upgrade, then `Error(WrongNode)` whose message is the owner's URL).

use std::rc::Rc;
use std::time::Instant;

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::Message;
use futures_lite::AsyncWriteExt;

use super::route::parse_latencies;
use super::{RouteQuery, ToAgent};
use crate::game::InstanceId;
use crate::net::listener::{until, ws_config};
use crate::protocol::ErrorCode;
use crate::shard::Shard;

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
/// connects to `url` instead.
pub async fn redirect<S>(
    shard: Rc<Shard>,
    stream: S,
    deadline: Instant,
    instance: &InstanceId,
    url: &str,
) where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let upgrade = async_tungstenite::accept_async_with_config(stream, Some(ws_config(&shard)));
    let Some(Ok(mut ws)) = until(deadline, upgrade).await else {
        shard.metrics.handshakes_failed.inc();
        return;
    };
    let bytes = shard
        .enc
        .borrow_mut()
        .error(ErrorCode::WrongNode, url)
        .to_vec();
    shard.metrics.errors_sent.inc();
    tracing::debug!(instance = %instance, owner = url, "instance owned by another node: client pointed there");
    let close = CloseFrame {
        code: CloseCode::Normal,
        reason: "instance is on another node".into(),
    };
    let bound = Instant::now() + std::time::Duration::from_secs(1);
    let _ = until(bound, async {
        ws.send(Message::binary(bytes)).await?;
        ws.close(Some(close)).await
    })
    .await;
    let _ = until(bound, crate::net::session::drain_frames(&mut ws)).await;
}

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
