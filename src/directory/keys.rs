//! The Redis keys of the directory, in one place. Pure code.
//!
//! ```text
//! sl:nodes                hash   node id → region (every node ever seen
//!                                until its instances are taken over)
//! sl:node:{id}            string JSON NodeInfo, PX --directory-ttl-ms
//!                                (gone by itself when the node dies;
//!                                {"id","left":true} after a graceful stop)
//! sl:node:{id}:insts      set    instance ids the node owns
//! sl:inst:{instance}      string owning node id (claimed atomically)
//! sl:epoch:{instance}     string the owner's epoch (fence.rs): written with
//!                                the owner, checked by every owner's write
//! sl:epochs               string the last epoch given out (INCR)
//! sl:snap:{instance}      bytes  latest replicated snapshot (see replica.rs)
//! sl:seat:{token}         string instance id holding that resume token's seat
//! sl:ctl:{region}         pub/sub fleet messages for one region
//! sl:ctl:*                pub/sub fleet messages for every region
//! sl:to-node:{id}         pub/sub fleet messages for one node (moves)
//! sl:move:{move id}       list   the outcome of `shardline fleet move`
//!                                (one JSON line, EXPIRE 60 s)
//! ```

use crate::game::InstanceId;

/// Hash of every registered node (id → region).
pub const NODES: &str = "sl:nodes";
/// Pub/sub channel for messages to every node of every region.
pub const CONTROL_ALL: &str = "sl:ctl:*";

pub fn node(id: &str) -> String {
    format!("sl:node:{id}")
}

pub fn node_instances(id: &str) -> String {
    format!("sl:node:{id}:insts")
}

pub fn instance(id: &InstanceId) -> String {
    format!("sl:inst:{}", id.as_str())
}

/// The ownership epoch of an instance (see `fence.rs`).
pub fn epoch(id: &InstanceId) -> String {
    format!("sl:epoch:{}", id.as_str())
}

/// The counter epochs are drawn from.
pub const EPOCHS: &str = "sl:epochs";

pub fn snapshot(id: &InstanceId) -> String {
    format!("sl:snap:{}", id.as_str())
}

pub fn seat(token: &str) -> String {
    format!("sl:seat:{token}")
}

/// The pub/sub channel of one region.
pub fn control(region: &str) -> String {
    format!("sl:ctl:{region}")
}

/// The channel of `region`, or of every region.
pub fn control_of(region: Option<&str>) -> String {
    region.map_or_else(|| CONTROL_ALL.to_owned(), control)
}

/// The pub/sub channel of one node (player moves between nodes).
pub fn node_control(node: &str) -> String {
    format!("sl:to-node:{node}")
}

/// Where the node that ran a move pushes its outcome for the caller.
pub fn move_result(move_id: &str) -> String {
    format!("sl:move:{move_id}")
}
