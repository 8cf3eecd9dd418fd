//! The game's own traffic: game messages from clients (bounded, queued
//! with inputs in arrival order), the game's events to its players (after
//! the tick's state), and messages between instances (this shard, another
//! shard through the mesh).
//!
//! Bounds and their outcomes:
//! - a Message body over --message-bytes-max: `Error(MessageTooLarge)`,
//!   dropped, counted (`game_messages_too_large`); the connection stays;
//! - more than --messages-per-tick-max in one tick: dropped, counted
//!   (`game_messages_dropped_full`);
//! - faster than --game-messages-per-second-max: `Error(MessageFlood)`
//!   and close 1008 (`game_message_flooders_closed`); the seat is kept;
//! - a Message before any Join: `Error(NotInInstance)`, the connection
//!   stays; after a Leave: dropped, counted (`game_messages_dropped_unseated`).

use std::time::Instant;

use super::effects::Effects;
use super::mesh::ShardMsg;
use super::world::World;
use super::{ConnId, Core};
use crate::directory::ToAgent;
use crate::game::JoinError;
use crate::game::{shard_for, Audience, EntityId, InstanceId, InstanceMail, PlayerId, PushMessage};
use crate::protocol::close::CloseReason;
use crate::protocol::{ErrorCode, LeaveReason, GAME_EVENTS_VERSION};
use crate::util::rate::TokenBucket;

impl Core {
    /// A client's `Message{kind, body}`.
    pub(crate) fn on_game_message(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        pid: PlayerId,
        kind: u16,
        body: &[u8],
    ) {
        self.metrics.game_messages_received.inc();
        let rate = f64::from(self.cfg().game_messages_per_second_max);
        let bytes_max = self.cfg().message_bytes_max;
        let Some(p) = self.world.players.get_mut(&pid) else {
            return;
        };
        if rate > 0.0 {
            let bucket = p
                .message_bucket
                .get_or_insert_with(|| TokenBucket::full(rate, now));
            if !bucket.take(1.0, rate, rate, now) {
                self.metrics.game_message_flooders_closed.inc();
                self.send_error(
                    fx,
                    conn,
                    ErrorCode::MessageFlood,
                    &format!("more than {rate} game messages per second (--game-messages-per-second-max)"),
                );
                self.close(fx, conn, CloseReason::PolicyViolation);
                return;
            }
        }
        if body.len() > bytes_max {
            self.metrics.game_messages_too_large.inc();
            self.send_error(
                fx,
                conn,
                ErrorCode::MessageTooLarge,
                &format!(
                    "Message kind {kind} has {} bytes; at most {bytes_max} are accepted (Limits.message_bytes_max)",
                    body.len()
                ),
            );
            return;
        }
        let Some(id) = p.instance.clone() else {
            if p.ever_joined {
                // A late message after a Leave: harmless, dropped.
                self.metrics.game_messages_dropped_unseated.inc();
            } else {
                self.send_error(fx, conn, ErrorCode::NotInInstance, "Message before Join");
            }
            return;
        };
        let Some(hosted) = self.world.instances.get_mut(&id) else {
            return;
        };
        match hosted.inst.push_message(pid, kind, body) {
            PushMessage::Queued => {}
            PushMessage::DroppedFull => self.metrics.game_messages_dropped_full.inc(),
            PushMessage::TooLarge => self.metrics.game_messages_too_large.inc(),
            PushMessage::NotSeated => self.metrics.game_messages_dropped_unseated.inc(),
        }
    }

    /// A player took its seat back (a resume): the game may refuse it
    /// (`Game::on_join` with `resumed`). Refused: `Error(JoinRefused)`, the
    /// seat is given up (the connection stays, as after a Leave); returns
    /// whether the player keeps its seat.
    pub(crate) fn game_rejoin(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        pid: PlayerId,
        instance: &InstanceId,
    ) -> bool {
        let Some(claims) = self.world.players.get(&pid).map(|p| p.claims.clone()) else {
            return false;
        };
        let Some(hosted) = self.world.instances.get_mut(instance) else {
            return true;
        };
        match hosted.inst.rejoin(pid, &claims) {
            Ok(()) => true,
            Err(JoinError::Refused(why)) => {
                self.metrics.joins_refused.inc();
                let why = super::players::cut_reason(why.0);
                self.send_error(fx, conn, ErrorCode::JoinRefused, &why);
                self.unseat(fx, pid, LeaveReason::Kicked, now);
                false
            }
            Err(_) => {
                self.game_failed(fx, &instance.clone());
                false
            }
        }
    }

