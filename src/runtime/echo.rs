//! `/echo`: every message comes back unchanged. Clients use it to measure
//! their latency to a region before choosing one; the conformance suite
//! (Autobahn) uses it too. Same limits as /play (payload, timeouts).
//!
//! The shard answers the upgrade, then hands the socket to its echo worker
//! ([`echo_worker`](crate::net::echo_worker)): a plain epoll thread on the
//! shard's own core that reads, answers every complete frame
//! ([`echo_frames`](crate::net::echo_frames)) and writes, one read and one
//! write per batch of frames. Below saturation an echo is one message per
//! wake-up, and a wake-up of the shard's executor costs more than the
//! message (the worker's module documentation has the numbers). The shard
//! keeps admission (the permit travels with the socket) and its metrics:
//! [`collect`] folds in what the worker reports.
//!
//! /echo never hands its socket to another shard (only `/play?instance=…`
//! is routed, before the upgrade), and nothing reads it after the upgrade
//! but the worker.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::handshake::machine::TryParse;
use async_tungstenite::tungstenite::handshake::server::{create_response, write_response, Request};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use super::Shard;
use crate::net::admission::ConnPermit;
use crate::net::echo_conn::Adoption;
use crate::net::echo_frames::push_close;
use crate::net::echo_worker::{Report, Totals, Worker};
use crate::net::http;
use crate::protocol::close::CloseReason;
use crate::util::time::until;

/// How often the shard folds the worker's message and write counts into
/// its metrics (closes are folded as soon as the worker reports them).
const FOLD_INTERVAL: Duration = Duration::from_secs(1);

/// Time allowed to tell a client the connection cannot be served (1013).
const REFUSE_TIMEOUT: Duration = Duration::from_secs(1);

thread_local! {
    // One executor per thread (thread-per-core): this is per shard. Started
    // with the shard's first /echo connection; dropped (worker stopped, its
    // connections closed with 1001) when the shard's thread ends.
    static WORKER: RefCell<Option<Rc<Worker>>> = const { RefCell::new(None) };
}

/// Upgrades (the head was read by the listener: `read[..head_len]`, and any
/// bytes after it are the client's first frames) and hands the connection
/// to the shard's echo worker.
pub async fn run(
    shard: Rc<Shard>,
    mut stream: TcpStream,
    read: Vec<u8>,
    head_len: usize,
    deadline: Instant,
    permit: ConnPermit,
) {
    // The handshake is boxed: it runs once, and inline it would size this
    // task for its whole life (see `listener::handle_accepted`).
    let response = match handshake_response(&read[..head_len]) {
        Ok(r) => r,
        Err(why) => {
            shard.metrics.handshakes_failed.inc();
            let bytes = http::response(400, "Bad Request", &format!("{why}\n"));
            let _ = Box::pin(until(deadline, stream.write_all(&bytes))).await;
            return;
        }
    };
    if !matches!(
        Box::pin(until(deadline, stream.write_all(&response))).await,
        Some(Ok(()))
    ) {
        shard.metrics.handshakes_failed.inc();
        return;
    }
    let cfg = shard.cfg();
    let adoption = |fd| Adoption {
        fd,
        first: read[head_len..].to_vec(),
        permit,
        payload_bytes_max: cfg.max_payload_bytes,
        silent_max: cfg.heartbeat * 2,
    };
    // glommio's stream gives up no fd: the worker gets a duplicate and the
    // shard's handle is closed, so the worker's is the socket's only one.
    let handed = match (dup(&stream), worker(&shard)) {
        (Ok(fd), Some(w)) => w.adopt(adoption(fd)).is_ok(),
        _ => false,
    };
    if handed {
        shard.metrics.connections_open.inc();
        return;
    }
    // Out of file descriptors, or no worker thread: a defined refusal.
    let reason = CloseReason::TryAgainLater;
    let mut close = Vec::new();
    push_close(&mut close, reason.code(), reason.label());
    let _ = Box::pin(until(
        Instant::now() + REFUSE_TIMEOUT,
        stream.write_all(&close),
    ))
    .await;
    shard.metrics.closed(reason);
}

/// The 101 answer to an upgrade request, by tungstenite's rules (method,
/// version, `Upgrade`, `Connection`, `Sec-WebSocket-Version: 13`, a valid
/// key).
fn handshake_response(head: &[u8]) -> Result<Vec<u8>, String> {
    let request = match Request::try_parse(head) {
        Ok(Some((_, request))) => request,
        Ok(None) => return Err("incomplete request head".into()),
        Err(e) => return Err(e.to_string()),
    };
    let response = create_response(&request).map_err(|e| e.to_string())?;
    let mut bytes = Vec::with_capacity(256);
    write_response(&mut bytes, &response).map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn dup(stream: &TcpStream) -> std::io::Result<OwnedFd> {
    // SAFETY: duplicates an open socket; the new fd is checked and owned once.
    let fd = unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The shard's worker, started (with its collector) on first use; `None`
/// when its thread cannot be started (logged).
fn worker(shard: &Rc<Shard>) -> Option<Rc<Worker>> {
    WORKER.with(|slot| {
        let mut slot = slot.borrow_mut();
        if let Some(w) = slot.as_ref() {
            return Some(w.clone());
        }
        let w = match Worker::spawn(format!("echo-{}", shard.id)) {
            Ok(w) => Rc::new(w),
            Err(e) => {
                tracing::error!(shard = shard.id, error = %e, "cannot start the /echo worker");
                return None;
            }
        };
        let task = collect(shard.clone(), w.report.clone());
        glommio::spawn_local_into(task, shard.queues.background)
            .expect("the background queue exists")
            .detach();
        *slot = Some(w.clone());
        Some(w)
    })
}

/// Folds the worker's report into the shard's metrics: closes as soon as
/// they are reported, counts every [`FOLD_INTERVAL`].
async fn collect(shard: Rc<Shard>, report: Arc<Report>) {
    let mut seen = Totals::default();
    let mut closed = Vec::new();
    loop {
        let closes = std::future::poll_fn(|cx| report.poll_closed(cx));
        futures_lite::future::or(closes, glommio::timer::sleep(FOLD_INTERVAL)).await;
        let m = &shard.metrics;
        let now = report.totals();
        let messages = now.messages - seen.messages;
        let bytes = now.payload_bytes - seen.payload_bytes;
        m.messages_in.add(messages);
        m.messages_out.add(messages);
        m.bytes_in.add(bytes);
        m.bytes_out.add(bytes);
        m.socket_writes.add(now.socket_writes - seen.socket_writes);
        seen = now;
        report.take_closed(&mut closed);
        for reason in closed.drain(..) {
            m.closed(reason);
            m.connections_open.dec();
        }
    }
}
