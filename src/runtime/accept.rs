//! Accepting connections: admission, reading the upgrade request head,
//! routing the raw socket to the shard that owns the instance it names —
//! before the WebSocket upgrade, so no byte the client sent is lost — and
//! the upgrade itself: the 101 answer is the first thing the shard's I/O
//! driver writes, so from then on the driver is the socket's only writer.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use super::{echo, MeshMsg, Shard};
use crate::game::shard_for;
use crate::metrics::HistName;
use crate::net::admission::ConnPermit;
use crate::net::http::{self, HeadError, RequestHead, Route};
pub use crate::util::time::until;

/// Pause after a failed accept (e.g. EMFILE at the fd limit) so a full
/// process does not spin; connections wait in the kernel backlog meanwhile.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(20);

/// Bytes read per call while waiting for the request head.
const HEAD_READ_CHUNK_BYTES: usize = 1024;

pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    let beat = &shard.node.beats.shards[shard.id];
    let removals = beat.removals();
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(_) if beat.removals() != removals => {
                // The watchdog stopped this listener while the shard was
                // stuck; a new one is made when the shard recovers.
                tracing::info!(
                    shard = shard.id,
                    "accept loop ended: the listener left the group"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(shard = shard.id, error = %e, "accept failed; backing off");
                glommio::timer::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let accepted_at = Instant::now();
        shard.metrics.connections_accepted.inc();
        let permit = shard.node.budget.try_admit();
        let task = handle_accepted(shard.clone(), stream, permit, accepted_at);
        // What every open connection's task costs, before its heap parts.
        tracing::trace!(
            bytes = std::mem::size_of_val(&task),
            "connection task future"
        );
        glommio::spawn_local_into(task, shard.queues.io)
            .expect("io task queue exists")
            .detach();
    }
}

