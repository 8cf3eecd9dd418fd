//! The HTTP request head that precedes every WebSocket upgrade: finding its
//! end, parsing the path and query, and the few plain HTTP answers the server
//! gives (404, 400, 431, 503). Pure code: bytes in, values out.

use crate::game::types::InstanceId;

/// Where a request head wants to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/play`, optionally naming the instance so the owning shard takes the
    /// socket before the upgrade completes.
    Play { instance: Option<InstanceId> },
    /// `/echo`: every message echoed back unchanged.
    Echo,
    /// Anything else: an embedded page (`/`, the demo) or HTTP 404.
    Other(String),
}

/// A parsed upgrade request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub route: Route,
    /// The request asks for a WebSocket upgrade (`Upgrade: websocket`).
    pub is_websocket: bool,
    /// Length of the head in bytes, including the final CRLFCRLF.
    pub len: usize,
    /// The `Origin` header (browsers send it), for --allowed-origins.
    pub origin: Option<String>,
}

/// Why a head cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed HTTP request: {0}")]
    Malformed(String),
    #[error("request head larger than {0} bytes")]
    TooLarge(usize),
    #[error("bad instance id: {0}")]
    BadInstance(String),
}

/// Most headers a request head may carry.
const HEADERS_MAX: usize = 32;

/// Parses `buf` as a request head. `Ok(None)` means more bytes are needed;
/// `head_bytes_max` bounds how many may be waited for.
pub fn parse_head(buf: &[u8], head_bytes_max: usize) -> Result<Option<RequestHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    let status = req
        .parse(buf)
        .map_err(|e| HeadError::Malformed(e.to_string()))?;
    let len = match status {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial if buf.len() >= head_bytes_max => {
            return Err(HeadError::TooLarge(head_bytes_max))
        }
        httparse::Status::Partial => return Ok(None),
    };
    if len > head_bytes_max {
        return Err(HeadError::TooLarge(head_bytes_max));
    }
    let target = req.path.unwrap_or("/");
    let is_websocket = req.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("upgrade")
            && std::str::from_utf8(h.value)
                .map(|v| v.trim().eq_ignore_ascii_case("websocket"))
                .unwrap_or(false)
    });
    let origin = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("origin"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(|v| v.trim().to_owned());
    Ok(Some(RequestHead {
        route: route_for(target)?,
        is_websocket,
        len,
        origin,
    }))
}

fn route_for(target: &str) -> Result<Route, HeadError> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path {
        "/play" => {
            let instance = query_param(query, "instance")
                .filter(|v| !v.is_empty())
                .map(|v| InstanceId::parse(v).map_err(|e| HeadError::BadInstance(e.to_string())))
                .transpose()?;
            Ok(Route::Play { instance })
        }
        "/echo" => Ok(Route::Echo),
        _ => Ok(Route::Other(target.to_owned())),
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// A complete plain HTTP response that closes the connection.
pub fn response(status: u16, reason: &str, body: &str) -> Vec<u8> {
    response_with(status, reason, "text/plain; charset=utf-8", body.as_bytes())
}

/// A complete HTTP response with a body of any type.
pub fn response_with(status: u16, reason: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let retry = if status == 503 {
        "Retry-After: 1\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n{retry}Cache-Control: no-cache\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The 101 answer to a WebSocket upgrade request head, by tungstenite's
/// rules (method, HTTP/1.1, `Upgrade: websocket`, `Connection: upgrade`,
/// `Sec-WebSocket-Version: 13`, a valid key).
///
/// # Errors
/// The head is not a valid upgrade request (the reason, for a 400).
pub fn upgrade_response(head: &[u8]) -> Result<Vec<u8>, String> {
    use tungstenite::handshake::machine::TryParse;
    use tungstenite::handshake::server::{create_response, write_response, Request};
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

#[cfg(test)]
mod tests {
    use super::*;

    fn head(target: &str) -> Vec<u8> {
        format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn routes_by_path_and_instance() {
        let h = parse_head(&head("/play?instance=arena-1"), 8192)
            .unwrap()
            .unwrap();
        assert_eq!(
            h.route,
            Route::Play {
                instance: Some(InstanceId::parse("arena-1").unwrap())
            }
        );
        assert!(h.is_websocket);
        let h = parse_head(&head("/play"), 8192).unwrap().unwrap();
        assert_eq!(h.route, Route::Play { instance: None });
        let h = parse_head(&head("/echo"), 8192).unwrap().unwrap();
        assert_eq!(h.route, Route::Echo);
        let h = parse_head(&head("/nope"), 8192).unwrap().unwrap();
        assert_eq!(h.route, Route::Other("/nope".into()));
    }

    #[test]
    fn partial_heads_wait_and_are_bounded() {
        let full = head("/play");
        assert_eq!(parse_head(&full[..10], 8192).unwrap(), None);
        assert_eq!(parse_head(&full[..10], 10), Err(HeadError::TooLarge(10)));
        let h = parse_head(&full, 8192).unwrap().unwrap();
        assert_eq!(h.len, full.len());
    }

    #[test]
    fn bytes_after_the_head_are_not_part_of_it() {
        let mut buf = head("/play");
        let len = buf.len();
        buf.extend_from_slice(&[0x82, 0x85, 1, 2, 3, 4]);
        assert_eq!(parse_head(&buf, 8192).unwrap().unwrap().len, len);
    }

    #[test]
    fn bad_instance_and_garbage_are_errors() {
        assert!(matches!(
            parse_head(&head("/play?instance=a/b"), 8192),
            Err(HeadError::BadInstance(_))
        ));
        assert!(matches!(
            parse_head(b"\x16\x03\x01garbage\r\n\r\n", 8192),
            Err(HeadError::Malformed(_))
        ));
    }
}
