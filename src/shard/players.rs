//! What each client message and each mesh message does to a shard's world.
//!
//! Handlers run on the shard's core, between ticks; they queue replies on
//! connections (`Conn::send`) and never touch a socket. Inputs only go into
//! the instance's bounded queue; the tick applies them.

use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::game::{
    least_loaded, new_instance_id, shard_for, Instance, InstanceId, InstanceLimits, JoinError,
    PlayerId, PlayerInput, PushInput,
};
use crate::net::close::CloseReason;
use crate::net::conn::Conn;
use crate::protocol::{ClientCmd, ErrorCode, LeaveReason, ProtocolError, WelcomeInfo};
use crate::shard::mesh::{PlayerCard, ShardMsg};
use crate::shard::world::{Hosted, Migration, Player, World};
use crate::shard::Shard;

/// Bytes of OS randomness in a resume token (128 bits, hex-encoded).
const RESUME_TOKEN_BYTES: usize = 16;

type Refusal = (ErrorCode, String);

fn refusal(code: ErrorCode, message: impl Into<String>) -> Refusal {
    (code, message.into())
}

impl Shard {
    /// One decoded client message from `conn`.
    pub fn on_client(&self, conn: &Rc<Conn>, cmd: ClientCmd, now: Instant) {
        let player = conn.player();
        match (cmd, player) {
            (
                ClientCmd::Hello {
                    protocol_version,
                    player_name,
                    resume_token,
                },
                None,
            ) => self.on_hello(conn, protocol_version, player_name, resume_token),
            (ClientCmd::Hello { .. }, Some(_)) => self.send_error(
                conn,
                ErrorCode::OutOfOrder,
                "Hello was already accepted on this connection",
            ),
            (_, None) => {
                self.send_error(conn, ErrorCode::OutOfOrder, "the first message must be Hello");
                conn.request_close(CloseReason::PolicyViolation);
            }
            (ClientCmd::Join { instance_id, create }, Some(p)) => {
                self.on_join(conn, p, instance_id, create, now)
            }
            (ClientCmd::Leave, Some(p)) => self.on_leave(conn, p, now),
            (ClientCmd::Input(input), Some(p)) => self.on_input(conn, p, input, now),
            (ClientCmd::Ping { client_time }, Some(_)) => {
                let server_time_us = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_micros() as u64)
                    .unwrap_or(0);
                let mut enc = self.enc.borrow_mut();
                self.send(conn, enc.pong(client_time, server_time_us));
            }
        }
    }

    /// Queues `bytes` for `conn`, counted.
    pub fn send(&self, conn: &Conn, bytes: &[u8]) {
        self.metrics.messages_out.inc();
        conn.send(bytes);
    }

    pub fn send_error(&self, conn: &Conn, code: ErrorCode, message: &str) {
        self.metrics.errors_sent.inc();
        let mut enc = self.enc.borrow_mut();
        self.send(conn, enc.error(code, message));
    }

    /// A message that failed to decode or validate.
    pub fn on_bad_message(&self, conn: &Conn, err: &ProtocolError) {
        self.send_error(conn, err.code, &err.message);
        if err.is_fatal() {
            conn.request_close(CloseReason::ProtocolError);
        } else if err.code == ErrorCode::BadInput {
            self.metrics.inputs_dropped_bad.inc();
        }
    }

    fn on_hello(&self, conn: &Rc<Conn>, version: u16, name: String, token: Option<String>) {
        if version != crate::protocol::PROTOCOL_VERSION {
            self.send_error(
                conn,
                ErrorCode::UnsupportedVersion,
                &format!(
                    "protocol version {version} is not supported; this server speaks {}",
                    crate::protocol::PROTOCOL_VERSION
                ),
            );
            conn.request_close(CloseReason::PolicyViolation);
            return;
        }
        if self.draining.get() {
            self.send_error(conn, ErrorCode::ShuttingDown, "server is shutting down");
            conn.request_close(CloseReason::GoingAway);
            return;
        }
        match token {
            Some(token) => self.resume(conn, &token),
            None => self.new_player(conn, name),
        }
    }

    fn new_player(&self, conn: &Rc<Conn>, name: String) {
        let mut w = self.world.borrow_mut();
        let id = loop {
            let id = self.next_u64();
            if id != 0 && !w.players.contains_key(&id) {
                break id;
            }
        };
        let token = new_resume_token();
        conn.set_player(Some(id));
        w.add_player(Player {
            id,
            name,
            token,
            conn: Some(conn.clone()),
            instance: None,
            ever_joined: false,
            detached_at: None,
            migration: Migration::None,
            last_input_at: None,
            inputs_pending_since: Vec::new(),
            backlog: Default::default(),
        });
        self.send_welcome(conn, &w.players[&id], false);
    }

    fn send_welcome(&self, conn: &Conn, p: &Player, resumed: bool) {
        let cfg = self.cfg();
        let mut enc = self.enc.borrow_mut();
        let bytes = enc.welcome(&WelcomeInfo {
            player_id: p.id,
            resume_token: &p.token,
            node_id: &cfg.node_id,
            region: &cfg.region,
            shard: self.id as u16,
            tick_rate_hz: cfg.tick_rate_hz as u16,
            limits: self.limits_info(),
            resumed,
        });
        self.send(conn, bytes);
    }

    fn send_migrate(&self, conn: &Conn, instance: &InstanceId, token: &str, shard: usize) {
        let path = format!("/play?instance={instance}");
        let mut enc = self.enc.borrow_mut();
        let bytes = enc.migrate(instance.as_str(), token, &path, shard as u16);
        self.send(conn, bytes);
    }

    /// Hello with a resume token: take the seat back, or point the client to
    /// the shard that holds it, or refuse.
    fn resume(&self, conn: &Rc<Conn>, token: &str) {
        let mut w = self.world.borrow_mut();
        let Some(&id) = w.tokens.get(token) else {
            drop(w);
            if self.shards > 1 {
                self.find_seat_elsewhere(conn, token);
            } else {
                self.refuse_resume(conn);
            }
            return;
        };
        let p = w.players.get_mut(&id).expect("token maps to a player");
        if let Migration::Out {
            to,
            instance,
            confirmed: true,
            ..
        } = &p.migration
        {
            let (to, instance, token) = (*to, instance.clone(), p.token.clone());
            drop(w);
            self.send_migrate(conn, &instance, &token, to);
            return;
        }
        if let Some(old) = p.conn.replace(conn.clone()) {
            old.set_player(None);
            old.request_close(CloseReason::Replaced);
        }
        p.detached_at = None;
        conn.set_player(Some(id));
        self.metrics.players_resumed.inc();
        self.send_welcome(conn, &w.players[&id], true);
        if let Some(instance) = w.players[&id].instance.clone() {
            self.send_joined(&mut w, conn, &instance, id);
        }
    }

    fn refuse_resume(&self, conn: &Conn) {
        self.send_error(
            conn,
            ErrorCode::ResumeRefused,
            "resume token unknown or its seat expired; send Hello without a token to start anew",
        );
    }

    fn find_seat_elsewhere(&self, conn: &Conn, token: &str) {
        self.lookups.borrow_mut().insert(
            conn.id,
            super::SeatLookup {
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

    fn on_join(
        &self,
        conn: &Rc<Conn>,
        pid: PlayerId,
        target: Option<InstanceId>,
        create: bool,
        now: Instant,
    ) {
        if self.draining.get() {
            self.send_error(conn, ErrorCode::ShuttingDown, "server is draining; no new placements");
            return;
        }
        {
            let w = self.world.borrow();
            let p = &w.players[&pid];
            if !matches!(p.migration, Migration::None) {
                drop(w);
                self.send_error(conn, ErrorCode::OutOfOrder, "a move to another shard is under way");
                return;
            }
            if target.is_some() && p.instance == target {
                drop(w);
                self.send_error(conn, ErrorCode::AlreadyInInstance, "already in this instance");
                return;
            }
        }
        if let Some(id) = &target {
            let owner = shard_for(id, self.shards);
            if owner != self.id {
                self.migrate_out(pid, id.clone(), create, owner);
                return;
            }
        }
        let mut w = self.world.borrow_mut();
        match self.seat_locally(&mut w, pid, target, create, now) {
            Ok(instance) => self.send_joined(&mut w, conn, &instance, pid),
            Err((code, msg)) => {
                drop(w);
                self.send_error(conn, code, &msg);
            }
        }
    }

    /// Seats `pid` in a local instance (named, or the least loaded), leaving
    /// its current one, and tells the others. The player stays where it was
    /// if the new seat cannot be had.
    fn seat_locally(
        &self,
        w: &mut World,
        pid: PlayerId,
        target: Option<InstanceId>,
        create: bool,
        now: Instant,
    ) -> Result<InstanceId, Refusal> {
        let id = match target {
            Some(id) => {
                debug_assert_eq!(shard_for(&id, self.shards), self.id);
                if !w.instances.contains_key(&id) {
                    if !create {
                        return Err(refusal(
                            ErrorCode::InstanceNotFound,
                            format!("instance {id} does not exist (Join with create=false)"),
                        ));
                    }
                    self.create_instance(w, id.clone(), now)?;
                }
                id
            }
            None => match least_loaded(w.loads()).cloned() {
                Some(id) => id,
                None => {
                    let id = new_instance_id(self.id, self.shards, || self.next_u64());
                    self.create_instance(w, id.clone(), now)?;
                    id
                }
            },
        };
        let hosted = w.instances.get(&id).expect("instance exists");
        if !hosted.inst.has_room() {
            return Err(refusal(
                ErrorCode::InstanceFull,
                format!(
                    "instance {id} is full ({} players)",
                    hosted.inst.limits().players_max
                ),
            ));
        }
        self.unseat(w, pid, LeaveReason::Moved, now);
        let p = w.players.get_mut(&pid).expect("player exists");
        let hosted = w.instances.get_mut(&id).expect("instance exists");
        let seat = match hosted.inst.join(pid, &p.name) {
            Ok(seat) => seat,
            Err(JoinError::Full(..)) | Err(JoinError::AlreadySeated) => {
                unreachable!("room and seat were checked above")
            }
        };
        let entity = seat.entity;
        hosted.empty_since = None;
        p.instance = Some(id.clone());
        p.ever_joined = true;
        let name = p.name.clone();
        let mut enc = self.enc.borrow_mut();
        let sent = w.broadcast(&id, Some(pid), enc.player_joined(pid, entity, &name));
        self.metrics.messages_out.add(sent);
        Ok(id)
    }

    fn create_instance(&self, w: &mut World, id: InstanceId, now: Instant) -> Result<(), Refusal> {
        let max = self.cfg().instances_per_shard_max;
        if w.instances.len() >= max {
            return Err(refusal(
                ErrorCode::ShardFull,
                format!("shard {} already runs {max} instances (--instances-per-shard-max)", self.id),
            ));
        }
        let game = self.node.factory.create(&id);
        let inst = Instance::new(
            id.clone(),
            game,
            InstanceLimits {
                players_max: self.settings.get().players_per_instance_max,
                inputs_per_tick_max: self.cfg().inputs_per_tick_max,
            },
        );
        w.instances.insert(
            id,
            Hosted {
                inst,
                empty_since: Some(now),
                tick_us: Default::default(),
            },
        );
        self.metrics.instances_created.inc();
        Ok(())
    }

    /// Removes `pid` from its instance (if any) and tells the others.
    pub(crate) fn unseat(&self, w: &mut World, pid: PlayerId, reason: LeaveReason, now: Instant) {
        let Some(p) = w.players.get_mut(&pid) else {
            return;
        };
        let Some(id) = p.instance.take() else {
            return;
        };
        let Some(hosted) = w.instances.get_mut(&id) else {
            return;
        };
        if let Some(seat) = hosted.inst.leave(pid) {
            if hosted.inst.is_empty() {
                hosted.empty_since = Some(now);
            }
            let mut enc = self.enc.borrow_mut();
            let sent = w.broadcast(&id, None, enc.player_left(pid, seat.entity, reason));
            self.metrics.messages_out.add(sent);
        }
    }

    /// Sends the player its Joined (entity and full state).
    fn send_joined(&self, w: &mut World, conn: &Conn, instance: &InstanceId, pid: PlayerId) {
        let Some(hosted) = w.instances.get_mut(instance) else {
            return;
        };
        let Some(entity) = hosted.inst.seat(pid).map(|s| s.entity) else {
            return;
        };
        let mut custom = Vec::new();
        hosted.inst.custom_state(&mut custom);
        let tick = hosted.inst.tick();
        let bounds = hosted.inst.bounds();
        let entities = hosted.inst.entities();
        let mut enc = self.enc.borrow_mut();
        let bytes = enc.joined(instance.as_str(), entity, tick, bounds, entities, &custom);
        self.send(conn, bytes);
    }

    fn on_leave(&self, conn: &Conn, pid: PlayerId, now: Instant) {
        let mut w = self.world.borrow_mut();
        if w.players[&pid].instance.is_none() {
            drop(w);
            self.send_error(conn, ErrorCode::NotInInstance, "not in an instance");
            return;
        }
        self.unseat(&mut w, pid, LeaveReason::Left, now);
    }

    fn on_input(&self, conn: &Conn, pid: PlayerId, input: PlayerInput, now: Instant) {
        self.metrics.inputs_received.inc();
        let mut w = self.world.borrow_mut();
        let p = w.players.get_mut(&pid).expect("conn's player exists");
        p.last_input_at = Some(now);
        match &mut p.migration {
            Migration::Out {
                to,
                confirmed: true,
                ..
            } => {
                let to = *to;
                drop(w);
                self.send_mesh(to, ShardMsg::ForwardInput { player: pid, input });
                return;
            }
            Migration::Out { held, .. } | Migration::In { held } => {
                if held.len() < self.cfg().inputs_per_tick_max * MIGRATION_HOLD_TICKS {
                    held.push(input);
                } else {
                    self.metrics.inputs_dropped_full.inc();
                }
                return;
            }
            Migration::None => {}
        }
        let Some(id) = p.instance.clone() else {
            let ever_joined = p.ever_joined;
            drop(w);
            if ever_joined {
                // A late input after a Leave: harmless, dropped.
                self.metrics.inputs_dropped_stale.inc();
            } else {
                self.send_error(conn, ErrorCode::OutOfOrder, "Input before Join");
                conn.request_close(CloseReason::PolicyViolation);
            }
            return;
        };
        if w.players[&pid].backlog.is_empty() {
            self.push_input(&mut w, &id, pid, input, now);
        } else {
            // Older inputs still wait in the backlog: keep the order.
            self.backlog_inputs(&mut w, pid, [input]);
        }
    }

    /// Appends inputs to the player's backlog, which the tick feeds into the
    /// instance at most --inputs-per-tick-max per tick. Inputs carried over a
    /// move arrive in bursts; feeding them this way applies every one of
    /// them, in order, without lifting the per-tick limit.
    fn backlog_inputs(
        &self,
        w: &mut World,
        pid: PlayerId,
        inputs: impl IntoIterator<Item = PlayerInput>,
    ) {
        let cap = self.cfg().inputs_per_tick_max * MIGRATION_HOLD_TICKS;
        let Some(p) = w.players.get_mut(&pid) else {
            return;
        };
        for input in inputs {
            if p.backlog.len() < cap {
                p.backlog.push_back(input);
            } else {
                self.metrics.inputs_dropped_full.inc();
            }
        }
        if !p.backlog.is_empty() {
            w.backlogged.insert(pid);
        }
    }

    /// Moves backlogged inputs into their instances' queues, up to the
    /// per-tick limit. Called by the tick before it steps.
    pub(crate) fn feed_backlogs(&self, w: &mut World, now: Instant) {
        let cap = self.cfg().inputs_per_tick_max;
        let pids: Vec<PlayerId> = w.backlogged.iter().copied().collect();
        for pid in pids {
            let Some(p) = w.players.get_mut(&pid) else {
                w.backlogged.remove(&pid);
                continue;
            };
            let Some(id) = p.instance.clone() else {
                continue; // not seated yet (a move under way): keep waiting
            };
            if !matches!(p.migration, Migration::None) {
                continue;
            }
            let queued = w
                .instances
                .get(&id)
                .and_then(|h| h.inst.seat(pid))
                .map_or(cap, |s| s.inputs_queued());
            let take = cap.saturating_sub(queued);
            let p = w.players.get_mut(&pid).expect("checked above");
            let batch: Vec<PlayerInput> = p.backlog.drain(..take.min(p.backlog.len())).collect();
            let empty = p.backlog.is_empty();
            for input in batch {
                self.push_input(w, &id, pid, input, now);
            }
            if empty {
                w.backlogged.remove(&pid);
            }
        }
    }

    /// Queues an input; `arrived` is when it reached this shard.
    fn push_input(
        &self,
        w: &mut World,
        id: &InstanceId,
        pid: PlayerId,
        input: PlayerInput,
        arrived: Instant,
    ) {
        let Some(hosted) = w.instances.get_mut(id) else {
            return;
        };
        match hosted.inst.push_input(pid, input) {
            PushInput::Queued => {
                if let Some(p) = w.players.get_mut(&pid) {
                    p.inputs_pending_since.push(arrived);
                }
            }
            PushInput::DroppedFull => self.metrics.inputs_dropped_full.inc(),
            PushInput::DroppedStale | PushInput::NotSeated => {
                self.metrics.inputs_dropped_stale.inc()
            }
        }
    }

    /// Starts moving `pid` to `instance` on shard `to`.
    fn migrate_out(&self, pid: PlayerId, instance: InstanceId, create: bool, to: usize) {
        let mut w = self.world.borrow_mut();
        let p = w.players.get_mut(&pid).expect("player exists");
        p.migration = Migration::Out {
            to,
            instance: instance.clone(),
            confirmed: false,
            held: Vec::new(),
        };
        let card = PlayerCard {
            id: pid,
            name: p.name.clone(),
            token: p.token.clone(),
        };
        drop(w);
        self.metrics.migrations_out.inc();
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

    /// The connection is gone (any reason). A seated player keeps its seat
    /// for the reconnect grace; anyone else is forgotten.
    pub fn on_disconnect(&self, conn: &Conn, now: Instant) {
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
        match &p.migration {
            Migration::Out {
                to,
                confirmed: true,
                ..
            } => {
                let to = *to;
                w.remove_player(pid);
                drop(w);
                self.send_mesh(to, ShardMsg::ForwardEnd { player: pid });
            }
            // Unconfirmed: the result decides (see on_migrate_result).
            Migration::Out { .. } => p.detached_at = Some(now),
            _ if p.instance.is_some() => p.detached_at = Some(now),
            _ => {
                w.remove_player(pid);
            }
        }
    }

    /// A message from another shard.
    pub fn on_mesh(&self, msg: ShardMsg, now: Instant) {
        match msg {
            ShardMsg::HandOff { .. } => unreachable!("hand-overs are served by the runtime"),
            ShardMsg::MigrateIn {
                player,
                instance,
                create,
                from,
            } => {
                assert_eq!(shard_for(&instance, self.shards), self.id, "not our instance");
                let result = self.migrate_in(player.clone(), instance.clone(), create, now);
                self.send_mesh(
                    from,
                    ShardMsg::MigrateResult {
                        player: player.id,
                        instance,
                        result,
                    },
                );
            }
            ShardMsg::MigrateResult {
                player,
                instance,
                result,
            } => self.on_migrate_result(player, instance, result, now),
            ShardMsg::ForwardInput { player, input } => {
                let mut w = self.world.borrow_mut();
                self.backlog_inputs(&mut w, player, [input]);
            }
            ShardMsg::ForwardEnd { player } => self.on_forward_end(player),
            ShardMsg::FindSeat { token, from, conn } => {
                let w = self.world.borrow();
                let instance = w
                    .tokens
                    .get(&token)
                    .and_then(|id| w.players.get(id))
                    .filter(|p| matches!(p.migration, Migration::None | Migration::In { .. }))
                    .and_then(|p| p.instance.clone());
                drop(w);
                self.send_mesh(
                    from,
                    ShardMsg::SeatFound {
                        conn,
                        instance,
                        shard: self.id,
                    },
                );
            }
            ShardMsg::SeatFound {
                conn,
                instance,
                shard,
            } => self.on_seat_found(conn, instance, shard),
            admin => self.on_admin_mesh(admin),
        }
    }

    fn migrate_in(
        &self,
        card: PlayerCard,
        instance: InstanceId,
        create: bool,
        now: Instant,
    ) -> Result<(), Refusal> {
        if self.draining.get() {
            return Err(refusal(ErrorCode::ShuttingDown, "server is draining"));
        }
        let mut w = self.world.borrow_mut();
        if w.players.contains_key(&card.id) {
            return Err(refusal(ErrorCode::Internal, "player already on the target shard"));
        }
        w.add_player(Player {
            id: card.id,
            name: card.name,
            token: card.token,
            conn: None,
            instance: None,
            ever_joined: true,
            detached_at: Some(now),
            migration: Migration::In { held: Vec::new() },
            last_input_at: None,
            inputs_pending_since: Vec::new(),
            backlog: Default::default(),
        });
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

    fn on_migrate_result(
        &self,
        pid: PlayerId,
        instance: InstanceId,
        result: Result<(), Refusal>,
        now: Instant,
    ) {
        let mut w = self.world.borrow_mut();
        let Some(p) = w.players.get_mut(&pid) else {
            return;
        };
        let Migration::Out { to, held, .. } = std::mem::take(&mut p.migration) else {
            return;
        };
        let conn = p.conn.clone();
        let token = p.token.clone();
        match result {
            Ok(()) => {
                self.unseat(&mut w, pid, LeaveReason::Moved, now);
                for input in held {
                    self.send_mesh(to, ShardMsg::ForwardInput { player: pid, input });
                }
                match conn {
                    Some(conn) => {
                        let p = w.players.get_mut(&pid).expect("player exists");
                        p.migration = Migration::Out {
                            to,
                            instance: instance.clone(),
                            confirmed: true,
                            held: Vec::new(),
                        };
                        drop(w);
                        self.send_migrate(&conn, &instance, &token, to);
                    }
                    None => {
                        w.remove_player(pid);
                        drop(w);
                        self.send_mesh(to, ShardMsg::ForwardEnd { player: pid });
                    }
                }
            }
            Err((code, message)) => {
                // Stay where we were; the inputs sent meanwhile apply here.
                if p.instance.is_some() {
                    self.backlog_inputs(&mut w, pid, held);
                } else if conn.is_none() {
                    w.remove_player(pid);
                }
                drop(w);
                if let Some(conn) = conn {
                    self.send_error(&conn, code, &message);
                }
            }
        }
    }

    fn on_forward_end(&self, pid: PlayerId) {
        let mut w = self.world.borrow_mut();
        let Some(p) = w.players.get_mut(&pid) else {
            return;
        };
        let Migration::In { held } = std::mem::take(&mut p.migration) else {
            return;
        };
        self.backlog_inputs(&mut w, pid, held);
    }

    fn on_seat_found(&self, conn_id: u64, instance: Option<InstanceId>, shard: usize) {
        let conn = self.conns.borrow().get(&conn_id).cloned();
        let mut lookups = self.lookups.borrow_mut();
        let Some(lookup) = lookups.get_mut(&conn_id) else {
            return; // already answered, or the connection is gone
        };
        lookup.replies_missing -= 1;
        let token = lookup.token.clone();
        let done = instance.is_some() || lookup.replies_missing == 0;
        if done {
            lookups.remove(&conn_id);
        }
        drop(lookups);
        let Some(conn) = conn.filter(|c| c.player().is_none()) else {
            return;
        };
        match instance {
            Some(instance) => self.send_migrate(&conn, &instance, &token, shard),
            None if done => self.refuse_resume(&conn),
            None => {}
        }
    }
}

/// Inputs held per player during a move to another shard, in ticks' worth
/// (× --inputs-per-tick-max): a move takes a mesh round trip plus the
/// client's reconnect, normally well under this.
const MIGRATION_HOLD_TICKS: usize = 64;

fn new_resume_token() -> String {
    let mut bytes = [0u8; RESUME_TOKEN_BYTES];
    getrandom::fill(&mut bytes).expect("OS random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
