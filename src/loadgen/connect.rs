//! Opening one client connection: a TCP connect from a chosen local address
//! (so many connections can be spread over several source addresses), the
//! WebSocket client handshake, and a name for every way either can fail.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::Instant;

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::WebSocketStream;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use socket2::{Domain, Protocol, Socket, Type};

use crate::net::fenced::Fenced;
use crate::protocol::close::CloseReason;

pub type Ws = WebSocketStream<TcpStream>;

/// tungstenite's read buffer per connection, allocated at upgrade (its
/// default, 128 KiB, would cost 2.5 GiB for 20,000 connections). Larger
/// messages still arrive; the buffer grows for them.
pub const READ_BUFFER_BYTES: usize = 4096;
/// Bytes queued before tungstenite writes without waiting for a flush; the
/// writer flushes after each batch of due messages anyway.
const WRITE_BUFFER_BYTES: usize = 4096;
/// Most bytes that may wait to be written per connection, once the kernel's
/// socket buffer is full too. 64 KiB of 40-byte inputs at 30 Hz is ~50 s of
/// a server that does not read; then the connection ends with
/// `send_backlog_full`. Worst case 20,000 × 64 KiB = 1.25 GiB.
const WRITE_BACKLOG_BYTES_MAX: usize = 64 << 10;
/// Largest server message accepted (a Joined with every entity of a big
/// instance fits many times over). Only a message this large costs this much.
pub const MESSAGE_BYTES_MAX: usize = 1 << 20;
const _: () = assert!(WRITE_BUFFER_BYTES < WRITE_BACKLOG_BYTES_MAX);

pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WRITE_BACKLOG_BYTES_MAX)
        .max_message_size(Some(MESSAGE_BYTES_MAX))
        .max_frame_size(Some(MESSAGE_BYTES_MAX))
}

/// Runs `fut` until `deadline`; `None` when the deadline passed first.
pub async fn until<T>(deadline: Instant, fut: impl Future<Output = T>) -> Option<T> {
    let left = deadline.saturating_duration_since(Instant::now());
    futures_lite::future::or(async { Some(fut.await) }, async {
        glommio::timer::sleep(left).await;
        None
    })
    .await
}

/// Connects to `addr`, from `source` when given, without blocking the
/// executor: a non-blocking connect, then glommio waits for writability.
pub async fn tcp_connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_nodelay(true)?;
    if let Some(ip) = source {
        if ip.is_ipv4() {
            bind_address_no_port(&socket)?;
        }
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    // SAFETY: a fresh socket whose only owner was `socket`; glommio's
    // stream takes it over (its API has no safe constructor from a socket).
    let mut stream = unsafe { TcpStream::from_raw_fd(socket.into_raw_fd()) };
    // A zero-byte send fails with EAGAIN until the connect completes, so
    // glommio parks on writability; then it returns 0, or the connect's
    // error (ECONNREFUSED…).
    stream.write(&[]).await?;
    Ok(stream)
}

/// Lets the kernel choose the local port at connect time, per destination,
/// instead of at bind time from the whole range: with it, each source
/// address has the full ephemeral range toward each server.
fn bind_address_no_port(socket: &Socket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads one c_int from `on`; the fd is valid.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Upgrades `stream` to a WebSocket on `url`.
pub async fn handshake<S>(url: &str, stream: S) -> Result<WebSocketStream<S>, WsError>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let (ws, _response) =
        async_tungstenite::client_async_with_config(url, stream, Some(ws_config())).await?;
    Ok(ws)
}

/// TCP connect and upgrade, both before `deadline`; the error is the
/// report's name for what failed.
pub async fn open(
    url: &str,
    addr: SocketAddr,
    source: Option<IpAddr>,
    deadline: Instant,
) -> Result<Ws, String> {
    let stream = connect(addr, source, deadline).await?;
    upgrade(url, stream, deadline).await
}

/// [`open`], reading through a fence (`net::fenced`): after any complete
/// message the socket and every byte the server sent beyond it can be
/// taken back from the WebSocket library (`player` does, after Joined).
pub async fn open_fenced(
    url: &str,
    addr: SocketAddr,
    source: Option<IpAddr>,
    deadline: Instant,
) -> Result<FencedWs, String> {
    let stream = connect(addr, source, deadline).await?;
    upgrade(url, Fenced::client(stream, READ_BUFFER_BYTES), deadline).await
}

