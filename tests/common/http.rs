//! A tiny blocking HTTP/1.1 client for the admin API, and helpers to start a
//! server with it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::Server;

const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// (status, body) of one request.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).expect("connect to admin");
    s.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read admin answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, body.to_owned())
}

pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, None, None)
}

pub fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = get(addr, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path} is not JSON ({e}): {body}"))
}

/// The admin address a server logged (`admin listening on ADDR`).
pub fn admin_addr(server: &Server) -> SocketAddr {
    const MARK: &str = "admin listening on ";
    server.wait_log(MARK, Duration::from_secs(10));
    let log = server.log();
    let at = log.find(MARK).expect("logged above") + MARK.len();
    log[at..]
        .split_whitespace()
        .next()
        .and_then(|a| a.parse().ok())
        .expect("admin address")
}

/// Polls `check` every 50 ms until it returns Some, or panics after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh directory under the system temp dir, removed when the guard is
/// dropped (test end or panic).
pub fn tempdir(tag: &str) -> super::temp::TempDir {
    super::temp::TempDir::new(tag)
}
