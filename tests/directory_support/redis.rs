//! Real `redis-server` and `redis-sentinel` processes for the directory
//! tests: each in its own temporary directory (removed on drop, on every
//! path), in its own process group (killed as a group on drop) and set to
//! die with the test's thread (PR_SET_PDEATHSIG) should the test process
//! itself be killed.
//!
//! Ports: the process binds its port itself. A port is chosen at random
//! below the kernel's ephemeral range, the process is started on it, and
//! the port is taken as ours once the process answers PING there; a
//! process that could not bind (the port was in use) has exited, and
//! another port is tried. Nothing is bound and released to pick a port.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Generous bound for a process to start answering (a loaded 2-core
/// machine can be slow to exec and load).
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Ports tried before giving up (each fails only when another process
/// holds it).
const PORT_TRIES: usize = 40;
/// Where ports are picked: below Linux's default ephemeral range
/// (32768–60999), so that connections' local ports rarely hold them.
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// Fails the test, naming what is missing, when `bin` is not installed.
pub fn require(bin: &str) {
    let ok = Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{bin} is not installed: the directory tests need Debian's redis-server and \
         redis-sentinel (`apt-get install redis-server redis-sentinel`; \
         scripts/setup-test-tools.sh installs them)"
    );
}

/// A random port from [`PORT_RANGE`].
fn random_port() -> u16 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).expect("OS randomness");
    PORT_RANGE.start + u16::from_le_bytes(b) % (PORT_RANGE.end - PORT_RANGE.start)
}

/// A temp dir removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).expect("OS randomness");
        let dir = std::env::temp_dir().join(format!(
            "shardline-{tag}-{}-{:016x}",
            std::process::id(),
            u64::from_le_bytes(b)
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One `redis-server` or `redis-sentinel` process.
pub struct Proc {
    child: Option<Child>,
    pub port: u16,
    bin: &'static str,
    /// The config file (written for each port tried).
    conf: PathBuf,
    conf_text: String,
    dir: TempDir,
}

impl Proc {
    /// A redis-server without persistence; `extra` are more config lines.
    pub fn server(extra: &[String]) -> Proc {
        require("redis-server");
        let mut lines = vec![
            "save \"\"".to_owned(),
            "appendonly no".to_owned(),
            "protected-mode no".to_owned(),
        ];
        lines.extend_from_slice(extra);
        Proc::start("redis-server", "redis", lines)
    }

    /// A redis-sentinel with `lines` (its `sentinel monitor …` and the rest).
    pub fn sentinel(lines: Vec<String>) -> Proc {
        require("redis-sentinel");
        Proc::start("redis-sentinel", "sentinel", lines)
    }

    fn start(bin: &'static str, tag: &str, lines: Vec<String>) -> Proc {
        let dir = TempDir::new(tag);
        let mut p = Proc {
            child: None,
            port: 0,
            bin,
            conf: dir.0.join(format!("{tag}.conf")),
            conf_text: lines.join("\n"),
            dir,
        };
        for _ in 0..PORT_TRIES {
            p.port = random_port();
            if p.spawn() {
                return p;
            }
        }
        panic!("{bin} could not bind any of {PORT_TRIES} ports tried");
    }

    /// Starts the process on `self.port`; `false` when it exited (the port
    /// was taken).
    fn spawn(&mut self) -> bool {
        assert!(self.child.is_none(), "{} already running", self.bin);
        let text = format!(
            "port {}\nbind 127.0.0.1\ndir {}\nlogfile \"\"\n{}\n",
            self.port,
            self.dir.0.display(),
            self.conf_text
        );
        std::fs::write(&self.conf, text).expect("write the config");
        let mut cmd = Command::new(self.bin);
        cmd.arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: prctl(2) only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("wait") {
                self.child = None;
                assert!(
                    !status.success(),
                    "{} exited at once with success",
                    self.bin
                );
                return false;
            }
            if self.ping() {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer on port {} within {START_TIMEOUT:?}",
                self.bin,
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            return false;
        }
        self.try_cmd(&["PING"])
            .is_ok_and(|v| v == redis::Value::SimpleString("PONG".into()))
    }

    /// Starts it again on the same port (after [`Proc::kill9`]).
    pub fn restart(&mut self) {
        assert!(
            self.spawn(),
            "{} could not bind port {} again",
            self.bin,
            self.port
        );
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) of our child's process group.
        unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
        child.wait().expect("reap");
    }

    /// SIGSTOP (`true`) or SIGCONT: it keeps its data but answers nobody.
    pub fn freeze(&self, stop: bool) {
        let pid = self.child.as_ref().expect("running").id() as libc::pid_t;
        let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    pub fn try_cmd(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(self.url())?;
        let mut c = client.get_connection_with_timeout(Duration::from_secs(2))?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut c)
    }

    /// A command that must succeed.
    pub fn cmd(&self, args: &[&str]) -> redis::Value {
        self.try_cmd(args)
            .unwrap_or_else(|e| panic!("{} {args:?}: {e}", self.bin))
    }

    /// A string (or nil) answer.
    pub fn get(&self, key: &str) -> Option<String> {
        match self.cmd(&["GET", key]) {
            redis::Value::Nil => None,
            redis::Value::BulkString(b) => Some(String::from_utf8(b).expect("UTF-8")),
            other => panic!("GET {key}: {other:?}"),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) of our child's process group; a stopped one
            // is continued so it can die.
            unsafe {
                libc::kill(-(c.id() as libc::pid_t), libc::SIGKILL);
                libc::kill(-(c.id() as libc::pid_t), libc::SIGCONT);
            }
            let _ = c.wait();
        }
    }
}

