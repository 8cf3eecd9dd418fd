//! A real `redis-server` for the fleet tests: no persistence, on 127.0.0.1,
//! in its own process group (killed with the test, see [`super::procs`]).
//! A machine without redis-server fails the test, naming the package.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::procs::{Captured, Proc};

/// Bound on redis-server's start (it is up in milliseconds).
const REDIS_START_TIMEOUT: Duration = Duration::from_secs(15);
/// redis-server cannot bind port 0 (`--port 0` means "no TCP"): a free port
/// is picked, and if another process takes it before redis-server binds it,
/// redis-server says so and exits, and another port is tried.
const PORT_ATTEMPTS: usize = 10;

/// Fails the test, naming what to install, when `program` cannot be run.
pub fn require(program: &str, package: &str) {
    let found = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = found {
        panic!(
            "`{program}` cannot be run ({e}): this test needs it. Install Debian's package: \
             apt-get install -y {package} (bash scripts/test.sh does, as root)"
        );
    }
}

/// A `redis-server` child on 127.0.0.1:`port`.
pub struct Redis {
    child: Option<Proc>,
    log: Captured,
    port: u16,
}

impl Redis {
    /// Starts redis-server on a free port; fails the test when it is not
    /// installed.
    pub fn start() -> Redis {
        require("redis-server", "redis-server");
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let mut r = Redis {
                child: None,
                log: Captured::default(),
                port,
            };
            match r.try_start() {
                Ok(()) => return r,
                Err(e) if e.contains("Address already in use") => last = e,
                Err(e) => panic!("redis-server did not start: {e}"),
            }
        }
        panic!("redis-server found no free port in {PORT_ATTEMPTS} attempts: {last}")
    }

    fn try_start(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "redis already running");
        self.log = Captured::default();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = Proc::spawn(&mut cmd).expect("spawn redis-server");
        self.log.attach(child.take_stdout());
        self.log.attach(child.take_stderr());
        let ready = self.log.wait_for(REDIS_START_TIMEOUT, 2, |t| {
            t.to_ascii_lowercase()
                .contains("ready to accept connections")
                .then_some(())
        });
        self.child = Some(child);
        if ready.is_err() {
            self.child.take();
        }
        ready
    }

    /// Starts it again on the same port (after [`Redis::kill9`]).
    pub fn restart(&mut self) {
        self.try_start()
            .unwrap_or_else(|e| panic!("redis-server did not restart: {e}"));
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("redis running");
        child.kill();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// What redis-server printed.
    pub fn log(&self) -> String {
        self.log.text()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis running").pid()
    }

    /// SIGSTOP (`true`) or SIGCONT: Redis keeps its data but answers
    /// nobody meanwhile.
    pub fn freeze(&self, stop: bool) {
        let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        self.child.as_ref().expect("redis running").signal(sig);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        // A frozen redis-server dies of SIGKILL too (Proc's drop).
        self.child.take();
    }
}
