//! Event-driven wake-ups across threads: a plain thread (the directory
//! agent, the node's main thread, another shard's helper) rings a [`Bell`];
//! a task on a shard's executor awaits it. An eventfd counts rings, so a
//! ring between the task's last look at its queue and its wait is never
//! lost, and many rings while the task runs wake it once.
//!
//! [`Mailbox`] pairs a bounded crossbeam channel with a bell: the sender
//! never blocks (a full box refuses the message, which the caller counts),
//! the receiving task sleeps until there is something to read. This
//! replaces sleep-polling loops: a message is handled microseconds after it
//! is sent, and an idle shard does not wake at all.
//!
//! The shard side reads the eventfd with glommio (an io_uring read that
//! completes when the counter is non-zero), so the wait costs no thread.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

/// The ringing side; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct Bell {
    fd: Arc<OwnedFd>,
}

impl Bell {
    /// A new bell and its eventfd.
    ///
    /// # Errors
    /// When the process is out of file descriptors.
    pub fn new() -> std::io::Result<Bell> {
        // Blocking on purpose: io_uring honours O_NONBLOCK and would
        // answer the waiting read with EAGAIN instead of waiting.
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        Ok(Bell {
            fd: Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }),
        })
    }

    /// Wakes the waiting task (or the next one to wait).
    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd. It
        // can only fail if the counter would overflow (2^64 - 2 rings
        // unread), in which case the task is awake anyway.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// The waiting side, for one task on one executor.
    ///
    /// # Errors
    /// When the descriptor cannot be duplicated (out of descriptors).
    pub fn waiter(&self) -> std::io::Result<BellWaiter> {
        // SAFETY: dup of a valid fd; the result is checked and owned below.
        let dup = unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `dup` is a fresh descriptor; glommio's file owns it now.
        let file = unsafe { glommio::io::BufferedFile::from_raw_fd(dup) };
        Ok(BellWaiter { file })
    }
}

/// The waiting side of a [`Bell`] (on a glommio executor).
#[derive(Debug)]
pub struct BellWaiter {
    file: glommio::io::BufferedFile,
}

impl BellWaiter {
    /// Waits for at least one ring since the last wait; returns how many.
    pub async fn wait(&self) -> u64 {
        match self.file.read_at(0, 8).await {
            Ok(r) if r.len() == 8 => u64::from_ne_bytes(r[..8].try_into().expect("8 bytes")),
            // An eventfd read only fails if the fd is broken: report a ring
            // so the caller looks at its queue and goes on.
            _ => 1,
        }
    }
}

/// A bounded queue from any thread to one task on a shard.
#[derive(Debug)]
pub struct MailboxSender<T> {
    /// Always `Some` but in `drop`, which lets it go before ringing.
    tx: Option<Sender<T>>,
    bell: Bell,
}

impl<T> Clone for MailboxSender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            bell: self.bell.clone(),
        }
    }
}

impl<T> MailboxSender<T> {
    /// Queues `msg` and wakes the receiver; `Err(msg)` when the box is full
    /// (the caller decides: count and drop, or report).
    pub fn send(&self, msg: T) -> Result<(), T> {
        let tx = self.tx.as_ref().expect("present until dropped");
        match tx.try_send(msg) {
            Ok(()) => {
                self.bell.ring();
                Ok(())
            }
            Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => Err(m),
        }
    }
}

impl<T> Drop for MailboxSender<T> {
    /// The last sender gone disconnects the box: the receiver must look
    /// (after the sender is gone, or it would find the box merely empty).
    fn drop(&mut self) {
        drop(self.tx.take());
        self.bell.ring();
    }
}

/// The receiving half; it becomes a [`Mailbox`] on the executor that reads it.
#[derive(Debug)]
pub struct MailboxReceiver<T> {
    rx: Receiver<T>,
    bell: Bell,
}

/// A bounded mailbox with a bell: `capacity` messages at most.
///
/// # Errors
/// When no eventfd can be made.
pub fn mailbox<T>(capacity: usize) -> std::io::Result<(MailboxSender<T>, MailboxReceiver<T>)> {
    let bell = Bell::new()?;
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    Ok((
        MailboxSender {
            tx: Some(tx),
            bell: bell.clone(),
        },
        MailboxReceiver { rx, bell },
    ))
}

