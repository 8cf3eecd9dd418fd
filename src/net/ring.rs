//! The shard's own io_uring, beside glommio's: the game connections' reads
//! and writes, batched.
//!
//! glommio does socket I/O with one plain `recv`/`send` syscall per call
//! after a readiness poll; a shard with a thousand players made two
//! syscalls per player per tick that way. Here:
//! - every connection has one **multishot receive** armed with buffers from
//!   a **provided-buffer ring**: the kernel fills a buffer whenever data
//!   arrives and posts a completion, with no syscall of ours per read;
//! - the ring is set up with `DEFER_TASKRUN`, so that completion work runs
//!   only when the shard asks for it: one `io_uring_enter` per slot reaps
//!   every connection's reads at once, and none at all when nothing
//!   arrived (the kernel flags pending work in the shared ring);
//! - a slot's writes are one send SQE per connection, submitted together
//!   with one `io_uring_enter`; sockets are blocking for the ring, so a
//!   send the socket cannot take at once waits in the kernel (its bytes
//!   stay put in the connection's outbound buffer) instead of failing.
//!
//! Memory: the SQ and CQ rings (`entries` × 64 B + `cq_entries` × 16 B,
//! charged to the cgroup, not to the locked-memory limit), the provided
//! buffers (`recv_buffers` × `recv_buffer_bytes`, plain memory), and the
//! buffer ring itself (16 B per buffer, page-aligned).

use std::io;
use std::os::fd::RawFd;

use io_uring::types::{BufRingEntry, Fd};
use io_uring::{cqueue, opcode, squeue, IoUring};

/// The provided-buffer group id of the receive buffers.
const RECV_GROUP: u16 = 0;

/// Sizes of the ring (from `--ring-entries`, `--recv-buffers`,
/// `--recv-buffer-bytes`).
#[derive(Debug, Clone, Copy)]
pub struct RingConfig {
    /// Submission queue entries (a power of two; the kernel rounds up).
    pub entries: u32,
    /// Receive buffers (a power of two, at most 32,768).
    pub recv_buffers: u16,
    /// Bytes per receive buffer.
    pub recv_buffer_bytes: u32,
}

/// One completion, copied out of the ring.
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    pub user_data: u64,
    pub result: i32,
    pub flags: u32,
}

impl Completion {
    /// A send done outside the ring (`--io-writes syscall`), handled like
    /// the ring's own.
    pub fn sent(user_data: u64, result: i32) -> Completion {
        Completion {
            user_data,
            result,
            flags: 0,
        }
    }

    /// The provided buffer this completion filled, if any.
    pub fn buffer(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }

    /// A multishot request stays armed after this completion.
    pub fn more(&self) -> bool {
        cqueue::more(self.flags)
    }
}

/// The receive buffers and the ring that hands them to the kernel.
struct ProvidedBuffers {
    /// Page-aligned array of `count` ring entries (mmap'd).
    ring: *mut BufRingEntry,
    ring_bytes: usize,
    count: u16,
    size: u32,
    /// Local copy of the tail we publish.
    tail: u16,
    memory: Vec<u8>,
}

