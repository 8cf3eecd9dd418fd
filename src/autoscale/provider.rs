//! Providers that act on a decision. `process` runs the policy's command
//! templates (`sh -c`), each on its own thread with a time bound, so a slow
//! `systemctl` never delays an evaluation or the lease; its outcome comes
//! back on a channel. `agones` needs no job: Agones asks the webhook
//! (`autoscale::agones`) and sizes the Fleet itself.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::policy::{fill, ProviderPolicy};

/// How often a running command is checked for its exit.
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Start {
        region: String,
        node: String,
    },
    /// Stop `node` (drained); `pid` when the controller runs it.
    Stop {
        region: String,
        node: String,
        pid: Option<u32>,
    },
}

impl Job {
    pub fn node(&self) -> &str {
        match self {
            Job::Start { node, .. } | Job::Stop { node, .. } => node,
        }
    }
}

/// How a job went.
#[derive(Debug)]
pub struct JobDone {
    pub job: Job,
    /// `Ok(Some(pid))`: a foreground node the controller now runs.
    pub result: Result<Option<u32>, String>,
    pub took: Duration,
}

/// Runs `job` on a new thread; its outcome goes to `done`.
pub fn spawn(provider: ProviderPolicy, directory: String, job: Job, done: Sender<JobDone>) {
    let name = format!("autoscale-{}", job.node());
    let spawned = std::thread::Builder::new().name(name).spawn({
        let job = job.clone();
        let done = done.clone();
        move || {
            let started = Instant::now();
            let result = run(&provider, &directory, &job);
            let _ = done.send(JobDone {
                job,
                result,
                took: started.elapsed(),
            });
        }
    });
    if let Err(e) = spawned {
        let _ = done.send(JobDone {
            job,
            result: Err(format!("cannot start a thread: {e}")),
            took: Duration::ZERO,
        });
    }
}

fn run(provider: &ProviderPolicy, directory: &str, job: &Job) -> Result<Option<u32>, String> {
    let ProviderPolicy::Process {
        scale_up,
        scale_down,
        foreground,
        command_timeout_ms,
    } = provider
    else {
        return Err("this region's provider runs no commands".into());
    };
    let timeout = Duration::from_millis(*command_timeout_ms);
    match job {
        Job::Start { region, node } => {
            let cmd = fill(scale_up, node, region, directory, None);
            tracing::info!(node, command = %redact(&cmd, directory), "starting a node");
            let child = shell(&cmd)?;
            if *foreground {
                let pid = child.id();
                reap_later(child, node.clone());
                return Ok(Some(pid));
            }
            wait_ok(child, timeout, &cmd, directory).map(|()| None)
        }
        Job::Stop { region, node, pid } => match (scale_down, pid) {
            (Some(t), _) => {
                let cmd = fill(t, node, region, directory, *pid);
                tracing::info!(node, command = %redact(&cmd, directory), "stopping a node");
                wait_ok(shell(&cmd)?, timeout, &cmd, directory).map(|()| None)
            }
            (None, Some(pid)) => terminate(*pid, timeout).map(|()| None),
            (None, None) => Err(format!(
                "node {node}: no scale_down command and no process of this controller to stop"
            )),
        },
    }
}

fn shell(cmd: &str) -> Result<Child, String> {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))
}

/// Waits (bounded) for a command; killed and failed past `timeout`.
fn wait_ok(mut child: Child, timeout: Duration, cmd: &str, directory: &str) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("{:?} failed: {st}", redact(cmd, directory))),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{:?} did not finish within {} ms; killed",
                    redact(cmd, directory),
                    timeout.as_millis()
                ));
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => return Err(format!("waiting for {:?}: {e}", redact(cmd, directory))),
        }
    }
}

/// A foreground node runs on; a thread reaps it when it exits.
fn reap_later(mut child: Child, node: String) {
    let _ = std::thread::Builder::new()
        .name(format!("reap-{node}"))
        .spawn(move || match child.wait() {
            Ok(st) => tracing::info!(node, status = %st, "node process exited"),
            Err(e) => tracing::warn!(node, error = %e, "node process lost"),
        });
}

/// SIGTERM (the node's graceful stop), then waits (bounded) until the
/// process is gone; SIGKILL past `timeout`.
fn terminate(pid: u32, timeout: Duration) -> Result<(), String> {
    let pid = pid as libc::pid_t;
    // SAFETY: kill(2) with a pid this controller recorded; no memory involved.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(()); // already gone
        }
        return Err(format!("kill -TERM {pid}: {e}"));
    }
    let deadline = Instant::now() + timeout;
    // SAFETY: signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 {
        if Instant::now() >= deadline {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return Err(format!(
                "process {pid} ignored SIGTERM for {} ms; killed",
                timeout.as_millis()
            ));
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// A command for the log, with the directory URL's password hidden.
fn redact(cmd: &str, directory: &str) -> String {
    cmd.replace(directory, &crate::directory::redacted(directory))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(up: &str, down: Option<&str>, foreground: bool, timeout_ms: u64) -> ProviderPolicy {
        ProviderPolicy::Process {
            scale_up: up.into(),
            scale_down: down.map(Into::into),
            foreground,
            command_timeout_ms: timeout_ms,
        }
    }

    fn start(region: &str, node: &str) -> Job {
        Job::Start {
            region: region.into(),
            node: node.into(),
        }
    }

    #[test]
    fn commands_run_with_their_placeholders_and_status() {
        let dir = std::env::temp_dir().join(format!("sl-provider-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("eu-7");
        let p = process(
            &format!("echo {{region}} > {}/{{node}}", dir.display()),
            Some("exit 3"),
            false,
            5_000,
        );
        assert_eq!(run(&p, "redis://x", &start("eu", "eu-7")), Ok(None));
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "eu\n");
        let stop = Job::Stop {
            region: "eu".into(),
            node: "eu-7".into(),
            pid: None,
        };
        let e = run(&p, "redis://x", &stop).unwrap_err();
        assert!(e.contains("failed"), "{e}");
        let slow = process("sleep 5 # {node}", Some("true"), false, 100);
        let e = run(&slow, "redis://x", &start("eu", "eu-1")).unwrap_err();
        assert!(e.contains("did not finish within 100 ms"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_foreground_node_is_kept_then_stopped_with_sigterm() {
        let p = process("exec sleep 30 # {node}", None, true, 5_000);
        let pid = run(&p, "redis://x", &start("eu", "eu-1"))
            .unwrap()
            .expect("a pid");
        // SAFETY: signal 0 checks existence.
        assert_eq!(unsafe { libc::kill(pid as i32, 0) }, 0, "running");
        let stop = Job::Stop {
            region: "eu".into(),
            node: "eu-1".into(),
            pid: Some(pid),
        };
        assert_eq!(run(&p, "redis://x", &stop), Ok(None));
        // SAFETY: as above.
        assert_ne!(unsafe { libc::kill(pid as i32, 0) }, 0, "stopped");
        assert!(run(&ProviderPolicy::None, "r", &start("eu", "x")).is_err());
    }

    #[test]
    fn passwords_stay_out_of_command_logs() {
        assert_eq!(
            redact("serve --directory redis://:pw@h:1", "redis://:pw@h:1"),
            "serve --directory redis://:***@h:1"
        );
    }
}
