//! Harness for the autoscaler's tests: a `redis-server` child (a test
//! that needs it FAILS when it is not installed), `shardline autoscale`
//! controllers as children with their output collected, and the nodes they
//! start, killed when the test ends (their pids are in the directory).

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::http::eventually;

/// Bound for a child to come up (redis, a controller): generous, the
/// machine is shared and loaded.
pub const UP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// Starts `redis-server` on a free loopback port, without persistence.
    /// Panics (the test fails, naming what is missing) without it.
    pub fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("this test needs redis-server (apt-get install redis-server): {e}")
            });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        eventually("redis-server accepts connections", UP_TIMEOUT, || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        });
        Redis { child, port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
            .expect("connect to the test redis")
    }

    /// Kills every node process a controller recorded (`sl:as:pid:*`).
    pub fn kill_recorded_nodes(&self) {
        let Ok(client) = redis::Client::open(self.url()) else {
            return;
        };
        let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("sl:as:pid:*")
            .query(&mut c)
            .unwrap_or_default();
        for k in keys {
            let pid: Option<i32> = redis::cmd("GET").arg(&k).query(&mut c).unwrap_or(None);
            if let Some(pid) = pid {
                // SAFETY: kill(2) on a pid a controller of this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill_recorded_nodes();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collected output of a child.
#[derive(Default)]
pub struct Output {
    text: Mutex<String>,
    changed: Condvar,
}

impl Output {
    pub fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (bounded) until the output contains `needle`; the output then.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut t = self.text.lock().unwrap();
        while !t.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let text = t.clone();
                drop(t); // not poisoned for the Drop that prints it
                panic!("never printed {needle:?} within {timeout:?}; output:\n{text}");
            }
            t = self.changed.wait_timeout(t, left).unwrap().0;
        }
        t.clone()
    }

    fn collect(self: &Arc<Self>, pipe: impl Read + Send + 'static) {
        let out = self.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(pipe);
            let mut line = String::new();
            while matches!(lines.read_line(&mut line), Ok(n) if n > 0) {
                out.text.lock().unwrap().push_str(&line);
                out.changed.notify_all();
                line.clear();
            }
        });
    }
}

/// A `shardline` child (a controller, or a one-shot command).
pub struct Proc {
    child: Child,
    pub out: Arc<Output>,
    done: bool,
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shardline"))
            .args(args)
            .env_remove("SHARDLINE_DIRECTORY")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the shardline binary");
        let out = Arc::new(Output::default());
        out.collect(child.stdout.take().unwrap());
        out.collect(child.stderr.take().unwrap());
        Proc {
            child,
            out,
            done: false,
        }
    }

    /// The address it logged after `mark` (e.g. "autoscale listening on ").
    pub fn addr_after(&self, mark: &str) -> SocketAddr {
        let text = self.out.wait_for(mark, UP_TIMEOUT);
        let at = text.find(mark).unwrap() + mark.len();
        text[at..]
            .split_whitespace()
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address after {mark:?}"))
    }

    pub fn kill9(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
        self.done = true;
    }

    /// Waits (bounded) for a one-shot command: (success, output).
    pub fn finish(mut self, timeout: Duration) -> (bool, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                self.done = true;
                // The pipes end with the process; give the readers a moment.
                std::thread::sleep(Duration::from_millis(50));
                return (st.success(), self.out.text());
            }
            assert!(
                Instant::now() < deadline,
                "command still running after {timeout:?}:\n{}",
                self.out.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- shardline output ----\n{}", self.out.text());
        }
    }
}

/// Runs `shardline ARGS` to the end (bounded): (success, output).
pub fn shardline(args: &[&str]) -> (bool, String) {
    Proc::spawn(args).finish(Duration::from_secs(30))
}
