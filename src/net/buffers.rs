//! A shard's bounded pool of outbound buffers.
//!
//! Every /play connection holds one buffer from its upgrade to its close.
//! The pool holds at most `--buffers` buffers of `--write-buffer-bytes` each
//! and never more: when all are in use a new connection is refused with
//! HTTP 503 instead of allocating. Its memory bound is fixed at start-up;
//! the memory itself is allocated when a buffer is first taken and kept
//! (for reuse) once given back, so the pool costs what the most connections
//! ever open at once used — not `--buffers` × `--write-buffer-bytes` from
//! the start. (Allocating them all at start made every buffer resident:
//! glibc writes each allocation's header, touching its page, so a 20,000
//! buffer pool cost 80 MB of RSS with no connection open.)

/// Per-shard buffer pool. Owned by one shard; not shared.
#[derive(Debug)]
pub struct BufferPool {
    /// Buffers given back, reused before any new one is made (most recently
    /// used first: their pages are the ones still in cache).
    free: Vec<Vec<u8>>,
    buffer_bytes: usize,
    /// Buffers made so far; never above `total`.
    made: usize,
    total: usize,
}

impl BufferPool {
    pub fn new(count: usize, buffer_bytes: usize) -> Self {
        Self {
            // The free list's own slots are reserved up front: giving a
            // buffer back never allocates.
            free: Vec::with_capacity(count),
            buffer_bytes,
            made: 0,
            total: count,
        }
    }

    /// A cleared buffer with `buffer_bytes` capacity, or `None` when all
    /// `total` are in use.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        if let Some(buf) = self.free.pop() {
            return Some(buf);
        }
        if self.made == self.total {
            return None;
        }
        self.made += 1;
        Some(Vec::with_capacity(self.buffer_bytes))
    }

    /// Returns a buffer taken from this pool.
    pub fn give_back(&mut self, mut buf: Vec<u8>) {
        debug_assert!(self.free.len() < self.made, "buffer returned twice");
        buf.clear();
        if buf.capacity() != self.buffer_bytes {
            // Defensive: never let a resized buffer change the pool's memory bound.
            buf = Vec::with_capacity(self.buffer_bytes);
        }
        self.free.push(buf);
    }

    /// Buffers that can still be taken (free or not yet made).
    pub fn available(&self) -> usize {
        self.free.len() + (self.total - self.made)
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn buffer_bytes(&self) -> usize {
        self.buffer_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_pool_refuses_instead_of_allocating() {
        let mut pool = BufferPool::new(2, 64);
        assert_eq!(pool.available(), 2);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_eq!(a.capacity(), 64);
        assert!(pool.take().is_none());
        assert_eq!(pool.available(), 0);
        let a_ptr = a.as_ptr();
        pool.give_back(a);
        assert_eq!(pool.available(), 1);
        // The buffer given back is reused, not a new one made.
        let again = pool.take().unwrap();
        assert_eq!(again.as_ptr(), a_ptr);
        assert!(pool.take().is_none());
        pool.give_back(b);
        assert_eq!(pool.available(), 1);
        pool.give_back(again);
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn buffers_are_made_only_when_taken() {
        let pool = BufferPool::new(1_000_000, 4096);
        // A million 4 KiB buffers would be 4 GB; none exists yet.
        assert_eq!(pool.made, 0);
        assert_eq!(pool.available(), 1_000_000);
    }
}
