//! What each client message and each mesh message does to a shard's world.
//!
//! Handlers run on the shard's core, between ticks; they queue replies on
//! connections (`Conn::send`) and never touch a socket. Inputs only go into
//! the instance's bounded queue; the tick applies them.

use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::auth::replay::Use;
use crate::directory::ToAgent;
use crate::game::{
    least_loaded, new_instance_id, shard_for, Instance, InstanceId, InstanceLimits, JoinError,
    PlayerId, PlayerInput, PushInput,
};
use crate::net::close::CloseReason;
use crate::net::conn::Conn;
use crate::protocol::{ClientCmd, ErrorCode, LeaveReason, ProtocolError, WelcomeInfo};
use crate::shard::world::{Hosted, Migration, Player, World};
use crate::shard::Shard;

/// Bytes of OS randomness in a resume token (128 bits, hex-encoded).
pub(crate) const RESUME_TOKEN_BYTES: usize = 16;
/// Player ids are at most 53 bits (JavaScript's exact integers).
const PLAYER_ID_MASK: u64 = (1 << 53) - 1;

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
                    ticket,
                },
                None,
            ) => self.on_hello(conn, protocol_version, player_name, resume_token, ticket),
            (ClientCmd::Hello { .. }, Some(_)) => self.send_error(
                conn,
                ErrorCode::OutOfOrder,
                "Hello was already accepted on this connection",
            ),
            (_, None) => {
                self.send_error(
                    conn,
                    ErrorCode::OutOfOrder,
                    "the first message must be Hello",
                );
                conn.request_close(CloseReason::PolicyViolation);
            }
            (
                ClientCmd::Join {
                    instance_id,
                    create,
                },
                Some(p),
            ) => self.on_join(conn, p, instance_id, create, now),
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

    fn on_hello(
        &self,
        conn: &Rc<Conn>,
        version: u16,
        name: String,
        token: Option<String>,
        ticket: Option<String>,
    ) {
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
        if self.stopping.get() {
            self.send_error(conn, ErrorCode::ShuttingDown, "server is shutting down");
            conn.request_close(CloseReason::GoingAway);
            return;
        }
        match token {
            // The resume token is the credential of a player already admitted.
            Some(token) => self.resume(conn, &token),
            None => {
                let allowed = match self.check_ticket(ticket.as_deref()) {
                    Ok(allowed) => allowed,
                    Err((code, message)) => {
                        self.metrics.tickets_refused.inc();
                        self.send_error(conn, code, &message);
                        conn.request_close(if code == ErrorCode::ServerFull {
                            CloseReason::TryAgainLater
                        } else {
                            CloseReason::PolicyViolation
                        });
                        return;
                    }
                };
                self.new_player(conn, name, allowed)
            }
        }
    }

    /// With --join-secret: the ticket must be valid and unused. Returns the
    /// instance it restricts the player to, if any.
    fn check_ticket(&self, ticket: Option<&str>) -> Result<Option<InstanceId>, Refusal> {
        let Some(secret) = self.node.join_secret.as_deref() else {
            return Ok(None);
        };
        let Some(ticket) = ticket else {
            return Err(refusal(
                ErrorCode::TicketRequired,
                "this server admits players with a join ticket from the game's backend",
            ));
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let grant = crate::auth::ticket::verify(secret, ticket, now)
            .map_err(|e| refusal(ErrorCode::TicketInvalid, e.to_string()))?;
        match self
            .node
            .used_tickets
            .record(&grant.nonce, grant.expires_unix_s, now)
        {
            Use::First => {}
            Use::Replayed => {
                return Err(refusal(
                    ErrorCode::TicketReplayed,
                    "this ticket was already used",
                ))
            }
            Use::Full => {
                return Err(refusal(
                    ErrorCode::ServerFull,
                    "too many unexpired tickets in use; retry shortly",
                ))
            }
        }
        match grant.instance {
            None => Ok(None),
            Some(i) => InstanceId::parse(&i)
                .map(Some)
                .map_err(|e| refusal(ErrorCode::TicketInvalid, format!("ticket instance: {e}"))),
        }
    }

    fn new_player(&self, conn: &Rc<Conn>, name: String, allowed_instance: Option<InstanceId>) {
        let mut w = self.world.borrow_mut();
        let id = self.new_player_id(&w);
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
            allowed_instance,
        });
        self.send_welcome(conn, &w.players[&id], false);
    }

    /// A player id not in use on this shard: random, non-zero, and below
    /// 2^53 so that JSON readers that use doubles (JavaScript) read the ids
    /// the admin API and `shardline fleet` print exactly.
    pub(crate) fn new_player_id(&self, w: &World) -> PlayerId {
        loop {
            let id = self.next_u64() & PLAYER_ID_MASK;
            if id != 0 && !w.players.contains_key(&id) {
                return id;
            }
        }
    }

    pub(crate) fn send_welcome(&self, conn: &Conn, p: &Player, resumed: bool) {
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

    /// Hello with a resume token: take the seat back, or point the client to
    /// the shard that holds it, or refuse.
    pub(crate) fn resume(&self, conn: &Rc<Conn>, token: &str) {
        let mut w = self.world.borrow_mut();
        let Some(&id) = w.tokens.get(token) else {
            drop(w);
            if self.shards > 1 {
                self.find_seat_elsewhere(conn, token);
            } else {
                self.resume_elsewhere_or_refuse(conn, token);
            }
            return;
        };
        let p = w.players.get_mut(&id).expect("token maps to a player");
        if !matches!(p.migration, Migration::None) {
            drop(w);
            self.send_error(
                conn,
                ErrorCode::OutOfOrder,
                "this player is moving between shards; retry",
            );
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

    fn on_join(
        &self,
        conn: &Rc<Conn>,
        pid: PlayerId,
        mut target: Option<InstanceId>,
        create: bool,
        now: Instant,
    ) {
        if let Some(allowed) = self.world.borrow().players[&pid].allowed_instance.clone() {
            match &target {
                None => target = Some(allowed),
                Some(t) if *t == allowed => {}
                Some(t) => {
                    self.metrics.tickets_refused.inc();
                    self.send_error(
                        conn,
                        ErrorCode::TicketWrongInstance,
                        &format!("your join ticket admits you to {allowed}, not {t}"),
                    );
                    return;
                }
            }
        }
        if self.draining.get() {
            self.send_error(
                conn,
                ErrorCode::ShuttingDown,
                "server is draining; no new placements",
            );
            return;
        }
        {
            let w = self.world.borrow();
            let p = &w.players[&pid];
            if !matches!(p.migration, Migration::None) {
                drop(w);
                self.send_error(
                    conn,
                    ErrorCode::OutOfOrder,
                    "a move to another shard is under way",
                );
                return;
            }
            if target.is_some() && p.instance == target {
                drop(w);
                self.send_error(
                    conn,
                    ErrorCode::AlreadyInInstance,
                    "already in this instance",
                );
                return;
            }
        }
        if let Some(id) = &target {
            if self.join_needs_directory(id) {
                // In a fleet: which node owns it? (the Join resumes after)
                self.join_after_directory(conn, pid, id.clone(), create);
                return;
            }
        }
        self.join_placed(conn, pid, target, create, now);
    }

    /// A Join whose target (if any) is known to belong to this node: to the
    /// owning shard, or seated here.
    pub(crate) fn join_placed(
        &self,
        conn: &Rc<Conn>,
        pid: PlayerId,
        target: Option<InstanceId>,
        create: bool,
        now: Instant,
    ) {
        if let Some(id) = &target {
            let owner = shard_for(id, self.shards);
            if owner != self.id {
                self.migrate_out(conn, pid, id.clone(), create, owner, None);
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
    pub(crate) fn seat_locally(
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
        if let Some(dir) = &self.node.directory {
            // In a fleet: any node must find this seat from now on.
            dir.tell(ToAgent::Seat {
                token: p.token.clone(),
                instance: id.clone(),
            });
        }
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
                format!(
                    "shard {} already runs {max} instances (--instances-per-shard-max)",
                    self.id
                ),
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
        crate::directory::link::seat_ended(self, &p.token, &id, reason);
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
    pub(crate) fn send_joined(
        &self,
        w: &mut World,
        conn: &Conn,
        instance: &InstanceId,
        pid: PlayerId,
    ) {
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
        if matches!(p.migration, Migration::Out { .. }) {
            // Reading is paused during a move; an input here is a bug.
            debug_assert!(false, "input while moving");
            return;
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
        self.push_input(&mut w, &id, pid, input, now);
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
}

pub(crate) fn new_resume_token() -> String {
    let mut bytes = [0u8; RESUME_TOKEN_BYTES];
    getrandom::fill(&mut bytes).expect("OS random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
