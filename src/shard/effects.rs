//! What the core asks the I/O driver to do, as calls on an [`Effects`]
//! sink. The core never performs them itself: the driver (`net::driver`)
//! frames messages into the connection's outbound buffer and writes them
//! in batches, closes, pauses and hands sockets over; the runtime sends
//! mesh and directory messages. [`Recorded`] keeps them as values, for
//! tests.
//!
//! A call is a request, in order: e.g. `send` then `close` means the frame
//! goes out before the close frame.

use std::time::Instant;

use super::mesh::ShardMsg;
use super::ConnId;
use crate::directory::ToAgent;
use crate::game::{InstanceId, PlayerId};
use crate::protocol::close::CloseReason;

/// A question for the fleet directory on behalf of a paused connection; the
/// answer comes back as `Core::directory_answer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Who owns this instance (claiming it for this node when nobody does)?
    Claim {
        player: PlayerId,
        instance: InstanceId,
        create: bool,
        /// Whether this node may claim the instance when nobody owns it
        /// (not while draining or stopping).
        create_here: bool,
    },
    /// Which node holds the seat of this resume token?
    Seat { token: String },
}

pub trait Effects {
    /// One binary message for `conn`.
    fn send(&mut self, conn: ConnId, payload: &[u8]);
    /// A StateUpdate for `conn` reflecting the inputs that arrived at
    /// `arrivals` (taken; the driver records input→update latency when the
    /// bytes reach the socket).
    fn send_update(&mut self, conn: ConnId, payload: &[u8], arrivals: &mut Vec<Instant>);
    /// Close `conn` after what is queued, with `reason`'s code.
    fn close(&mut self, conn: ConnId, reason: CloseReason);
    /// Read nothing more from `conn` after the current message (bytes stay
    /// in the driver's buffer and the socket) until `resume`.
    fn pause(&mut self, conn: ConnId);
    fn resume(&mut self, conn: ConnId);
    /// Give `conn`'s socket, with every byte not yet handled, to shard `to`
    /// (after what is queued is written), where `player`'s seat waits.
    fn hand_over(&mut self, conn: ConnId, to: usize, player: PlayerId, resume: bool);
    /// A message for another shard's core.
    fn mesh(&mut self, to: usize, msg: ShardMsg);
    /// A message for the directory agent; `false` when its queue is full.
    fn directory(&mut self, msg: ToAgent) -> bool;
    /// A question for the directory (its answer comes back later).
    fn ask(&mut self, conn: ConnId, ask: Ask);
    /// Ask the directory who owns `instance`, whose evacuation `id` went
    /// unanswered; the answer comes back as `Core::settle_evacuation`.
    fn owner_of(&mut self, instance: InstanceId, id: String);
}

/// An effect as a value (see [`Recorded`]).
#[derive(Debug)]
pub enum Effect {
    Send {
        conn: ConnId,
        payload: Vec<u8>,
    },
    Update {
        conn: ConnId,
        payload: Vec<u8>,
        inputs: usize,
    },
    Close {
        conn: ConnId,
        reason: CloseReason,
    },
    Pause {
        conn: ConnId,
    },
    Resume {
        conn: ConnId,
    },
    HandOver {
        conn: ConnId,
        to: usize,
        player: PlayerId,
        resume: bool,
    },
    Mesh {
        to: usize,
        msg: ShardMsg,
    },
    Directory(ToAgent),
    Ask {
        conn: ConnId,
        ask: Ask,
    },
    OwnerOf {
        instance: InstanceId,
        id: String,
    },
}

/// Records every effect, in order (tests).
#[derive(Debug, Default)]
pub struct Recorded {
    pub effects: Vec<Effect>,
    /// `directory` answers `false` while this is set (a full agent queue).
    pub directory_full: bool,
}

impl Recorded {
    /// Takes what was recorded so far.
    pub fn take(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }
}

impl Effects for Recorded {
    fn send(&mut self, conn: ConnId, payload: &[u8]) {
        self.effects.push(Effect::Send {
            conn,
            payload: payload.to_vec(),
        });
    }
    fn send_update(&mut self, conn: ConnId, payload: &[u8], arrivals: &mut Vec<Instant>) {
        self.effects.push(Effect::Update {
            conn,
            payload: payload.to_vec(),
            inputs: arrivals.len(),
        });
        arrivals.clear();
    }
    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        self.effects.push(Effect::Close { conn, reason });
    }
    fn pause(&mut self, conn: ConnId) {
        self.effects.push(Effect::Pause { conn });
    }
    fn resume(&mut self, conn: ConnId) {
        self.effects.push(Effect::Resume { conn });
    }
    fn hand_over(&mut self, conn: ConnId, to: usize, player: PlayerId, resume: bool) {
        self.effects.push(Effect::HandOver {
            conn,
            to,
            player,
            resume,
        });
    }
    fn mesh(&mut self, to: usize, msg: ShardMsg) {
        self.effects.push(Effect::Mesh { to, msg });
    }
    fn directory(&mut self, msg: ToAgent) -> bool {
        if self.directory_full {
            return false;
        }
        self.effects.push(Effect::Directory(msg));
        true
    }
    fn ask(&mut self, conn: ConnId, ask: Ask) {
        self.effects.push(Effect::Ask { conn, ask });
    }
    fn owner_of(&mut self, instance: InstanceId, id: String) {
        self.effects.push(Effect::OwnerOf { instance, id });
    }
}
