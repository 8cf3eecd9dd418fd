//! Moving a player's connection between shards mid-session, and the rest of
//! the shard-to-shard conversation about players.
//!
//! A Join for an instance owned by another shard, or a resume whose seat is
//! on another shard, goes like this:
//! 1. the session is paused right after that message — nothing more is read,
//!    so every later byte the client sent stays in the socket (the reader is
//!    fenced at frame boundaries, see `net::fenced`);
//! 2. the owner is asked to seat the player (`MigrateIn` → `MigrateResult`),
//!    or every shard is asked who holds the token (`FindSeat` → `SeatFound`);
//! 3. on success the socket, with the bytes read but not yet parsed, is
//!    handed to the owner (`Adopt`), which continues the same WebSocket
//!    session: the client sees `Joined` (or `Welcome` + `Joined`) on the same
//!    connection and its pipelined inputs are applied in order, none lost;
//! 4. on failure the client gets an `Error` and the session resumes here.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::game::{shard_for, InstanceId, PlayerId};
use crate::net::conn::{Conn, Handover};
use crate::protocol::{ErrorCode, LeaveReason};
use crate::shard::mesh::{PlayerCard, ShardMsg};
use crate::shard::world::{Migration, Player};
use crate::shard::{SeatLookup, Shard};

/// A move not decided within this time is abandoned: the client gets an
/// Error and the session resumes where it was.
pub const MOVE_TIMEOUT: Duration = Duration::from_secs(2);

type Refusal = (ErrorCode, String);

impl Shard {
    /// Starts moving `pid` to `instance` on shard `to`.
    pub(crate) fn migrate_out(
        &self,
        conn: &Conn,
        pid: PlayerId,
        instance: InstanceId,
        create: bool,
        to: usize,
        report: Option<String>,
    ) {
        let mut w = self.world.borrow_mut();
        let p = w.players.get_mut(&pid).expect("player exists");
        p.migration = Migration::Out {
            to,
            instance: instance.clone(),
            report,
        };
        let card = PlayerCard {
            id: pid,
            name: p.name.clone(),
            token: p.token.clone(),
            allowed_instance: p.allowed_instance.clone(),
        };
        drop(w);
        conn.pause_reading(Instant::now());
        self.send_mesh(
            to,
            ShardMsg::MigrateIn {
                player: card,
                instance,
                create,
                from: self.id,
            },
        );
    }

    /// The owner seats a player arriving from shard `from` (detached until
    /// its connection is adopted).
    fn migrate_in(
        &self,
        card: PlayerCard,
        instance: InstanceId,
        create: bool,
        now: Instant,
    ) -> Result<(), Refusal> {
        assert_eq!(
            shard_for(&instance, self.shards),
            self.id,
            "not our instance"
        );
        if self.draining.get() {
            return Err((
                ErrorCode::ShuttingDown,
                "server is draining; no new placements".into(),
            ));
        }
        let mut w = self.world.borrow_mut();
        if w.players.contains_key(&card.id) {
            return Err((
                ErrorCode::Internal,
                "player already on the target shard".into(),
            ));
        }
        w.add_player(Player::detached(
            card.id,
            card.name,
            card.token,
            None,
            card.allowed_instance,
            now,
        ));
        match self.seat_locally(&mut w, card.id, Some(instance), create, now) {
            Ok(_) => {
                self.metrics.migrations_in.inc();
                Ok(())
            }
            Err(e) => {
                w.remove_player(card.id);
                Err(e)
            }
        }
    }