/// A socket handed over by the shard that accepted it: `head` holds every
/// byte it read (the request head and anything after it).
pub async fn handle_handoff(
    shard: Rc<Shard>,
    fd: OwnedFd,
    head: Vec<u8>,
    accepted_at: Instant,
    permit: ConnPermit,
) {
    shard.metrics.handoffs_in.inc();
    // SAFETY: the fd is an open, connected TCP socket, owned by `fd` and
    // given up here; glommio's stream becomes its only owner.
    let stream = unsafe { TcpStream::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
    let parsed = match http::parse_head(&head, shard.cfg().http_head_bytes_max) {
        Ok(Some(h)) => h,
        _ => return, // the sending shard parsed it; cannot happen
    };
    serve_play(shard, stream, head, parsed, permit, accepted_at).await;
}

enum Next {
    Done,
    Echo {
        stream: TcpStream,
        read: Vec<u8>,
        head_len: usize,
        permit: ConnPermit,
    },
    Play {
        stream: TcpStream,
        read: Vec<u8>,
        head: RequestHead,
        permit: ConnPermit,
    },
}

/// One accepted connection, from its head to its close. A task's future is
/// as large as its largest state and lives as long as the connection, so
/// the phases that end early (reading the head, refusals) or that only some
/// connections reach (/play) are boxed: an idle /echo connection's task
/// holds only the echo state. `--max-connections` of them: every byte here
/// is paid that many times.
async fn handle_accepted(
    shard: Rc<Shard>,
    stream: TcpStream,
    permit: Option<ConnPermit>,
    accepted_at: Instant,
) {
    let deadline = accepted_at + shard.cfg().connect_timeout;
    match Box::pin(admit(&shard, stream, permit, accepted_at)).await {
        Next::Done => {}
        Next::Echo {
            stream,
            read,
            head_len,
            permit,
        } => echo::run(shard, stream, read, head_len, deadline, permit).await,
        Next::Play {
            stream,
            read,
            head,
            permit,
        } => Box::pin(serve_play(shard, stream, read, head, permit, accepted_at)).await,
    }
}

/// Rate limit, request head, origin, pages and 404, the connection budget,
/// routing to the owner shard.
async fn admit(
    shard: &Rc<Shard>,
    mut stream: TcpStream,
    permit: Option<ConnPermit>,
    accepted_at: Instant,
) -> Next {
    let _ = stream.set_nodelay(true);
    if let (Some(limiter), Ok(peer)) = (shard.handshake_limiter.as_ref(), stream.peer_addr()) {
        if !limiter.borrow_mut().admit(peer.ip(), accepted_at) {
            shard.metrics.refused_rate_limited.inc();
            reply_and_close(
                &mut stream,
                429,
                "Too Many Requests",
                "too many connections from your address (--handshakes-per-ip-per-s)\n",
            )
            .await;
            return Next::Done;
        }
    }
    let deadline = accepted_at + shard.cfg().connect_timeout;
    let (buf, head) = match until(
        deadline,
        read_head(&mut stream, shard.cfg().http_head_bytes_max),
    )
    .await
    {
        None => {
            shard.metrics.handshakes_failed.inc();
            return Next::Done; // connect timeout: dropped
        }
        Some(Err(e)) => {
            shard.metrics.handshakes_failed.inc();
            let (status, reason) = match &e {
                HeadError::TooLarge(_) => (431, "Request Header Fields Too Large"),
                HeadError::BadInstance(_) | HeadError::Malformed(_) => (400, "Bad Request"),
            };
            reply_and_close(&mut stream, status, reason, &e.to_string()).await;
            return Next::Done;
        }
        Some(Ok(v)) => v,
    };
    if let (Some(allowed), Some(origin)) = (&shard.cfg().allowed_origins, &head.origin) {
        if !allowed.iter().any(|a| a == origin) {
            shard.metrics.refused_origin.inc();
            reply_and_close(&mut stream, 403, "Forbidden", "origin not allowed\n").await;
            return Next::Done;
        }
    }
    if let Route::Other(path) = &head.route {
        if path.starts_with("/v1/") {
            super::fleet_http::serve(shard, &mut stream, path).await;
            return Next::Done;
        }
        match crate::web::game_asset(path).filter(|_| !head.is_websocket) {
            Some(page) => {
                let bytes = http::response_with(200, "OK", page.content_type, page.body);
                let _ = stream.write_all(&bytes).await;
                let _ = stream.close().await;
            }
            None => {
                shard.metrics.not_found.inc();
                reply_and_close(
                    &mut stream,
                    404,
                    "Not Found",
                    "no such endpoint; try /play, /echo or / (the demo)\n",
                )
                .await;
            }
        }
        return Next::Done;
    }
    let Some(permit) = permit else {
        shard.metrics.refused_max_connections.inc();
        reply_and_close(
            &mut stream,
            503,
            "Service Unavailable",
            "server is at --max-connections; retry later\n",
        )
        .await;
        return Next::Done;
    };
    if !head.is_websocket {
        shard.metrics.handshakes_failed.inc();
        reply_and_close(
            &mut stream,
            400,
            "Bad Request",
            "expected a WebSocket upgrade\n",
        )
        .await;
        return Next::Done;
    }
    match head.route {
        Route::Echo => Next::Echo {
            stream,
            head_len: head.len,
            read: buf,
            permit,
        },
        Route::Play { instance } => {
            if let (Some(dir), Some(id)) = (&shard.node.directory, &instance) {
                // The fleet's owner of this instance, claimed for this node
                // when nobody runs it (so two nodes never both create it).
                match dir.place(id.clone(), shard.may_create_instances()).await {
                    crate::directory::Claim::Mine => {}
                    crate::directory::Claim::Elsewhere { url, .. } => {
                        super::fleet_http::redirect(
                            shard,
                            stream,
                            &buf[..head.len],
                            deadline,
                            id,
                            &url,
                        )
                        .await;
                        return Next::Done;
                    }
                    crate::directory::Claim::Unavailable(why) => {
                        reply_and_close(
                            &mut stream,
                            503,
                            "Service Unavailable",
                            &format!("{why}\n"),
                        )
                        .await;
                        return Next::Done;
                    }
                }
            }
            if let Some(id) = &instance {
                let owner = shard_for(id, shard.shards);
                if owner != shard.id {
                    hand_off(shard, stream, buf, accepted_at, permit, owner);
                    return Next::Done;
                }
            }
            let head = RequestHead {
                route: Route::Play { instance },
                ..head
            };
            Next::Play {
                stream,
                read: buf,
                head,
                permit,
            }
        }
        Route::Other(_) => unreachable!("pages and 404 are answered above"),
    }
}

/// Gives the raw socket to shard `owner`. The fd is duplicated because
/// glommio's stream cannot give its fd up; closing the original afterwards
/// leaves the connection open through the duplicate.
fn hand_off(
    shard: &Shard,
    stream: TcpStream,
    head: Vec<u8>,
    accepted_at: Instant,
    permit: ConnPermit,
    owner: usize,
) {
    let Some(fd) = take_fd(shard, stream) else {
        return;
    };
    shard.metrics.handoffs_out.inc();
    shard.send_mesh(
        owner,
        MeshMsg::HandOff {
            fd,
            head,
            accepted_at,
            permit,
        },
    );
}

/// Reads until a complete request head; returns every byte read (the head
/// and anything after it) and the parsed head.
async fn read_head(
    stream: &mut TcpStream,
    head_bytes_max: usize,
) -> Result<(Vec<u8>, RequestHead), HeadError> {
    let mut buf = Vec::with_capacity(HEAD_READ_CHUNK_BYTES);
    let mut chunk = [0u8; HEAD_READ_CHUNK_BYTES];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| HeadError::Malformed(e.to_string()))?;
        if n == 0 {
            return Err(HeadError::Malformed(
                "connection closed before the request head ended".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(head) = http::parse_head(&buf, head_bytes_max)? {
            return Ok((buf, head));
        }
    }
}

async fn reply_and_close<S: futures_lite::AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    reason: &str,
    body: &str,
) {
    let bytes = http::response(status, reason, body);
    let _ = stream.write_all(&bytes).await;
    let _ = stream.close().await;
}

/// Upgrades and runs /play on this shard (the head asked for a WebSocket):
/// the driver takes the socket with the 101 answer as its first bytes, and
/// everything the client sent after its request head.
async fn serve_play(
    shard: Rc<Shard>,
    mut stream: TcpStream,
    read: Vec<u8>,
    head: RequestHead,
    permit: ConnPermit,
    accepted_at: Instant,
) {
    debug_assert!(head.is_websocket && matches!(head.route, Route::Play { .. }));
    if shard.core.borrow().shedding {
        shard.metrics.refused_overload.inc();
        reply_and_close(
            &mut stream,
            503,
            "Service Unavailable",
            "shard overloaded: protecting running games; retry later\n",
        )
        .await;
        return;
    }
    let response = match http::upgrade_response(&read[..head.len]) {
        Ok(r) => r,
        Err(why) => {
            shard.metrics.handshakes_failed.inc();
            reply_and_close(&mut stream, 400, "Bad Request", &format!("{why}\n")).await;
            return;
        }
    };
    if !shard.driver.borrow().has_buffer() {
        shard.metrics.refused_no_buffer.inc();
        reply_and_close(
            &mut stream,
            503,
            "Service Unavailable",
            "no free connection buffer on this shard (--buffers); retry later\n",
        )
        .await;
        return;
    }
    // The per-IP creation limit's key.
    let peer_ip = stream.peer_addr().ok().map(|a| a.ip());
    let Some(fd) = take_fd(&shard, stream) else {
        return;
    };
    let unread = read[head.len..].to_vec();
    let now = Instant::now();
    shard.with_core(now, |core, driver| {
        match driver.register(fd, accepted_at, Some(permit), &response, unread) {
            Ok(conn) => core.connected(conn, accepted_at, peer_ip),
            // Taken since the check above: the socket closes.
            Err(refused) => drop(refused),
        }
    });
    shard.metrics.hist.record(
        HistName::Handshake,
        now.saturating_duration_since(accepted_at),
    );
}

/// The socket's fd, for the driver or another shard. glommio's stream
/// cannot give its fd up: it is duplicated, then the stream is dropped
/// (the connection stays open through the duplicate).
pub(crate) fn take_fd(shard: &Shard, stream: TcpStream) -> Option<OwnedFd> {
    // SAFETY: dup of a valid fd owned by `stream`; the result is checked.
    let dup = unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        tracing::warn!(shard = shard.id, error = %std::io::Error::last_os_error(), "dup of an accepted socket failed");
        return None;
    }
    drop(stream);
    // SAFETY: `dup` is a fresh fd that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(dup) })
}