impl<T> MailboxReceiver<T> {
    /// Binds the receiver to the calling executor.
    ///
    /// # Errors
    /// When the eventfd cannot be duplicated.
    pub fn on_executor(self) -> std::io::Result<Mailbox<T>> {
        Ok(Mailbox {
            waiter: self.bell.waiter()?,
            rx: self.rx,
        })
    }

    /// A message if one is queued (for plain threads and tests).
    pub fn try_recv(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// The receiving side, bound to one executor.
#[derive(Debug)]
pub struct Mailbox<T> {
    waiter: BellWaiter,
    rx: Receiver<T>,
}

impl<T> Mailbox<T> {
    /// The next message; `None` once every sender is gone and the box is empty.
    pub async fn recv(&self) -> Option<T> {
        loop {
            match self.rx.try_recv() {
                Ok(m) => return Some(m),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {
                    self.waiter.wait().await;
                }
            }
        }
    }

    /// A message if one is queued now.
    pub fn try_recv(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> MailboxSender<T> {
    /// [`MailboxSender::send`] under the name crossbeam's senders use.
    pub fn try_send(&self, msg: T) -> Result<(), T> {
        self.send(msg)
    }
}

/// The answering side of one request (capacity 1): a plain thread answers,
/// the asking task on a shard wakes at once.
#[derive(Debug)]
pub struct Reply<T> {
    /// Always `Some` but in `drop`.
    tx: Option<Sender<T>>,
    bell: Bell,
}

impl<T> Reply<T> {
    /// Answers; `Err` when an answer was already given or nobody waits.
    pub fn try_send(&self, v: T) -> Result<(), T> {
        let tx = self.tx.as_ref().expect("present until dropped");
        match tx.try_send(v) {
            Ok(()) => {
                self.bell.ring();
                Ok(())
            }
            Err(TrySendError::Full(v) | TrySendError::Disconnected(v)) => Err(v),
        }
    }
}

/// The asking side of one request, on a shard's executor.
#[derive(Debug)]
pub struct Answer<T> {
    rx: Receiver<T>,
    waiter: BellWaiter,
}

impl<T> Answer<T> {
    /// The answer, or `None` when none came by `deadline` (or the answering
    /// side dropped the request).
    pub async fn wait_until(&self, deadline: std::time::Instant) -> Option<T> {
        crate::util::time::until(deadline, async {
            loop {
                match self.rx.try_recv() {
                    Ok(v) => return Some(v),
                    Err(TryRecvError::Disconnected) => return None,
                    Err(TryRecvError::Empty) => {
                        self.waiter.wait().await;
                    }
                }
            }
        })
        .await
        .flatten()
    }
}

impl<T> Drop for Reply<T> {
    /// A request dropped unanswered wakes its asker, who then sees it gone.
    fn drop(&mut self) {
        drop(self.tx.take());
        self.bell.ring();
    }
}

/// One request's answer channel, asked from a shard's executor.
///
/// # Errors
/// When no eventfd can be made.
pub fn request<T>() -> std::io::Result<(Reply<T>, Answer<T>)> {
    let bell = Bell::new()?;
    let waiter = bell.waiter()?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    Ok((Reply { tx: Some(tx), bell }, Answer { rx, waiter }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_thread_wakes_a_waiting_task_without_polling() {
        let (tx, rx) = mailbox::<u32>(4).unwrap();
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(move || async move {
                let mb = rx.on_executor().unwrap();
                let mut got = Vec::new();
                let started = Instant::now();
                while let Some(m) = mb.recv().await {
                    got.push(m);
                }
                (got, started.elapsed())
            })
            .unwrap();
        let sender = std::thread::spawn(move || {
            for i in 0..3 {
                std::thread::sleep(Duration::from_millis(20));
                tx.send(i).unwrap();
            }
            // More than the capacity without a reader: refused, not blocked.
            drop(tx);
        });
        sender.join().unwrap();
        let (got, _elapsed) = handle.join().unwrap();
        assert_eq!(got, vec![0, 1, 2]);
    }

    #[test]
    fn a_full_mailbox_refuses_instead_of_blocking() {
        let (tx, rx) = mailbox::<u32>(2).unwrap();
        assert!(tx.send(1).is_ok() && tx.send(2).is_ok());
        assert_eq!(tx.send(3), Err(3));
        assert_eq!(rx.try_recv(), Some(1));
    }
}
