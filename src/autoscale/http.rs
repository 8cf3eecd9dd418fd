//! The controller's HTTP listener: `GET /metrics` (Prometheus), `GET
//! /status` (JSON: every region's last decision), `GET /health`, and Agones's
//! FleetAutoscaler webhook, `POST /agones/webhook`. One thread, one request
//! at a time (Agones asks every few seconds per Fleet; Prometheus every
//! scrape interval); bodies are read up to a bound.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tiny_http::{Header, Method, Response, Server};

use super::agones;
use super::status::Status;

/// The webhook's path (`deploy/agones/fleetautoscaler.yaml` names it).
pub const WEBHOOK_PATH: &str = "/agones/webhook";

/// Binds `addr` and serves on a thread; the bound address (port 0 → the
/// port the kernel chose).
pub fn spawn(addr: SocketAddr, status: Arc<Mutex<Status>>) -> anyhow::Result<SocketAddr> {
    let server = Server::http(addr).map_err(|e| anyhow::anyhow!("--listen {addr}: {e}"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| anyhow::anyhow!("--listen {addr}: not an IP listener"))?;
    std::thread::Builder::new()
        .name("autoscale-http".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                serve(req, &status);
            }
        })?;
    Ok(bound)
}

fn serve(mut req: tiny_http::Request, status: &Mutex<Status>) {
    let path = req.url().split('?').next().unwrap_or("").to_owned();
    let (code, ctype, body) = match (req.method(), path.as_str()) {
        (Method::Get, "/metrics") => (
            200,
            "text/plain; version=0.0.4",
            status.lock().expect("status lock").render(),
        ),
        (Method::Get, "/status") => (
            200,
            "application/json",
            status.lock().expect("status lock").to_json().to_string(),
        ),
        (Method::Get, "/health") => (200, "text/plain", "ok\n".to_owned()),
        (Method::Post, WEBHOOK_PATH) => {
            let mut body = Vec::new();
            let read = req
                .as_reader()
                .take(agones::REVIEW_BYTES_MAX as u64 + 1)
                .read_to_end(&mut body);
            let (code, json) = match read {
                Ok(_) => {
                    let mut st = status.lock().expect("status lock");
                    let (code, json) = agones::answer(&body, &st);
                    if code == 200 {
                        st.webhook_requests += 1;
                    } else {
                        st.webhook_refused += 1;
                    }
                    (code, json)
                }
                Err(e) => (400, serde_json::json!({"error": format!("body: {e}")})),
            };
            if code != 200 {
                tracing::warn!(code, answer = %json, "Agones webhook request refused");
            }
            (code, "application/json", json.to_string())
        }
        (_, "/metrics" | "/status" | "/health" | WEBHOOK_PATH) => {
            (405, "text/plain", "method not allowed\n".to_owned())
        }
        _ => (404, "text/plain", "not found\n".to_owned()),
    };
    let header = Header::from_bytes(&b"Content-Type"[..], ctype.as_bytes()).expect("valid header");
    let _ = req.respond(
        Response::from_string(body)
            .with_status_code(code)
            .with_header(header),
    );
}