    /// After a slot's state messages: each of `ids`' events to their
    /// players (protocol version 2 and up), in emission order, and its
    /// instance messages on their way. Also moves the instances' drop and
    /// refusal counts into the shard's metrics.
    pub(crate) fn flush_game_output(&mut self, fx: &mut dyn Effects, ids: &[InstanceId]) {
        for id in ids {
            let Some(hosted) = self.world.instances.get_mut(id) else {
                continue;
            };
            if hosted.inst.failed() {
                continue;
            }
            for (reason, n) in hosted.inst.take_refusals() {
                self.metrics.input_refused(reason, n);
            }
            let outbox = hosted.inst.outbox();
            let (events_dropped, mail_dropped) = outbox.take_dropped();
            self.metrics.game_events_dropped.add(events_dropped);
            self.metrics
                .instance_messages_dropped_outbox
                .add(mail_dropped);
            if outbox.events().is_empty() && outbox.mail().is_empty() {
                continue;
            }
            let events: Vec<_> = outbox.take_events().collect();
            let mail: Vec<_> = outbox.take_mail().collect();
            let tick = hosted.inst.tick();
            let near = events
                .iter()
                .any(|e| matches!(e.audience, Audience::Near { .. }));
            let positions: Vec<(EntityId, [f32; 3])> = if near {
                hosted
                    .inst
                    .entities()
                    .iter()
                    .map(|v| (v.id, [v.x, v.y, v.z]))
                    .collect()
            } else {
                Vec::new()
            };
            let mut sent = 0;
            for event in &events {
                let bytes = self.enc.game_event(tick, event.kind, &event.body);
                sent += send_event(&self.world, fx, id, event.audience, &positions, bytes);
            }
            self.metrics.game_events_sent.add(sent);
            self.metrics.messages_out.add(sent);
            for m in mail {
                let from = id.clone();
                self.route_mail(
                    fx,
                    m.to,
                    InstanceMail {
                        from,
                        kind: m.kind,
                        body: m.body,
                    },
                );
            }
        }
    }

    /// Sends an instance message towards the shard that owns `to`.
    fn route_mail(&mut self, fx: &mut dyn Effects, to: InstanceId, mail: InstanceMail) {
        self.metrics.instance_messages_sent.inc();
        let owner = shard_for(&to, self.shards);
        if owner == self.id {
            self.deliver_mail(fx, to, mail);
        } else {
            fx.mesh(owner, ShardMsg::InstanceMail { to, mail });
        }
    }

    /// An instance message for `to`, which this shard owns: into its inbox
    /// for its next tick, or dropped and counted when it is not here
    /// (`instance_messages_dropped_gone`) or its inbox is full
    /// (`instance_messages_dropped_full`). At most once: never retried.
    pub(crate) fn deliver_mail(
        &mut self,
        fx: &mut dyn Effects,
        to: InstanceId,
        mail: InstanceMail,
    ) {
        if !self.world.instances.contains_key(&to) && self.shared.public_url.is_some() {
            // In a fleet: another node may run it; the directory finds it.
            if !fx.directory(ToAgent::Mail { to, mail }) {
                self.metrics.instance_messages_dropped_full.inc();
            }
            return;
        }
        self.deliver_mail_from_fleet(to, mail);
    }

    /// An instance message for `to` that is not forwarded again (it came
    /// from another node, or there is no fleet).
    pub(crate) fn deliver_mail_from_fleet(&mut self, to: InstanceId, mail: InstanceMail) {
        match self.world.instances.get_mut(&to) {
            Some(hosted) => {
                if hosted.inst.deliver(mail) {
                    self.metrics.instance_messages_delivered.inc();
                } else {
                    self.metrics.instance_messages_dropped_full.inc();
                }
            }
            None => self.metrics.instance_messages_dropped_gone.inc(),
        }
    }
}

/// Sends one encoded event to its audience among `id`'s seats; returns how
/// many got it. Version 1 clients never get events.
fn send_event(
    world: &World,
    fx: &mut dyn Effects,
    id: &InstanceId,
    audience: Audience,
    positions: &[(EntityId, [f32; 3])],
    bytes: &[u8],
) -> u64 {
    let Some(hosted) = world.instances.get(id) else {
        return 0;
    };
    let pos = |e: EntityId| positions.iter().find(|p| p.0 == e).map(|p| p.1);
    let centre = match audience {
        Audience::Near { entity, .. } => match pos(entity) {
            Some(c) => Some(c),
            None => return 0, // the entity is gone: nobody is near it
        },
        _ => None,
    };
    let mut sent = 0;
    for seat in hosted.inst.seats() {
        let wanted = match audience {
            Audience::All => true,
            Audience::Player(p) => p == seat.player,
            Audience::Near { radius, .. } => match (centre, pos(seat.entity)) {
                (Some(c), Some(q)) => {
                    let d2: f32 = (0..3).map(|i| (c[i] - q[i]) * (c[i] - q[i])).sum();
                    d2 <= radius * radius
                }
                _ => false,
            },
        };
        if !wanted {
            continue;
        }
        let Some(p) = world.players.get(&seat.player) else {
            continue;
        };
        if p.protocol < GAME_EVENTS_VERSION {
            continue;
        }
        if let Some(conn) = p.conn {
            fx.send(conn, bytes);
            sent += 1;
        }
    }
    sent
}