impl ProvidedBuffers {
    fn new(count: u16, size: u32) -> io::Result<Self> {
        assert!(
            count.is_power_of_two(),
            "buffer count must be a power of two"
        );
        let ring_bytes = usize::from(count) * std::mem::size_of::<BufRingEntry>();
        // SAFETY: anonymous private mapping; the result is checked.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut bufs = ProvidedBuffers {
            ring: ring.cast(),
            ring_bytes,
            count,
            size,
            tail: 0,
            memory: vec![0; usize::from(count) * size as usize],
        };
        for bid in 0..count {
            bufs.push(bid);
        }
        bufs.publish();
        Ok(bufs)
    }

    fn mask(&self) -> u16 {
        self.count - 1
    }

    /// Puts buffer `bid` at the tail (published by [`Self::publish`]).
    fn push(&mut self, bid: u16) {
        let at = usize::from(self.tail & self.mask());
        let addr = self.memory.as_ptr() as u64 + u64::from(bid) * u64::from(self.size);
        // SAFETY: `at` < count, within the mapping; the kernel reads only
        // entries between its head and our published tail, and this one is
        // beyond the published tail.
        let entry = unsafe { &mut *self.ring.add(at) };
        entry.set_addr(addr);
        entry.set_len(self.size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's reserved field
        // (the kernel's layout); written with release ordering so the
        // entries are visible before the tail.
        unsafe {
            let tail = BufRingEntry::tail(self.ring) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }

    fn slice(&mut self, bid: u16, len: usize) -> &mut [u8] {
        let start = usize::from(bid) * self.size as usize;
        &mut self.memory[start..start + len.min(self.size as usize)]
    }
}

impl Drop for ProvidedBuffers {
    fn drop(&mut self) {
        // SAFETY: unmaps our own mapping; the ring that used it is gone
        // (the field order of `Ring` drops the io_uring first).
        unsafe {
            libc::munmap(self.ring.cast(), self.ring_bytes);
        }
    }
}

/// The shard's ring.
pub struct Ring {
    uring: IoUring,
    bufs: ProvidedBuffers,
    /// SQEs pushed since the last submit.
    queued: usize,
}

impl Ring {
    /// Sets up the ring and registers the receive buffers.
    ///
    /// # Errors
    /// When the kernel lacks a feature used here (multishot receive and
    /// buffer rings: Linux 6.0; `DEFER_TASKRUN`: 6.1) or memory is short.
    pub fn new(cfg: RingConfig) -> io::Result<Ring> {
        let uring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .setup_coop_taskrun()
            .setup_submit_all()
            .setup_cqsize(cfg.entries.saturating_mul(4))
            .setup_clamp()
            .build(cfg.entries)?;
        let bufs = ProvidedBuffers::new(cfg.recv_buffers, cfg.recv_buffer_bytes)?;
        // SAFETY: the buffer ring and its buffers live in `bufs`, which
        // outlives the registration (unregistered with the ring's drop).
        unsafe {
            uring.submitter().register_buf_ring_with_flags(
                bufs.ring as u64,
                bufs.count,
                RECV_GROUP,
                0,
            )?;
        }
        Ok(Ring {
            uring,
            bufs,
            queued: 0,
        })
    }

    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry's buffers are owned by the caller and
            // stay valid until its completion (documented per op below).
            let pushed = unsafe { self.uring.submission().push(&entry) };
            match pushed {
                Ok(()) => {
                    self.queued += 1;
                    return Ok(());
                }
                Err(_) => self.submit()?,
            }
        }
    }

    /// Arms a multishot receive on `fd`; its completions carry `user_data`.
    pub fn recv_multishot(&mut self, fd: RawFd, user_data: u64) -> io::Result<()> {
        let e = opcode::RecvMulti::new(Fd(fd), RECV_GROUP)
            .build()
            .user_data(user_data);
        self.push(e)
    }

    /// Sends `len` bytes at `buf` on `fd`.
    ///
    /// # Safety
    /// `buf..buf+len` must stay valid and unchanged until this send's
    /// completion is reaped.
    pub unsafe fn send(
        &mut self,
        fd: RawFd,
        buf: *const u8,
        len: u32,
        user_data: u64,
    ) -> io::Result<()> {
        let e = opcode::Send::new(Fd(fd), buf, len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data);
        self.push(e)
    }

    /// Cancels the request with `target` user data (its completion follows).
    pub fn cancel(&mut self, target: u64, user_data: u64) -> io::Result<()> {
        let e = opcode::AsyncCancel::new(target)
            .build()
            .user_data(user_data);
        self.push(e)
    }

    /// Submits what is queued (one `io_uring_enter`), running deferred
    /// completion work too; no syscall when there is nothing to do.
    pub fn submit(&mut self) -> io::Result<()> {
        let pending_work = {
            let mut sq = self.uring.submission();
            sq.sync();
            sq.taskrun() || sq.cq_overflow()
        };
        if self.queued == 0 && !pending_work {
            return Ok(());
        }
        self.queued = 0;
        match self.uring.submitter().submit() {
            Ok(_) => Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    || e.raw_os_error() == Some(libc::EINTR) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Submits what is queued (running deferred completion work) and
    /// appends every completion to `out`.
    pub fn reap(&mut self, out: &mut Vec<Completion>) -> io::Result<()> {
        self.submit()?;
        let mut cq = self.uring.completion();
        cq.sync();
        out.extend(cq.map(|c| Completion {
            user_data: c.user_data(),
            result: c.result(),
            flags: c.flags(),
        }));
        Ok(())
    }

    /// The bytes a receive completion put in buffer `bid`.
    pub fn received(&mut self, bid: u16, len: usize) -> &mut [u8] {
        self.bufs.slice(bid, len)
    }

    /// Gives buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        self.bufs.push(bid);
        self.bufs.publish();
    }

    /// Bytes of memory the ring's buffers take (for the start-up log).
    pub fn buffer_bytes(&self) -> usize {
        self.bufs.memory.len() + self.bufs.ring_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    fn ring() -> Ring {
        Ring::new(RingConfig {
            entries: 64,
            recv_buffers: 16,
            recv_buffer_bytes: 1024,
        })
        .expect("io_uring with multishot receive and buffer rings")
    }

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    /// Reaps until `want` completions arrived or `bound` passed.
    fn reap_until(r: &mut Ring, out: &mut Vec<Completion>, want: usize, bound: Duration) {
        let end = Instant::now() + bound;
        while out.len() < want && Instant::now() < end {
            r.reap(out).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_multishot_receive_delivers_every_write_in_provided_buffers() {
        let mut r = ring();
        let (mut c, s) = pair();
        r.recv_multishot(s.as_raw_fd(), 7).unwrap();
        r.submit().unwrap();
        c.write_all(b"hello").unwrap();
        let mut got = Vec::new();
        reap_until(&mut r, &mut got, 1, Duration::from_secs(5));
        let first = got[0];
        assert_eq!((first.user_data, first.result), (7, 5));
        assert!(first.more(), "still armed");
        let bid = first.buffer().expect("a provided buffer");
        assert_eq!(r.received(bid, 5), b"hello");
        r.recycle(bid);
        drop(c);
        got.clear();
        reap_until(&mut r, &mut got, 1, Duration::from_secs(5));
        assert_eq!(got[0].result, 0, "the end of the stream ends it");
        assert!(!got[0].more());
    }

    #[test]
    fn a_send_parked_on_a_full_socket_completes_after_shutdown() {
        let mut r = ring();
        let (_c, s) = pair();
        let big = vec![7u8; 1 << 20];
        // Blocking socket: each send takes what the socket buffer holds
        // (a short count); once it is full, the next send is parked.
        let mut got = Vec::new();
        let mut sent_total = 0usize;
        let parked = loop {
            // SAFETY: `big` outlives every send (reaped below).
            unsafe {
                r.send(s.as_raw_fd(), big.as_ptr(), big.len() as u32, 9)
                    .unwrap()
            };
            got.clear();
            reap_until(&mut r, &mut got, 1, Duration::from_millis(200));
            match got.first() {
                Some(c) if c.result > 0 => sent_total += c.result as usize,
                Some(c) => panic!("send failed: {}", c.result),
                None => break true,
            }
            assert!(sent_total < 256 << 20, "the socket never filled");
        };
        assert!(parked);
        // SAFETY: shutdown of a valid socket.
        unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_RDWR) };
        reap_until(&mut r, &mut got, 1, Duration::from_secs(5));
        assert_eq!(got.len(), 1, "the parked send completed after the shutdown");
        assert_eq!(got[0].user_data, 9);
    }
}
