//! Sockets, below any shard logic: the shard's io_uring and the I/O driver
//! that owns game connections, and the building blocks of the accept path.
//!
//! - [`ring`]: the shard's own io_uring: multishot receives into provided
//!   buffers, batched sends, one `io_uring_enter` per slot.
//! - [`driver`]: the only writer of every upgraded game connection: reads,
//!   frames, hands messages to the shard core, writes what it asks.
//! - [`outbound`]: one connection's bounded, pre-framed outbound bytes.
//! - [`buffers`]: the shard's bounded outbound buffer pool.
//! - [`admission`]: the node-wide `--max-connections` budget.
//! - [`http`]: the upgrade request head (routing by path, plain HTTP
//!   replies, the 101 answer).
//! - [`fenced`]: a socket reader fenced at frame boundaries (the load
//!   generator's client handshake; before the upgrade).
//! - [`echo_worker`]: the shard's /echo thread (epoll, pinned on the
//!   shard's core; the shard answers the upgrade and hands it the socket).
//! - [`echo_conn`]: one /echo connection on that thread: one read and one
//!   write per batch of frames, the close handshake, silence, slow readers.
//! - [`echo_frames`]: /echo's frame logic, pure: frames in, answers out.
//! - [`ratelimit`]: the per-IP handshake rate limit.
//! - [`listen`]: binding a shard's SO_REUSEPORT listening socket.

pub mod admission;
pub mod buffers;
/// Close codes moved to the protocol layer; kept here for older paths.
pub use crate::protocol::close;
pub mod driver;
pub mod echo_conn;
pub mod echo_frames;
pub mod echo_worker;
pub mod fenced;
pub mod http;
pub mod listen;
pub mod outbound;
pub mod ratelimit;
pub mod ring;