    fn on_migrate_result(&self, pid: PlayerId, result: Result<(), Refusal>, now: Instant) {
        let mut w = self.world.borrow_mut();
        let Some(p) = w.players.get_mut(&pid) else {
            return;
        };
        let Migration::Out {
            to,
            instance,
            report,
        } = std::mem::take(&mut p.migration)
        else {
            return; // timed out meanwhile
        };
        let conn = p.conn.clone();
        if let Some(move_id) = report {
            // A `shardline fleet move` within this node.
            let outcome = match &result {
                Ok(()) => {
                    let url = self
                        .node
                        .directory
                        .as_ref()
                        .map_or(String::new(), |d| d.public_url.to_string());
                    self.moved_json(pid, &self.cfg().node_id, &url, &instance, pid)
                }
                Err((_, why)) => serde_json::json!({"ok": false, "error": why}),
            };
            self.move_done(&move_id, outcome);
        }
        match result {
            Ok(()) => {
                self.metrics.migrations_out.inc();
                self.unseat(&mut w, pid, LeaveReason::Moved, now);
                // The player now lives on `to` (its token too); without a
                // connection its seat there waits for a resume.
                w.remove_player(pid);
                drop(w);
                if let Some(conn) = conn {
                    conn.set_player(None);
                    conn.request_handover(Handover {
                        to,
                        player: pid,
                        resume: false,
                    });
                }
            }
            Err((code, message)) => {
                if conn.is_none() && p.instance.is_none() {
                    w.remove_player(pid);
                }
                drop(w);
                if let Some(conn) = conn {
                    self.send_error(&conn, code, &message);
                    conn.resume_reading();
                }
            }
        }
    }

    /// A paused session waited [`MOVE_TIMEOUT`] for an answer.
    pub fn on_move_timeout(&self, conn: &Conn) {
        self.lookups.borrow_mut().remove(&conn.id);
        if let Some(pid) = conn.player() {
            let report = match self.world.borrow_mut().players.get_mut(&pid) {
                Some(p) => match std::mem::take(&mut p.migration) {
                    Migration::Out { report, .. } => report,
                    _ => None,
                },
                None => None,
            };
            if let Some(move_id) = report {
                self.move_done(
                    &move_id,
                    serde_json::json!({"ok": false, "error": "the move to another shard timed out"}),
                );
            }
        }
        self.send_error(
            conn,
            ErrorCode::Internal,
            "moving to another shard timed out; try again",
        );
        conn.resume_reading();
    }

    /// No shard here holds the seat of `token`: in a fleet, the directory
    /// may know the node that does (the connection stays paused until it
    /// answers); else the resume is refused.
    pub(crate) fn resume_elsewhere_or_refuse(&self, conn: &Rc<Conn>, token: &str) {
        if !self.seat_in_fleet(conn, token) {
            self.refuse_resume(conn);
            conn.resume_reading();
        }
    }

    pub(crate) fn refuse_resume(&self, conn: &Conn) {
        self.send_error(
            conn,
            ErrorCode::ResumeRefused,
            "resume token unknown or its seat expired; send Hello without a token to start anew",
        );
    }

    /// Asks every other shard whether it holds the seat for `token`.
    pub(crate) fn find_seat_elsewhere(&self, conn: &Conn, token: &str) {
        conn.pause_reading(Instant::now());
        self.lookups.borrow_mut().insert(
            conn.id,
            SeatLookup {
                replies_missing: self.shards - 1,
                token: token.to_owned(),
            },
        );
        for to in (0..self.shards).filter(|&s| s != self.id) {
            self.send_mesh(
                to,
                ShardMsg::FindSeat {
                    token: token.to_owned(),
                    from: self.id,
                    conn: conn.id,
                },
            );
        }
    }

    fn on_seat_found(&self, conn_id: u64, found: Option<PlayerId>, shard: usize) {
        let conn = self.conns.borrow().get(&conn_id).cloned();
        let mut lookups = self.lookups.borrow_mut();
        let Some(lookup) = lookups.get_mut(&conn_id) else {
            return; // already answered, or the connection is gone
        };
        lookup.replies_missing -= 1;
        let done = found.is_some() || lookup.replies_missing == 0;
        let token = if done {
            lookups
                .remove(&conn_id)
                .map(|l| l.token)
                .unwrap_or_default()
        } else {
            String::new()
        };
        drop(lookups);
        let Some(conn) = conn.filter(|c| c.player().is_none()) else {
            return;
        };
        match found {
            Some(player) => conn.request_handover(Handover {
                to: shard,
                player,
                resume: true,
            }),
            None if done => self.resume_elsewhere_or_refuse(&conn, &token),
            None => {}
        }
    }

