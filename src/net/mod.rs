//! Sockets: accepting, upgrading, and running WebSocket sessions.
//!
//! - [`admission`]: the node-wide `--max-connections` budget.
//! - [`buffers`]: the shard's bounded outbound buffer pool.
//! - [`http`]: the upgrade request head (routing by path, plain HTTP replies).
//! - [`fenced`]: a socket reader fenced at frame boundaries (lossless hand-over).
//! - [`listener`]: accept, read the head, route to the owning shard, upgrade.
//! - [`outbound`]: one connection's bounded, pre-framed outbound bytes.
//! - [`conn`]: the shard's handle on a live /play connection.
//! - [`session`]: the /play session task (decode in, one write out per wake).
//! - [`tick_read`]: the tick reading seated players' inputs itself.
//! - [`echo`]: the /echo endpoint: the upgrade, then the socket to the shard's echo worker.
//! - [`echo_worker`]: the shard's /echo thread (epoll on the shard's core).
//! - [`echo_conn`]: one /echo connection on that thread: one read and one
//!   write per batch of frames, the close handshake, silence, slow readers.
//! - [`echo_frames`]: /echo's frame logic, pure: frames in, answers out.
//! - [`close`]: why connections end, and their close codes.
//! - [`ratelimit`]: the per-IP handshake rate limit.

pub mod admission;
pub mod buffers;
pub mod close;
pub mod conn;
pub mod echo;
pub mod echo_conn;
pub mod echo_frames;
pub mod echo_worker;
pub mod fenced;
pub mod http;
pub mod listener;
pub mod outbound;
pub mod ratelimit;
pub mod session;
pub mod tick_read;
