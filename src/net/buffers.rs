//! A shard's pool of preallocated outbound buffers.
//!
//! Every connection holds one buffer from its upgrade to its close. The pool
//! is allocated at shard start (`--buffers` × `--write-buffer-bytes`; the
//! kernel backs each page when first written, so idle capacity costs address
//! space, not RAM) and never grows: when it is empty a new connection is
//! refused with HTTP 503 instead of allocating.

/// Per-shard buffer pool. Owned by one shard; not shared.
#[derive(Debug)]
pub struct BufferPool {
    free: Vec<Vec<u8>>,
    buffer_bytes: usize,
    total: usize,
}

impl BufferPool {
    pub fn new(count: usize, buffer_bytes: usize) -> Self {
        let free = (0..count)
            .map(|_| Vec::with_capacity(buffer_bytes))
            .collect();
        Self {
            free,
            buffer_bytes,
            total: count,
        }
    }

    /// A cleared buffer with `buffer_bytes` capacity, or `None` when all are in use.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        self.free.pop()
    }

    /// Returns a buffer taken from this pool.
    pub fn give_back(&mut self, mut buf: Vec<u8>) {
        debug_assert!(self.free.len() < self.total, "buffer returned twice");
        buf.clear();
        if buf.capacity() != self.buffer_bytes {
            // Defensive: never let a resized buffer change the pool's memory bound.
            buf = Vec::with_capacity(self.buffer_bytes);
        }
        self.free.push(buf);
    }

    pub fn available(&self) -> usize {
        self.free.len()
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
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_eq!(a.capacity(), 64);
        assert!(pool.take().is_none());
        pool.give_back(a);
        assert_eq!(pool.available(), 1);
        pool.give_back(b);
        assert_eq!(pool.available(), pool.total());
    }
}
