//! `--directory`'s URL: one Redis (`redis://…`), or the primary a set of
//! Redis Sentinels name (`redis+sentinel://…`). Parsed and checked here,
//! where every flag is; connecting is `crate::directory::endpoint`.
//!
//! ```text
//! redis://[[USER]:PASSWORD@]HOST:PORT[/DB]
//! redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]/MASTER[/DB]
//! ```
//!
//! With Sentinel, the hosts are the sentinels and MASTER the name they
//! monitor (`sentinel monitor MASTER …`); the credentials and DB are the
//! primary's.
/// Most sentinels one URL may list.
pub const SENTINELS_MAX: usize = 16;

/// A parsed `--directory`.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// One Redis server.
    Single(redis::Client),
    Sentinel(SentinelEndpoint),
}

#[derive(Debug, Clone)]
pub struct SentinelEndpoint {
    /// `host:port` of each sentinel, in the URL's order.
    pub sentinels: Vec<String>,
    /// The monitored name.
    pub master: String,
    /// `USER:PASSWORD` as written in the URL (still percent-encoded), or "".
    pub(crate) credentials: String,
    pub db: i64,
}

/// Why a `--directory` URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error(
        "expected redis://HOST:PORT[/DB] or redis+sentinel://HOST:PORT[,HOST:PORT…]/MASTER[/DB]"
    )]
    Scheme,
    #[error("{0}")]
    Redis(String),
    #[error("no sentinel address (HOST:PORT) before /MASTER")]
    NoSentinel,
    #[error("more than {SENTINELS_MAX} sentinels")]
    TooManySentinels,
    #[error("sentinel address {0:?}: expected HOST:PORT")]
    SentinelAddress(String),
    #[error("no master name after the sentinels (…/MASTER)")]
    NoMaster,
    #[error("database {0:?}: expected a number")]
    Db(String),
    #[error("query parameters are not supported")]
    Query,
}

const SENTINEL_SCHEME: &str = "redis+sentinel://";

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        if url.starts_with("redis://") {
            return redis::Client::open(url)
                .map(Endpoint::Single)
                .map_err(|e| EndpointError::Redis(e.to_string()));
        }
        let rest = url
            .strip_prefix(SENTINEL_SCHEME)
            .ok_or(EndpointError::Scheme)?;
        if rest.contains('?') {
            return Err(EndpointError::Query);
        }
        let (credentials, rest) = match rest.rsplit_once('@') {
            Some((c, r)) => (c.to_owned(), r),
            None => (String::new(), rest),
        };
        let (hosts, path) = rest.split_once('/').ok_or(EndpointError::NoMaster)?;
        let sentinels: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if sentinels.is_empty() {
            return Err(EndpointError::NoSentinel);
        }
        if sentinels.len() > SENTINELS_MAX {
            return Err(EndpointError::TooManySentinels);
        }
        for s in &sentinels {
            let port_ok = s
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return Err(EndpointError::SentinelAddress(s.clone()));
            }
        }
        let mut parts = path.split('/');
        let master = parts.next().unwrap_or("").to_owned();
        if master.is_empty() {
            return Err(EndpointError::NoMaster);
        }
        let db = match parts.next().filter(|d| !d.is_empty()) {
            None => 0,
            Some(d) => d.parse().map_err(|_| EndpointError::Db(d.to_owned()))?,
        };
        if let Some(extra) = parts.next() {
            return Err(EndpointError::Db(extra.to_owned()));
        }
        let e = SentinelEndpoint {
            sentinels,
            master,
            credentials,
            db,
        };
        // The URL each sentinel and the primary are reached with must parse.
        redis::Client::open(e.node_url(&e.sentinels[0], true))
            .map_err(|err| EndpointError::Redis(err.to_string()))?;
        Ok(Endpoint::Sentinel(e))
    }
}

impl SentinelEndpoint {
    /// `redis://[CREDENTIALS@]addr[/db]`.
    pub(crate) fn node_url(&self, addr: &str, with_credentials: bool) -> String {
        let creds = if with_credentials && !self.credentials.is_empty() {
            format!("{}@", self.credentials)
        } else {
            String::new()
        };
        format!("redis://{creds}{addr}/{}", self.db)
    }
}

/// `url` with its password replaced by `***`, for logs and error messages.
pub fn redacted(url: &str) -> String {
    let scheme = if url.starts_with("redis://") {
        "redis://"
    } else if url.starts_with(SENTINEL_SCHEME) {
        SENTINEL_SCHEME
    } else {
        return url.to_owned();
    };
    let rest = &url[scheme.len()..];
    match rest.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentinel(url: &str) -> SentinelEndpoint {
        match Endpoint::parse(url).unwrap() {
            Endpoint::Sentinel(s) => s,
            Endpoint::Single(_) => panic!("{url}: not a sentinel endpoint"),
        }
    }

    #[test]
    fn sentinel_urls_parse() {
        let s = sentinel("redis+sentinel://10.0.0.1:26379,10.0.0.2:26379, 10.0.0.3:26379/sl");
        assert_eq!(
            s.sentinels,
            ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"]
        );
        assert_eq!((s.master.as_str(), s.db), ("sl", 0));
        let s = sentinel("redis+sentinel://:p%40ss@h:1/mymaster/3");
        assert_eq!((s.master.as_str(), s.db), ("mymaster", 3));
        assert_eq!(
            s.node_url("10.1.1.1:6379", true),
            "redis://:p%40ss@10.1.1.1:6379/3"
        );
        assert_eq!(s.node_url("h:1", false), "redis://h:1/3");
        assert!(matches!(
            Endpoint::parse("redis://127.0.0.1:6379/2"),
            Ok(Endpoint::Single(_))
        ));
    }

    #[test]
    fn bad_urls_say_why() {
        use EndpointError as E;
        let err = |u: &str| Endpoint::parse(u).unwrap_err();
        assert_eq!(err("http://x"), E::Scheme);
        assert_eq!(err("redis+sentinel://h:1"), E::NoMaster);
        assert_eq!(err("redis+sentinel://h:1/"), E::NoMaster);
        assert_eq!(err("redis+sentinel:///m"), E::NoSentinel);
        assert_eq!(err("redis+sentinel://h/m"), E::SentinelAddress("h".into()));
        assert_eq!(
            err("redis+sentinel://h:0/m"),
            E::SentinelAddress("h:0".into())
        );
        assert_eq!(err("redis+sentinel://h:1/m/x"), E::Db("x".into()));
        assert_eq!(err("redis+sentinel://h:1/m/1/2"), E::Db("2".into()));
        assert_eq!(err("redis+sentinel://h:1/m?x=1"), E::Query);
        let many = (1..=17)
            .map(|i| format!("h:{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            err(&format!("redis+sentinel://{many}/m")),
            E::TooManySentinels
        );
    }

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redacted("redis://:s3cr@t@redis.internal:6379/2"),
            "redis://:***@redis.internal:6379/2"
        );
        assert_eq!(
            redacted("redis://game:pw@10.0.0.5"),
            "redis://game:***@10.0.0.5"
        );
        assert_eq!(
            redacted("redis+sentinel://:pw@a:1,b:2/sl/1"),
            "redis+sentinel://:***@a:1,b:2/sl/1"
        );
    }
}
