//! Child processes that die with their test.
//!
//! Every process a test starts (a server, redis-server, Prometheus, npm and
//! node, a browser, a CLI command) goes through [`Proc`]:
//!
//! - it leads a process group of its own, and everything it starts stays in
//!   that group; the group is killed (SIGKILL) when the `Proc` is dropped —
//!   at the end of the test, and on a panic, since unwinding drops it;
//! - it gets `PR_SET_PDEATHSIG`, so it dies even when the test process
//!   itself is killed (SIGKILL, a harness timeout): a program that starts no
//!   children of its own gets SIGKILL straight away ([`Proc::spawn`]); a
//!   program that starts children (npm → node → servers, playwright →
//!   Chromium) runs under a small `sh` reaper that leads the group and, on
//!   SIGTERM from the kernel, kills the whole group ([`Proc::spawn_tree`]);
//! - every wait on it has a bound ([`Proc::wait_within`],
//!   [`output_within`]).
//!
//! The kernel sends the parent-death signal when the *thread* that spawned
//! the child ends: spawn from the thread that owns the `Proc` (the test's
//! own thread), never from a short-lived helper thread.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

/// How often a bounded wait looks at the child. Not a wait by itself.
const WAIT_POLL: Duration = Duration::from_millis(10);

/// The reaper `spawn_tree` puts above a program that starts children: it
/// runs the program ("$@") in the background and waits for it; SIGTERM
/// (sent by the kernel when the test thread dies), SIGHUP or SIGINT kill the
/// whole process group, the program's descendants included.
const REAPER: &str = r#"trap 'kill -KILL 0' TERM HUP INT
"$@" &
wait $!
"#;

/// A child process leading its own process group; the group is killed when
/// this is dropped.
pub struct Proc {
    child: Child,
    /// What it is, for messages.
    what: String,
    /// Set once the leader has been reaped; the group is never signalled
    /// after that (its id could be reused).
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `cmd` (a program that starts no children of its own) as the
    /// leader of a new process group, with SIGKILL as its parent-death
    /// signal.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Proc> {
        Self::start(cmd, libc::SIGKILL)
    }

    /// A command that runs `program` under the reaper; add its arguments,
    /// environment and stdio to the returned command, then [`Proc::spawn_tree`].
    pub fn tree_command(program: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", REAPER, "shardline-test-reaper", program]);
        cmd
    }

    /// Starts a command made by [`Proc::tree_command`]: the reaper leads the
    /// group and gets SIGTERM (which it turns into SIGKILL for the group)
    /// when the spawning thread dies.
    pub fn spawn_tree(cmd: &mut Command) -> std::io::Result<Proc> {
        Self::start(cmd, libc::SIGTERM)
    }

    fn start(cmd: &mut Command, death_signal: libc::c_int) -> std::io::Result<Proc> {
        let what = format!("{cmd:?}");
        // SAFETY: getpid cannot fail.
        let parent = unsafe { libc::getpid() };
        cmd.process_group(0);
        // SAFETY: only async-signal-safe calls (prctl, getppid) between fork
        // and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    death_signal as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the prctl: then no signal
                // would ever come.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("the test process is gone"));
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(Proc {
            child,
            what,
            status: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    pub fn stdin(&mut self) -> Option<&mut std::process::ChildStdin> {
        self.child.stdin.as_mut()
    }

    pub fn take_stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// Sends `sig` to the leader only (as `kill PID` would).
    pub fn signal(&self, sig: libc::c_int) {
        assert!(self.status.is_none(), "{} already exited", self.what);
        // SAFETY: kill(2) on our own unreaped child: the pid is still ours.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(
            rc,
            0,
            "kill -{sig} {}: {}",
            self.child.id(),
            std::io::Error::last_os_error()
        );
    }

    /// The exit status, if the leader has exited (then the rest of its
    /// group is killed and the leader reaped). Does not block.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        if !self.leader_exited() {
            return None;
        }
        self.kill_group();
        let status = self.child.wait().expect("reap a child that exited");
        self.status = Some(status);
        self.status
    }

    /// Waits at most `timeout` for the leader to exit.
    pub fn wait_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(WAIT_POLL);
        }
    }

    /// SIGKILL to the whole group, then reaps the leader. Idempotent.
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        self.kill_group();
        let status = self.child.wait().expect("reap a killed child");
        self.status = Some(status);
        status
    }

    /// Whether the leader has exited, without reaping it (WNOWAIT): while
    /// it is unreaped its pid, which is the group's id, cannot be reused.
    fn leader_exited(&self) -> bool {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on our own child, writing into `info`.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                self.child.id() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is set by waitid when a child changed state; it
        // stays 0 (zeroed above) when none did.
        rc == 0 && unsafe { info.si_pid() } != 0
    }

    fn kill_group(&self) {
        // SAFETY: the leader is not reaped yet, so the group id is ours.
        // ESRCH (the group is already empty) is fine.
        unsafe { libc::killpg(self.child.id() as libc::pid_t, libc::SIGKILL) };
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill();
        }
    }
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proc({} pid {})", self.what, self.child.id())
    }
}