pub type FencedWs = WebSocketStream<Fenced<TcpStream>>;

async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    deadline: Instant,
) -> Result<TcpStream, String> {
    match until(deadline, tcp_connect(addr, source)).await {
        None => Err("connect_timeout".to_owned()),
        Some(Err(e)) => Err(connect_error_label(&e)),
        Some(Ok(s)) => Ok(s),
    }
}

async fn upgrade<S>(url: &str, stream: S, deadline: Instant) -> Result<WebSocketStream<S>, String>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    match until(deadline, handshake(url, stream)).await {
        None => Err("handshake_timeout".to_owned()),
        Some(Err(e)) => Err(handshake_error_label(&e)),
        Some(Ok(ws)) => Ok(ws),
    }
}

/// The report's name for a failed TCP connect.
pub fn connect_error_label(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => "connect_refused".to_owned(),
        Some(libc::ETIMEDOUT) => "connect_timeout".to_owned(),
        Some(libc::EADDRNOTAVAIL) => "connect_no_local_port".to_owned(),
        Some(libc::EMFILE) | Some(libc::ENFILE) => "connect_fd_limit".to_owned(),
        Some(libc::ECONNRESET) => "connect_reset".to_owned(),
        Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH) => "connect_unreachable".to_owned(),
        Some(n) => format!("connect_errno_{n}"),
        None => format!("connect_{:?}", e.kind()).to_lowercase(),
    }
}

/// The report's name for a failed upgrade: `handshake_http_503` when the
/// server answered with a status, else the kind of failure.
pub fn handshake_error_label(e: &WsError) -> String {
    match e {
        WsError::Http(resp) => format!("handshake_http_{}", resp.status().as_u16()),
        WsError::Io(io) => format!("handshake_{}", io_kind_label(io)),
        WsError::ConnectionClosed | WsError::AlreadyClosed => "handshake_closed".to_owned(),
        WsError::Protocol(_) => "handshake_protocol_error".to_owned(),
        other => format!("handshake_{}", ws_error_kind(other)),
    }
}

/// The report's name for a stream that failed after the upgrade.
pub fn stream_error_label(e: &WsError) -> String {
    match e {
        WsError::Io(io) => io_kind_label(io),
        WsError::WriteBufferFull(_) => "send_backlog_full".to_owned(),
        WsError::Capacity(_) => "message_too_big".to_owned(),
        WsError::Protocol(_) => "ws_protocol_error".to_owned(),
        other => ws_error_kind(other),
    }
}

pub fn io_kind_label(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset => "connection_reset".to_owned(),
        io::ErrorKind::BrokenPipe => "broken_pipe".to_owned(),
        io::ErrorKind::UnexpectedEof => "unexpected_eof".to_owned(),
        io::ErrorKind::TimedOut => "timeout".to_owned(),
        other => format!("io_{other:?}").to_lowercase(),
    }
}

fn ws_error_kind(e: &WsError) -> String {
    let debug = format!("{e:?}");
    let name = debug.split(['(', ' ', '{']).next().unwrap_or("error");
    format!("ws_{}", name.to_lowercase())
}

/// The report's name for a close frame the server sent: `close_1013_try_again_later`.
pub fn close_label(code: Option<u16>) -> String {
    let Some(code) = code else {
        return "close_without_code".to_owned();
    };
    match CloseReason::ALL.iter().find(|r| r.code() == code) {
        Some(r) => format!("close_{code}_{}", r.label()),
        None => format!("close_{code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_get_the_servers_names() {
        assert_eq!(close_label(Some(1000)), "close_1000_normal");
        assert_eq!(close_label(Some(1013)), "close_1013_try_again_later");
        assert_eq!(close_label(Some(4001)), "close_4001_heartbeat_timeout");
        assert_eq!(close_label(Some(3999)), "close_3999");
        assert_eq!(close_label(None), "close_without_code");
    }

    #[test]
    fn connect_errors_are_named() {
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(connect_error_label(&refused), "connect_refused");
        let ports = io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
        assert_eq!(connect_error_label(&ports), "connect_no_local_port");
    }
}