/// The name the sentinels monitor.
pub const MASTER: &str = "sl";
/// The replication user: replicas authenticate as it, so the test can cut
/// replication (see [`Sentinels::cut_replication`]).
const REPL_USER: &str = "user repl on >replpw +psync +replconf +ping";

/// A Redis Sentinel deployment on loopback: a primary, one replica and
/// three sentinels (quorum 2).
pub struct Sentinels {
    pub primary: Proc,
    pub replica: Proc,
    pub sentinels: Vec<Proc>,
}

impl Sentinels {
    /// `down_after_ms`: how long the primary may be silent before a
    /// sentinel deems it down (1000 is the least sensible value).
    pub fn start(down_after_ms: u64) -> Sentinels {
        require("redis-server");
        require("redis-sentinel");
        let primary = Proc::server(&[REPL_USER.to_owned()]);
        let replica = Proc::server(&[
            REPL_USER.to_owned(),
            format!("replicaof 127.0.0.1 {}", primary.port),
            "masteruser repl".to_owned(),
            "masterauth replpw".to_owned(),
        ]);
        let sentinels = (0..3)
            .map(|_| {
                Proc::sentinel(vec![
                    format!("sentinel monitor {MASTER} 127.0.0.1 {} 2", primary.port),
                    format!("sentinel down-after-milliseconds {MASTER} {down_after_ms}"),
                    format!("sentinel failover-timeout {MASTER} 10000"),
                    format!("sentinel parallel-syncs {MASTER} 1"),
                ])
            })
            .collect();
        let set = Sentinels {
            primary,
            replica,
            sentinels,
        };
        // A failover needs every sentinel to know the replica and the two
        // other sentinels (they find each other through the primary every
        // 2 s, and the replica through its INFO every 10 s).
        let deadline = Instant::now() + Duration::from_secs(30);
        for s in &set.sentinels {
            loop {
                let known = |what: &str| match s.cmd(&["SENTINEL", what, MASTER]) {
                    redis::Value::Array(v) => v.len(),
                    _ => 0,
                };
                if known("sentinels") == 2 && known("replicas") == 1 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the sentinels did not find each other and the replica within 30 s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        set.wait_replica_link(true);
        set
    }

    /// `--directory` for the nodes and `shardline fleet`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.sentinels.iter().map(Proc::addr).collect();
        format!("redis+sentinel://{}/{MASTER}", hosts.join(","))
    }

    fn wait_replica_link(&self, up: bool) {
        let want = if up {
            "master_link_status:up"
        } else {
            "master_link_status:down"
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // A loaded machine may let one INFO time out: ask again.
            if let Ok(redis::Value::BulkString(b)) = self.replica.try_cmd(&["INFO", "replication"])
            {
                if String::from_utf8_lossy(&b).contains(want) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "replica never reported {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// From now on the primary's writes do not reach the replica: the
    /// replication user is disabled and the replica's link cut (it keeps
    /// retrying, refused). The sentinels still see a healthy replica they
    /// can promote — whatever the primary accepts from now on is lost when
    /// it dies, as an asynchronous replica loses a primary's last writes.
    pub fn cut_replication(&self) {
        self.primary.cmd(&["ACL", "SETUSER", "repl", "off"]);
        self.primary.cmd(&["CLIENT", "KILL", "TYPE", "replica"]);
        self.wait_replica_link(false);
    }

    /// Waits until every sentinel names the replica as the primary and it
    /// says so itself.
    pub fn wait_promoted(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let want = self.replica.port.to_string();
        loop {
            let named = self.sentinels.iter().all(|s| {
                match s.try_cmd(&["SENTINEL", "get-master-addr-by-name", MASTER]) {
                    Ok(redis::Value::Array(v)) => {
                        v.get(1) == Some(&redis::Value::BulkString(want.clone().into_bytes()))
                    }
                    _ => false,
                }
            });
            let role = matches!(
                self.replica.try_cmd(&["ROLE"]),
                Ok(redis::Value::Array(v)) if v.first() == Some(&redis::Value::BulkString(b"master".to_vec()))
            );
            if named && role {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinels did not promote the replica within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
