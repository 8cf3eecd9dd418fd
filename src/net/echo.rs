//! `/echo`: every message comes back unchanged. Clients use it to measure
//! their latency to a region before choosing one; the conformance suite
//! (Autobahn) uses it too. Same limits as /play (payload, timeouts).

use std::rc::Rc;
use std::time::Instant;

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_util::StreamExt;
use glommio::net::TcpStream;

use crate::net::admission::ConnPermit;
use crate::net::close::CloseReason;
use crate::net::fenced::Fenced;
use crate::net::listener::{until, ws_config};
use crate::shard::Shard;

pub async fn run(
    shard: Rc<Shard>,
    stream: Fenced<TcpStream>,
    deadline: Instant,
    _permit: ConnPermit,
) {
    let upgrade = async_tungstenite::accept_async_with_config(stream, Some(ws_config(&shard)));
    let mut ws = match until(deadline, upgrade).await {
        Some(Ok(ws)) => ws,
        _ => {
            shard.metrics.handshakes_failed.inc();
            return;
        }
    };
    shard.metrics.connections_open.inc();
    // An echo peer must talk at least every two heartbeat intervals.
    let silent_max = shard.cfg().heartbeat * 2;
    let mut in_a_row = 0u32;
    let reason = loop {
        // A flood of messages is all Ready at once: yield now and then so
        // the shard's tick and other sessions run (see session.rs).
        in_a_row += 1;
        if in_a_row >= crate::net::session::MESSAGES_PER_YIELD {
            in_a_row = 0;
            futures_lite::future::yield_now().await;
        }
        let next = until(Instant::now() + silent_max, ws.next()).await;
        match next {
            None => break CloseReason::HeartbeatTimeout,
            Some(None) => break CloseReason::Vanished,
            Some(Some(Ok(msg))) => {
                shard.metrics.messages_in.inc();
                match msg {
                    Message::Binary(_) | Message::Text(_) => {
                        shard.metrics.bytes_in.add(msg.len() as u64);
                        shard.metrics.bytes_out.add(msg.len() as u64);
                        shard.metrics.messages_out.inc();
                        if ws.send(msg).await.is_err() {
                            break CloseReason::Vanished;
                        }
                    }
                    Message::Close(_) => {
                        // tungstenite answered it; read to the end so the
                        // close handshake completes.
                        crate::net::session::drain_frames(&mut ws).await;
                        break CloseReason::Normal;
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
            Some(Some(Err(e))) => {
                let code = match e {
                    WsError::Capacity(_) => CloseReason::MessageTooBig,
                    WsError::Utf8(_) => {
                        close_with(&mut ws, CloseCode::Invalid, "invalid utf-8").await;
                        break CloseReason::ProtocolError;
                    }
                    WsError::Protocol(_) => CloseReason::ProtocolError,
                    _ => break CloseReason::Vanished,
                };
                close_with(&mut ws, CloseCode::from(code.code()), code.label()).await;
                break code;
            }
        }
    };
    if reason == CloseReason::HeartbeatTimeout {
        close_with(&mut ws, CloseCode::from(reason.code()), reason.label()).await;
    }
    shard.metrics.closed(reason);
    shard.metrics.connections_open.dec();
}

async fn close_with<S>(ws: &mut async_tungstenite::WebSocketStream<S>, code: CloseCode, why: &str)
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: why.to_owned().into(),
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(1);
    if let Some(Ok(())) = until(deadline, ws.close(Some(frame))).await {
        let _ = until(deadline, async {
            crate::net::session::drain_frames(ws).await
        })
        .await;
    }
}