    /// A connection handed over by another shard, now running here: attach
    /// it to the player's seat and greet it.
    pub fn adopt(&self, conn: &Rc<Conn>, pid: PlayerId, resume: bool) {
        self.conns.borrow_mut().insert(conn.id, conn.clone());
        let mut w = self.world.borrow_mut();
        let Some(p) = w.players.get_mut(&pid) else {
            drop(w);
            // The seat expired between the answer and the hand-over.
            self.refuse_resume(conn);
            return;
        };
        if let Some(old) = p.conn.replace(conn.clone()) {
            old.set_player(None);
            old.request_close(crate::net::close::CloseReason::Replaced);
        }
        p.detached_at = None;
        conn.set_player(Some(pid));
        if resume {
            self.metrics.players_resumed.inc();
            self.send_welcome(conn, &w.players[&pid], true);
        }
        if let Some(instance) = w.players[&pid].instance.clone() {
            self.send_joined(&mut w, conn, &instance, pid);
        }
    }

    /// The connection is gone (any reason but a hand-over). A player whose
    /// client closed the WebSocket itself (`left`) has left: its seat is
    /// released. Otherwise — a drop, a timeout, a server-side close — a
    /// seated player keeps its seat for the reconnect grace; anyone else is
    /// forgotten.
    pub fn on_disconnect(&self, conn: &Conn, now: Instant, left: bool) {
        self.conns.borrow_mut().remove(&conn.id);
        self.lookups.borrow_mut().remove(&conn.id);
        let Some(pid) = conn.player() else { return };
        conn.set_player(None);
        let mut w = self.world.borrow_mut();
        let Some(p) = w.players.get_mut(&pid) else {
            return;
        };
        if p.conn.as_ref().map(|c| c.id) != Some(conn.id) {
            return; // replaced by a resume on another connection
        }
        p.conn = None;
        if left && !matches!(p.migration, Migration::Out { .. }) {
            self.unseat(&mut w, pid, LeaveReason::Left, now);
            w.remove_player(pid);
        } else if p.instance.is_some() || matches!(p.migration, Migration::Out { .. }) {
            // An unanswered move also keeps the player: the answer decides.
            p.detached_at = Some(now);
        } else {
            w.remove_player(pid);
        }
    }

    /// A message from another shard.
    pub fn on_mesh(&self, msg: ShardMsg, now: Instant) {
        match msg {
            ShardMsg::HandOff { .. } | ShardMsg::Adopt { .. } => {
                unreachable!("sockets are served by the runtime")
            }
            ShardMsg::MigrateIn {
                player,
                instance,
                create,
                from,
            } => {
                let id = player.id;
                let result = self.migrate_in(player, instance, create, now);
                self.send_mesh(from, ShardMsg::MigrateResult { player: id, result });
            }
            ShardMsg::MigrateResult { player, result } => {
                self.on_migrate_result(player, result, now)
            }
            ShardMsg::FindSeat { token, from, conn } => {
                let w = self.world.borrow();
                let found = w
                    .tokens
                    .get(&token)
                    .and_then(|id| w.players.get(id))
                    .filter(|p| {
                        !matches!(p.migration, Migration::Out { .. }) && p.instance.is_some()
                    })
                    .map(|p| p.id);
                drop(w);
                self.send_mesh(
                    from,
                    ShardMsg::SeatFound {
                        conn,
                        player: found,
                        shard: self.id,
                    },
                );
            }
            ShardMsg::SeatFound {
                conn,
                player,
                shard,
            } => self.on_seat_found(conn, player, shard),
            admin => self.on_admin_mesh(admin),
        }
    }
}