/// Reads a pipe to its end on a thread.
pub fn collect(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Runs `cmd` to completion with stdout and stderr captured, like
/// `Command::output`, but in its own process group and killed (group and
/// all) past `timeout`, which fails the test with what it printed.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    try_output_within(cmd, timeout).unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// [`output_within`], with the error when the program cannot be started
/// (not installed, say) returned instead of failing the test.
pub fn try_output_within(cmd: &mut Command, timeout: Duration) -> std::io::Result<Output> {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut p = Proc::spawn(cmd)?;
    Ok(finish_within(&mut p, timeout))
}

/// Waits (bounded) for a started `Proc` with piped output; see [`output_within`].
pub fn finish_within(p: &mut Proc, timeout: Duration) -> Output {
    let out = collect(p.take_stdout());
    let err = collect(p.take_stderr());
    let Some(status) = p.wait_within(timeout) else {
        // The group is dead now, so the pipes reach their end.
        p.kill();
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        panic!(
            "{p:?} did not finish within {timeout:?} (killed);\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        )
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// A short description of how a process ended: "exit 0", "signal 9".
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => format!("{status}"),
    }
}

/// Whether `pid` is gone or a zombie (dead but not reaped by whoever
/// inherited it): either way it runs no more.
pub fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            matches!(state, Some("Z") | Some("X"))
        }
    }
}

/// Everything a child printed on the pipes attached to it, as it comes, for
/// bounded waits on a line ("listening on …").
#[derive(Clone, Default)]
pub struct Captured {
    inner: std::sync::Arc<(std::sync::Mutex<(String, usize)>, std::sync::Condvar)>,
}

impl Captured {
    /// Reads `pipe` on a thread, appending to the text, until it ends.
    pub fn attach(&self, pipe: Option<impl Read + Send + 'static>) {
        let Some(pipe) = pipe else { return };
        let inner = self.inner.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(pipe);
            let mut line = String::new();
            loop {
                line.clear();
                match lines.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        inner.0.lock().unwrap().0.push_str(&line);
                        inner.1.notify_all();
                    }
                }
            }
            inner.0.lock().unwrap().1 += 1;
            inner.1.notify_all();
        });
    }

    pub fn text(&self) -> String {
        self.inner.0.lock().unwrap().0.clone()
    }

    /// Waits until `check` finds what it wants in the text (returned), or
    /// `pipes` pipes have ended (Err: the child is gone), or `timeout`
    /// passes (Err). The error holds the text so far.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        pipes: usize,
        mut check: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        let mut st = self.inner.0.lock().unwrap();
        loop {
            if let Some(v) = check(&st.0) {
                return Ok(v);
            }
            if st.1 >= pipes {
                return Err(format!("the output ended; it was:\n{}", st.0));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("not within {timeout:?}; output so far:\n{}", st.0));
            }
            st = self.inner.1.wait_timeout(st, left).unwrap().0;
        }
    }
}

/// The text after `mark` up to the next whitespace, parsed as a socket
/// address: how a child that bound port 0 tells which port it got.
pub fn address_after(text: &str, mark: &str) -> Option<std::net::SocketAddr> {
    let at = text.find(mark)? + mark.len();
    text[at..]
        .split(|c: char| c.is_whitespace() || c == '"')
        .find(|t| !t.is_empty())?
        .parse()
        .ok()
}
