//! The admin HTTP listener (`--admin-listen`, loopback by default): metrics,
//! health, stats, live instance inspection, run-time config and drain.
//!
//! It runs on shard 0 in that shard's background task queue, so serving it
//! never delays a tick; figures from the other shards arrive over the mesh.
//! Every request is one HTTP/1.1 exchange on its own connection, bounded in
//! size and time.
//!
//! - [`gather`]: collecting node-wide figures from every shard.
//! - [`routes`]: what each endpoint answers.
//! - [`stats_cli`]: `shardline stats`, the operator's view of it.

pub mod gather;
pub mod routes;
pub mod stats_cli;

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use crate::runtime::Shard;
use crate::util::time::until;

/// Largest admin request head + body. Admin requests are tiny JSON documents.
const REQUEST_BYTES_MAX: usize = 64 * 1024;
/// Time a client has to send its request and read the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed admin request.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// A complete answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub extra_headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
            extra_headers: Vec::new(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: serde_json::to_vec_pretty(value).expect("json values serialize"),
            extra_headers: Vec::new(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (k, v) in &self.extra_headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Serves the admin API until the task is cancelled.
pub async fn serve(shard: Rc<Shard>, listener: TcpListener) {
    let state = Rc::new(gather::AdminState::new(&shard));
    glommio::spawn_local_into(
        gather::health_loop(shard.clone(), state.clone()),
        shard.queues.background,
    )
    .expect("background queue")
    .detach();
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let task = handle(shard.clone(), state.clone(), stream);
        glommio::spawn_local_into(task, shard.queues.background)
            .expect("background queue")
            .detach();
    }
}

async fn handle(shard: Rc<Shard>, state: Rc<gather::AdminState>, mut stream: TcpStream) {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let response = match until(deadline, read_request(&mut stream)).await {
        None => return,
        Some(Err(r)) => r,
        Some(Ok(req)) => {
            // The dashboard's page and scripts hold no data (they fetch it
            // with the token, which a browser cannot send on a page load).
            let static_page = req.method == "GET" && crate::web::admin_asset(&req.path).is_some();
            if static_page || authorized(&shard, &req) {
                routes::route(&shard, &state, req).await
            } else {
                let mut r = Response::text(401, "");
                r.extra_headers.push(("WWW-Authenticate", "Bearer".into()));
                r
            }
        }
    };
    let _ = until(deadline, async {
        let _ = stream.write_all(&response.to_bytes()).await;
        let _ = stream.close().await;
    })
    .await;
}

/// With `--admin-token`, every request must carry `Authorization: Bearer
/// <token>`. The comparison takes the same time wherever it differs.
fn authorized(shard: &Shard, req: &Request) -> bool {
    let Some(token) = shard.cfg().admin_token.as_deref() else {
        return true;
    };
    let given = req
        .authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(given.as_bytes(), token.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for (i, &x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

async fn read_request(stream: &mut TcpStream) -> Result<Request, Response> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| Response::text(400, "read failed\n"))?;
        if n == 0 {
            return Err(Response::text(400, "incomplete request\n"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > REQUEST_BYTES_MAX {
            return Err(Response::text(413, "request too large\n"));
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => continue,
            Err(e) => return Err(Response::text(400, format!("malformed request: {e}\n"))),
        };
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .map(str::to_owned)
        };
        let body_len: usize = header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if head_len + body_len > REQUEST_BYTES_MAX {
            return Err(Response::text(413, "request too large\n"));
        }
        if buf.len() < head_len + body_len {
            continue;
        }
        let target = req.path.unwrap_or("/");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        return Ok(Request {
            method: req.method.unwrap_or("GET").to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            authorization: header("authorization"),
            body: buf[head_len..head_len + body_len].to_vec(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
