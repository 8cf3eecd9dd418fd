//! The browser pages the binary serves, embedded at compile time from `web/`
//! (building or running the server needs no Node):
//!
//! - game listener: `GET /` — the playable demo (`web/demo/`): a canvas of an
//!   arena instance, arrow keys / WASD, RTT and server tick. Its
//!   `shardline.js` is the TypeScript SDK bundled for browsers, checked in
//!   and rebuilt by `npm run build:web` in `clients/typescript`.
//! - admin listener: `GET /dashboard` — the ops dashboard (`web/dashboard/`):
//!   latency percentile plots per shard and merged, connections, players,
//!   instances and message rates over the last minutes, the instance list
//!   and a live view of any instance. It reads the admin API of its own
//!   origin.
//!
//! Pure lookups, path → bytes; the listeners write the HTTP response. Serve
//! them with `Cache-Control: no-cache` (a new binary's pages replace the old
//! ones at once) and `X-Content-Type-Options: nosniff`.

/// One embedded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// The `Content-Type` header to send.
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

macro_rules! web_file {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path))
    };
}

/// Request path → (content type, file), game listener.
const GAME_ASSETS: &[(&str, &str, &[u8])] = &[
    ("/", HTML, web_file!("demo/index.html")),
    ("/demo/", HTML, web_file!("demo/index.html")),
    ("/demo/demo.js", JS, web_file!("demo/demo.js")),
    ("/demo/shardline.js", JS, web_file!("demo/shardline.js")),
];

/// Request path → (content type, file), admin listener.
const ADMIN_ASSETS: &[(&str, &str, &[u8])] = &[
    ("/dashboard", HTML, web_file!("dashboard/index.html")),
    ("/dashboard/", HTML, web_file!("dashboard/index.html")),
    (
        "/dashboard/dashboard.js",
        JS,
        web_file!("dashboard/dashboard.js"),
    ),
    ("/dashboard/hdr.js", JS, web_file!("dashboard/hdr.js")),
    ("/dashboard/plot.js", JS, web_file!("dashboard/plot.js")),
];

/// The game listener's page for a plain HTTP GET of `path` (a query string
/// is ignored: `/?instance=arena` is the demo page), or `None` (404).
pub fn game_asset(path: &str) -> Option<Asset> {
    lookup(GAME_ASSETS, path)
}

/// The admin listener's page for a GET of `path`, or `None`.
pub fn admin_asset(path: &str) -> Option<Asset> {
    lookup(ADMIN_ASSETS, path)
}

fn lookup(table: &[(&str, &'static str, &'static [u8])], path: &str) -> Option<Asset> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    table
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|&(_, content_type, body)| Asset { content_type, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> impl Iterator<Item = (&'static str, Asset)> {
        let game = GAME_ASSETS
            .iter()
            .map(|(p, _, _)| (*p, game_asset(p).unwrap()));
        let admin = ADMIN_ASSETS
            .iter()
            .map(|(p, _, _)| (*p, admin_asset(p).unwrap()));
        game.chain(admin)
    }

    #[test]
    fn every_asset_is_non_empty_with_the_content_type_of_its_file() {
        for (path, a) in all() {
            assert!(!a.body.is_empty(), "{path} is empty");
            let text =
                std::str::from_utf8(a.body).unwrap_or_else(|_| panic!("{path} is not UTF-8"));
            if path.ends_with(".js") {
                assert_eq!(a.content_type, JS, "{path}");
            } else {
                assert_eq!(a.content_type, HTML, "{path}");
                assert!(
                    text.starts_with("<!doctype html>"),
                    "{path} is not an HTML page"
                );
            }
        }
    }

    #[test]
    fn pages_are_found_with_queries_and_unknown_paths_are_not() {
        assert_eq!(
            game_asset("/?instance=e2e&name=a").unwrap().content_type,
            HTML
        );
        assert!(admin_asset("/dashboard?token=x").is_some());
        for missing in [
            "/play",
            "/echo",
            "/dashboard",
            "/demo/../Cargo.toml",
            "/favicon.ico",
            "",
        ] {
            assert!(
                game_asset(missing).is_none(),
                "game listener serves {missing:?}"
            );
        }
        assert!(admin_asset("/").is_none());
        assert!(admin_asset("/stats").is_none());
        assert!(admin_asset("/demo/shardline.js").is_none());
    }

    /// Every script a page loads and every module a script imports is
    /// served by the same listener: no dangling reference, no CDN.
    #[test]
    fn every_reference_resolves_on_the_same_listener() {
        type Lookup = fn(&str) -> Option<Asset>;
        for (table, lookup) in [
            (GAME_ASSETS, game_asset as Lookup),
            (ADMIN_ASSETS, admin_asset as Lookup),
        ] {
            for (path, _, body) in table {
                let text = std::str::from_utf8(body).unwrap();
                assert!(
                    !text.contains("http://") && !text.contains("https://"),
                    "{path} loads something from elsewhere"
                );
                let dir = &path[..=path.rfind('/').unwrap()];
                for reference in references(text) {
                    let target = match reference.strip_prefix("./") {
                        Some(rel) => format!("{dir}{rel}"),
                        None => reference.to_owned(),
                    };
                    assert!(
                        lookup(&target).is_some(),
                        "{path} refers to {reference} ({target}), which is not served"
                    );
                }
            }
        }
    }

    /// `src="…"` of HTML and `from '…'` of ES module imports.
    fn references(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for (open, close) in [("src=\"", '"'), ("from './", '\'')] {
            for (i, _) in text.match_indices(open) {
                let start = if open.starts_with("from") {
                    i + "from '".len()
                } else {
                    i + open.len()
                };
                let end = text[start..].find(close).map(|e| start + e).unwrap();
                out.push(&text[start..end]);
            }
        }
        out
    }
}
