//! Where the directory is: one Redis (`redis://…`), or the primary a set of
//! Redis Sentinels name (`redis+sentinel://…`), so the directory survives
//! the loss of its primary. Every directory user — the agent, the fleet
//! channel, `shardline fleet` — connects through [`Endpoint::connect`].
//!
//! ```text
//! redis://[[USER]:PASSWORD@]HOST:PORT[/DB]
//! redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]/MASTER[/DB]
//! ```
//!
//! With Sentinel, the hosts are the sentinels and MASTER the name they
//! monitor (`sentinel monitor MASTER …`); the credentials and DB are the
//! primary's. A sentinel that asks for a password (`NOAUTH`) is asked again
//! with the same credentials.
//!
//! Discovery follows Redis's client guidelines for Sentinel: ask each
//! sentinel in turn `SENTINEL get-master-addr-by-name MASTER`, connect to
//! the address it names and check with `ROLE` that it is the primary (a
//! sentinel that has not yet seen a failover names the old one; a demoted
//! primary that came back is a replica). It is written here rather than
//! with the `redis` crate's `sentinel` feature because that one connects to
//! sentinels and to the primary without any timeout: one sentinel that
//! stopped answering (a partition, a paused VM) would block the agent
//! thread — and with it the node's whole directory — for minutes, where
//! every step here is bounded by the caller's timeout.

use std::time::Duration;

use redis::{Connection, ErrorKind, RedisError, RedisResult};

pub use crate::config::endpoint::{
    redacted, Endpoint, EndpointError, SentinelEndpoint, SENTINELS_MAX,
};

impl Endpoint {
    /// A connection to the directory's primary, every step bounded by
    /// `timeout` (each sentinel asked, then the primary).
    pub fn connect(&self, timeout: Duration) -> RedisResult<Connection> {
        match self {
            Endpoint::Single(client) => {
                let c = client.get_connection_with_timeout(timeout)?;
                bound(&c, timeout)?;
                Ok(c)
            }
            Endpoint::Sentinel(s) => s.connect(timeout),
        }
    }
}

/// Read and write timeouts on a connection, so that no command waits
/// longer than `timeout` on a server that stopped answering.
fn bound(c: &Connection, timeout: Duration) -> RedisResult<()> {
    c.set_read_timeout(Some(timeout))?;
    c.set_write_timeout(Some(timeout))
}

impl SentinelEndpoint {
    fn open(url: &str, timeout: Duration) -> RedisResult<Connection> {
        let c = redis::Client::open(url)?.get_connection_with_timeout(timeout)?;
        bound(&c, timeout)?;
        Ok(c)
    }

    /// The primary's address as one sentinel names it.
    fn ask(&self, sentinel: &str, timeout: Duration) -> RedisResult<String> {
        let query = |c: &mut Connection| -> RedisResult<Option<(String, u16)>> {
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(&self.master)
                .query(c)
        };
        // Sentinels usually run without a password; one that wants it says
        // NOAUTH and is asked again with the URL's.
        let addr = match query(&mut Self::open(&format!("redis://{sentinel}"), timeout)?) {
            Err(e) if e.code() == Some("NOAUTH") && !self.credentials.is_empty() => {
                query(&mut Self::open(&self.node_url(sentinel, true), timeout)?)
            }
            other => other,
        }?;
        let (host, port) = addr.ok_or_else(|| {
            RedisError::from((
                ErrorKind::MasterNameNotFoundBySentinel,
                "the sentinel does not monitor this master name",
                format!("{:?} at {sentinel}", self.master),
            ))
        })?;
        Ok(format!("{host}:{port}"))
    }

    fn connect(&self, timeout: Duration) -> RedisResult<Connection> {
        let mut last: Option<RedisError> = None;
        let mut tried: Vec<String> = Vec::new();
        for sentinel in &self.sentinels {
            let addr = match self.ask(sentinel, timeout) {
                Ok(a) => a,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            if tried.contains(&addr) {
                continue;
            }
            tried.push(addr.clone());
            match self.primary_at(&addr, timeout) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one sentinel was asked"))
    }

    /// A connection to `addr` if it is a primary now.
    fn primary_at(&self, addr: &str, timeout: Duration) -> RedisResult<Connection> {
        let mut c = Self::open(&self.node_url(addr, true), timeout)?;
        let role: redis::Value = redis::cmd("ROLE").query(&mut c)?;
        let is_primary = match &role {
            redis::Value::Array(items) => items.first().is_some_and(
                |r| matches!(r, redis::Value::BulkString(b) if b.as_slice() == b"master"),
            ),
            _ => false,
        };
        if !is_primary {
            return Err(RedisError::from((
                ErrorKind::ReadOnly,
                "the sentinels named a server that is not the primary (a failover is under way)",
                addr.to_owned(),
            )));
        }
        Ok(c)
    }
}
