//! What each client message does to the shard's world.
//!
//! Handlers answer through the [`Effects`] sink and never touch a socket.
//! Inputs only go into the instance's bounded queue; the instance's tick
//! applies them.

use std::time::Instant;

use super::delta::{AckOutcome, FullReason, Peer};
use super::effects::{Ask, Effects};
use super::world::{Creation, Hosted, Migration, Player, World};
use super::{ConnId, Core};
use crate::auth::replay::Use;
use crate::directory::ToAgent;
use crate::game::{
    least_loaded, new_instance_id, shard_for, InstanceId, InstanceLimits, JoinError, PlayerId,
    PlayerInput, PushInput,
};
use crate::protocol::close::CloseReason;
use crate::protocol::{
    decode_client, ClientCmd, ErrorCode, LeaveReason, ProtocolError, WelcomeInfo,
};

/// Bytes of OS randomness in a resume token (128 bits, hex-encoded).
pub(crate) const RESUME_TOKEN_BYTES: usize = 16;
/// Player ids are at most 53 bits (JavaScript's exact integers).
const PLAYER_ID_MASK: u64 = (1 << 53) - 1;

pub(crate) type Refusal = (ErrorCode, String);

pub(crate) fn refusal(code: ErrorCode, message: impl Into<String>) -> Refusal {
    (code, message.into())
}

/// What a Hello's join ticket admits the player to (everything, without
/// --join-secret).
#[derive(Debug, Default)]
struct Admitted {
    /// The only instance it may join.
    instance: Option<InstanceId>,
    /// It may create instances (needed with --create-policy ticket).
    create: bool,
    /// The ticket's claims, for `Game::on_join`.
    claims: std::sync::Arc<crate::game::Claims>,
}

impl Core {
    /// One binary message from `conn` (`bytes` is its whole payload).
    pub fn message(&mut self, fx: &mut dyn Effects, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(session) = self.sessions.get(&conn) else {
            return; // ended meanwhile
        };
        if session.closing || session.paused_since.is_some() {
            // The driver stops reading at a pause or close; a message
            // already taken is dropped with the connection's state.
            return;
        }
        self.metrics.bytes_in.add(bytes.len() as u64);
        match decode_client(bytes) {
            Ok(cmd) => self.on_client(fx, now, conn, cmd),
            Err(e) => self.on_bad_message(fx, conn, &e),
        }
    }

    /// One decoded client message from `conn`.
    pub fn on_client(&mut self, fx: &mut dyn Effects, now: Instant, conn: ConnId, cmd: ClientCmd) {
        let player = self.player_of(conn);
        match (cmd, player) {
            (
                ClientCmd::Hello {
                    protocol_version,
                    player_name,
                    resume_token,
                    ticket,
                },
                None,
            ) => self.on_hello(
                fx,
                now,
                conn,
                protocol_version,
                player_name,
                resume_token,
                ticket,
            ),
            (ClientCmd::Hello { .. }, Some(_)) => self.send_error(
                fx,
                conn,
                ErrorCode::OutOfOrder,
                "Hello was already accepted on this connection",
            ),
            (_, None) => {
                self.send_error(
                    fx,
                    conn,
                    ErrorCode::OutOfOrder,
                    "the first message must be Hello",
                );
                self.close(fx, conn, CloseReason::PolicyViolation);
            }
            (
                ClientCmd::Join {
                    instance_id,
                    create,
                },
                Some(p),
            ) => self.on_join(fx, now, conn, p, instance_id, create),
            (ClientCmd::Leave, Some(p)) => self.on_leave(fx, now, conn, p),
            (ClientCmd::Input { input, ack_tick }, Some(p)) => {
                if ack_tick != 0 {
                    self.on_ack(p, ack_tick);
                }
                self.on_input(fx, now, conn, p, input)
            }
            (ClientCmd::Ack { tick }, Some(p)) => self.on_ack(p, tick),
            (ClientCmd::Message { kind, body }, Some(p)) => {
                self.on_game_message(fx, now, conn, p, kind, &body)
            }
            (ClientCmd::Ping { client_time }, Some(_)) => {
                let server_time_us = self.unix_us(now);
                let bytes = self.enc.pong(client_time, server_time_us);
                self.metrics.messages_out.inc();
                fx.send(conn, bytes);
            }
        }
    }

    pub(crate) fn send_error(
        &mut self,
        fx: &mut dyn Effects,
        conn: ConnId,
        code: ErrorCode,
        message: &str,
    ) {
        self.metrics.errors_sent.inc();
        self.metrics.messages_out.inc();
        fx.send(conn, self.enc.error(code, message));
    }

    /// A message that failed to decode or validate.
    pub(crate) fn on_bad_message(
        &mut self,
        fx: &mut dyn Effects,
        conn: ConnId,
        err: &ProtocolError,
    ) {
        self.send_error(fx, conn, err.code, &err.message);
        if err.is_fatal() {
            self.close(fx, conn, CloseReason::ProtocolError);
        } else if err.code == ErrorCode::BadInput {
            self.metrics.inputs_dropped_bad.inc();
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_hello(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        version: u16,
        name: String,
        token: Option<String>,
        ticket: Option<String>,
    ) {
        if !crate::protocol::PROTOCOL_VERSIONS.contains(&version) {
            self.send_error(
                fx,
                conn,
                ErrorCode::UnsupportedVersion,
                &format!(
                    "protocol version {version} is not supported; this server speaks {} to {}",
                    crate::protocol::PROTOCOL_VERSIONS.start(),
                    crate::protocol::PROTOCOL_VERSIONS.end()
                ),
            );
            self.close(fx, conn, CloseReason::PolicyViolation);
            return;
        }
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.protocol = version;
        }
        if self.stopping {
            self.send_error(fx, conn, ErrorCode::ShuttingDown, "server is shutting down");
            self.close(fx, conn, CloseReason::GoingAway);
            return;
        }
        match token {
            // The resume token is the credential of a player already admitted.
            // The session's version (set above) is read by the resume
            // wherever the seat is found (this shard, another shard,
            // another node).
            Some(token) => self.resume(fx, now, conn, &token),
            None => {
                let admitted = match self.check_ticket(ticket.as_deref(), now) {
                    Ok(admitted) => admitted,
                    Err((code, message)) => {
                        self.metrics.tickets_refused.inc();
                        self.send_error(fx, conn, code, &message);
                        let reason = if code == ErrorCode::ServerFull {
                            CloseReason::TryAgainLater
                        } else {
                            CloseReason::PolicyViolation
                        };
                        self.close(fx, conn, reason);
                        return;
                    }
                };
                self.new_player(fx, conn, name, admitted)
            }
        }
    }

    /// With --join-secret: the ticket must be valid and unused. Returns what
    /// it admits the player to.
    fn check_ticket(&self, ticket: Option<&str>, now: Instant) -> Result<Admitted, Refusal> {
        let Some(secret) = self.shared.join_secret.as_deref() else {
            return Ok(Admitted::default());
        };
        let Some(ticket) = ticket else {
            return Err(refusal(
                ErrorCode::TicketRequired,
                "this server admits players with a join ticket from the game's backend",
            ));
        };
        let now_s = self.unix_us(now) / 1_000_000;
        let grant = crate::auth::ticket::verify(secret, ticket, now_s)
            .map_err(|e| refusal(ErrorCode::TicketInvalid, e.to_string()))?;
        match self
            .shared
            .used_tickets
            .record(&grant.nonce, grant.expires_unix_s, now_s)
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
        let instance =
            match &grant.instance {
                None => None,
                Some(i) => Some(InstanceId::parse(i).map_err(|e| {
                    refusal(ErrorCode::TicketInvalid, format!("ticket instance: {e}"))
                })?),
            };
        Ok(Admitted {
            instance,
            create: grant.create,
            claims: std::sync::Arc::new(crate::game::Claims {
                player: grant.player,
                instance: grant.instance,
                create: grant.create,
                extra: grant.claims,
            }),
        })
    }

    fn new_player(&mut self, fx: &mut dyn Effects, conn: ConnId, name: String, admitted: Admitted) {
        let id = self.new_player_id();
        let token = new_resume_token();
        let mut peer_ip = None;
        let mut protocol = crate::protocol::PROTOCOL_VERSION_MIN;
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.player = Some(id);
            peer_ip = s.peer_ip;
            protocol = s.protocol;
        }
        self.world.add_player(Player {
            id,
            name,
            token,
            conn: Some(conn),
            instance: None,
            ever_joined: false,
            detached_at: None,
            migration: Migration::None,
            last_input_at: None,
            inputs_pending_since: Vec::new(),
            allowed_instance: admitted.instance,
            creation: Creation {
                peer_ip,
                granted: admitted.create,
                bucket: None,
            },
            protocol,
            v2: None,
            claims: admitted.claims,
            message_bucket: None,
        });
        self.send_welcome(fx, conn, id, false);
    }

    /// A player id not in use on this shard: random, non-zero, and below
    /// 2^53 so that JSON readers that use doubles (JavaScript) read the ids
    /// the admin API and `shardline fleet` print exactly.
    pub(crate) fn new_player_id(&mut self) -> PlayerId {
        loop {
            let id = self.rng.next_u64() & PLAYER_ID_MASK;
            if id != 0 && !self.world.players.contains_key(&id) {
                return id;
            }
        }
    }

    pub(crate) fn send_welcome(
        &mut self,
        fx: &mut dyn Effects,
        conn: ConnId,
        pid: PlayerId,
        resumed: bool,
    ) {
        let limits = self.limits_info();
        let cfg = self.shared.cfg.clone();
        let Some(p) = self.world.players.get(&pid) else {
            return;
        };
        let bytes = self.enc.welcome(&WelcomeInfo {
            player_id: p.id,
            resume_token: &p.token,
            node_id: &cfg.node_id,
            region: &cfg.region,
            shard: self.id as u16,
            tick_rate_hz: cfg.tick_rate_hz as u16,
            limits,
            resumed,
        });
        self.metrics.messages_out.inc();
        fx.send(conn, bytes);
    }

    /// Hello with a resume token: take the seat back, or point the client to
    /// the shard that holds it, or refuse.
    pub(crate) fn resume(&mut self, fx: &mut dyn Effects, now: Instant, conn: ConnId, token: &str) {
        let Some(&id) = self.world.tokens.get(token) else {
            if self.shards > 1 {
                self.find_seat_elsewhere(fx, now, conn, token);
            } else {
                self.resume_elsewhere_or_refuse(fx, now, conn, token);
            }
            return;
        };
        let p = self
            .world
            .players
            .get_mut(&id)
            .expect("token maps to a player");
        if !matches!(p.migration, Migration::None) {
            self.send_error(
                fx,
                conn,
                ErrorCode::OutOfOrder,
                "this player is moving between shards; retry",
            );
            return;
        }
        let old = p.conn.replace(conn);
        p.detached_at = None;
        if let Some(s) = self.sessions.get(&conn) {
            p.protocol = s.protocol;
        }
        if let Some(ip) = self.sessions.get(&conn).and_then(|s| s.peer_ip) {
            // The per-IP limit follows the player to its new address; its
            // own budget is kept (a reconnect does not refill it).
            p.creation.peer_ip = Some(ip);
        }
        if let Some(old) = old {
            if let Some(s) = self.sessions.get_mut(&old) {
                s.player = None;
            }
            self.close(fx, old, CloseReason::Replaced);
        }
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.player = Some(id);
        }
        self.metrics.players_resumed.inc();
        self.send_welcome(fx, conn, id, true);
        if let Some(instance) = self.world.players[&id].instance.clone() {
            if self.game_rejoin(fx, now, conn, id, &instance) {
                self.send_joined(fx, conn, &instance, id, FullReason::Resumed);
            }
        }
    }

    fn on_join(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        pid: PlayerId,
        mut target: Option<InstanceId>,
        create: bool,
    ) {
        if let Some(allowed) = self.world.players[&pid].allowed_instance.clone() {
            match &target {
                None => target = Some(allowed),
                Some(t) if *t == allowed => {}
                Some(t) => {
                    self.metrics.tickets_refused.inc();
                    let why = format!("your join ticket admits you to {allowed}, not {t}");
                    self.send_error(fx, conn, ErrorCode::TicketWrongInstance, &why);
                    return;
                }
            }
        }
        if self.draining {
            self.send_error(
                fx,
                conn,
                ErrorCode::ShuttingDown,
                "server is draining; no new placements",
            );
            return;
        }
        let p = &self.world.players[&pid];
        if !matches!(p.migration, Migration::None) {
            self.send_error(
                fx,
                conn,
                ErrorCode::OutOfOrder,
                "a move to another shard is under way",
            );
            return;
        }
        if target.is_some() && p.instance == target {
            self.send_error(
                fx,
                conn,
                ErrorCode::AlreadyInInstance,
                "already in this instance",
            );
            return;
        }
        if let Some(id) = &target {
            if self.join_needs_directory(id) {
                // In a fleet: which node owns it? (the Join goes on with the answer)
                self.ask_directory(
                    fx,
                    now,
                    conn,
                    Ask::Claim {
                        player: pid,
                        instance: id.clone(),
                        create,
                        create_here: self.may_create_instances(),
                    },
                );
                return;
            }
        }
        self.join_placed(fx, now, conn, pid, target, create);
    }

    /// A Join whose target (if any) is known to belong to this node: to the
    /// owning shard, or seated here.
    pub(crate) fn join_placed(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        pid: PlayerId,
        target: Option<InstanceId>,
        create: bool,
    ) {
        if let Some(id) = &target {
            let owner = shard_for(id, self.shards);
            if owner != self.id {
                self.migrate_out(fx, now, conn, pid, id.clone(), create, owner, None);
                return;
            }
        }
        match self.seat_locally(fx, pid, target, create, now) {
            Ok(instance) => self.send_joined(fx, conn, &instance, pid, FullReason::Joined),
            Err((code, msg)) => self.send_error(fx, conn, code, &msg),
        }
    }

    /// Seats `pid` in a local instance (named, or the least loaded), leaving
    /// its current one, and tells the others. The player stays where it was
    /// if the new seat cannot be had.
    pub(crate) fn seat_locally(
        &mut self,
        fx: &mut dyn Effects,
        pid: PlayerId,
        target: Option<InstanceId>,
        create: bool,
        now: Instant,
    ) -> Result<InstanceId, Refusal> {
        let id = match target {
            Some(id) => {
                debug_assert_eq!(shard_for(&id, self.shards), self.id);
                if !self.world.instances.contains_key(&id) {
                    if !create {
                        return Err(refusal(
                            ErrorCode::InstanceNotFound,
                            format!("instance {id} does not exist (Join with create=false)"),
                        ));
                    }
                    self.create_for(pid, id.clone(), now)?;
                }
                id
            }
            None => match least_loaded(self.world.loads()).cloned() {
                Some(id) => id,
                None => {
                    let (shard, shards, rng) = (self.id, self.shards, &mut self.rng);
                    let id = new_instance_id(shard, shards, || rng.next_u64());
                    self.create_for(pid, id.clone(), now)?;
                    id
                }
            },
        };
        let hosted = self.world.instances.get(&id).expect("instance exists");
        if !hosted.inst.has_room() {
            return Err(refusal(
                ErrorCode::InstanceFull,
                format!(
                    "instance {id} is full ({} players)",
                    hosted.inst.limits().players_max
                ),
            ));
        }
        self.unseat(fx, pid, LeaveReason::Moved, now);
        let p = self.world.players.get_mut(&pid).expect("player exists");
        let hosted = self.world.instances.get_mut(&id).expect("instance exists");
        let entity = match hosted.inst.join_with(pid, &p.name, &p.claims) {
            Ok(seat) => seat.entity,
            Err(JoinError::Refused(why)) => {
                self.metrics.joins_refused.inc();
                return Err(refusal(ErrorCode::JoinRefused, cut_reason(why.0)));
            }
            Err(JoinError::GameFailed(_)) => {
                self.game_failed(fx, &id);
                return Err(refusal(
                    ErrorCode::Internal,
                    format!("instance {id} stopped: its game rules failed"),
                ));
            }
            Err(JoinError::Full(..)) | Err(JoinError::AlreadySeated) => {
                unreachable!("room and seat were checked above")
            }
        };
        hosted.empty_since = None;
        if hosted.creator != Some(pid) {
            hosted.held_game = true;
        }
        let slot = hosted.slot;
        self.slots.player_joined(slot);
        p.instance = Some(id.clone());
        p.ever_joined = true;
        if self.shared.public_url.is_some() {
            // In a fleet: any node must find this seat from now on.
            fx.directory(ToAgent::Seat {
                token: p.token.clone(),
                instance: id.clone(),
            });
        }
        let name = p.name.clone();
        let bytes = self.enc.player_joined(pid, entity, &name);
        let sent = self.world.broadcast(fx, &id, Some(pid), bytes);
        self.metrics.messages_out.add(sent);
        Ok(id)
    }

    /// A player's Join creates `id`: admitted by the creation limits first.
    fn create_for(&mut self, pid: PlayerId, id: InstanceId, now: Instant) -> Result<(), Refusal> {
        self.admit_creation(pid, now)?;
        self.create_instance(id, now, Some(pid)).inspect_err(|_| {
            self.creation_failed(pid);
        })
    }

    pub(crate) fn create_instance(
        &mut self,
        id: InstanceId,
        now: Instant,
        creator: Option<PlayerId>,
    ) -> Result<(), Refusal> {
        let max = self.cfg().instances_per_shard_max;
        if self.world.instances.len() >= max {
            return Err(refusal(
                ErrorCode::ShardFull,
                format!(
                    "shard {} already runs {max} instances (--instances-per-shard-max)",
                    self.id
                ),
            ));
        }
        let limits = InstanceLimits {
            players_max: self.settings.players_per_instance_max,
            inputs_per_tick_max: self.cfg().inputs_per_tick_max,
        };
        let mut inst = match crate::game::Instance::create(
            self.shared.factory.as_ref(),
            id.clone(),
            limits,
        ) {
            Ok(inst) => inst,
            Err(e) => {
                self.metrics.game_panics.inc();
                tracing::error!(shard = self.id, instance = %id, error = %e, "game rules failed creating an instance");
                return Err(refusal(
                    ErrorCode::Internal,
                    format!("instance {id} could not be created: its game rules failed"),
                ));
            }
        };
        inst.set_message_limits(self.message_limits());
        let (slot, next_due) = self.slots.assign(&id, now);
        self.world.instances.insert(
            id,
            Hosted {
                inst,
                empty_since: Some(now),
                creator,
                created_at: now,
                held_game: creator.is_none(),
                tick_us: Default::default(),
                slot,
                next_due,
                overruns: 0,
                v2: Default::default(),
            },
        );
        self.metrics.instances_created.inc();
        Ok(())
    }

    /// Removes `pid` from its instance (if any) and tells the others.
    pub(crate) fn unseat(
        &mut self,
        fx: &mut dyn Effects,
        pid: PlayerId,
        reason: LeaveReason,
        now: Instant,
    ) {
        if self.leaving_abandons(pid, now) {
            let mut bucket = self.world.players.get(&pid).and_then(|p| p.creation.bucket);
            self.charge_abandoned(&mut bucket, now);
            if let Some(p) = self.world.players.get_mut(&pid) {
                p.creation.bucket = bucket;
            }
        }
        let Some(p) = self.world.players.get_mut(&pid) else {
            return;
        };
        let Some(id) = p.instance.take() else {
            return;
        };
        // In a fleet the directory forgets a seat that ended (its player
        // left, or its grace ran out), so a resume of its token is refused
        // at once on every node instead of being sent back here. A move's
        // seat lives on where the player went.
        let ended = matches!(reason, LeaveReason::Left | LeaveReason::TimedOut);
        if ended && self.shared.public_url.is_some() && !p.token.is_empty() {
            fx.directory(ToAgent::SeatEnded {
                token: p.token.clone(),
                instance: id.clone(),
            });
        }
        let Some(hosted) = self.world.instances.get_mut(&id) else {
            return;
        };
        let left = hosted.inst.leave_with(pid, leave_cause(reason));
        let failed = hosted.inst.failed();
        if let Some(seat) = left {
            self.slots.player_left(hosted.slot);
            if hosted.inst.is_empty() {
                hosted.empty_since = Some(now);
            }
            let bytes = self.enc.player_left(pid, seat.entity, reason);
            let sent = self.world.broadcast(fx, &id, None, bytes);
            self.metrics.messages_out.add(sent);
        }
        if failed {
            self.game_failed(fx, &id);
        }
    }

    /// Sends the player its Joined (entity and full state). A v2 player's
    /// deltas start over: its next update is a full state, counted as
    /// `why`.
    pub(crate) fn send_joined(
        &mut self,
        fx: &mut dyn Effects,
        conn: ConnId,
        instance: &InstanceId,
        pid: PlayerId,
        why: FullReason,
    ) {
        if let Some(p) = self.world.players.get_mut(&pid) {
            p.v2 =
                (p.protocol >= crate::protocol::fb::ProtocolVersion::V2.0).then(|| Peer::new(why));
        }
        let Some(hosted) = self.world.instances.get_mut(instance) else {
            return;
        };
        let Some(entity) = hosted.inst.seat(pid).map(|s| s.entity) else {
            return;
        };
        let scratch = &mut self.scratch;
        scratch.custom.clear();
        let view = hosted.inst.view(&mut scratch.custom);
        let Ok((tick, bounds, entities)) = view else {
            self.game_failed(fx, &instance.clone());
            return;
        };
        // Version 1 gets exactly what it always got: no poses.
        let v1 = self
            .world
            .players
            .get(&pid)
            .is_some_and(|p| p.protocol < crate::protocol::GAME_EVENTS_VERSION);
        self.enc.set_poses(!v1);
        let bytes = self.enc.joined(
            instance.as_str(),
            entity,
            tick,
            bounds,
            entities,
            &scratch.custom,
        );
        self.metrics.messages_out.inc();
        fx.send(conn, bytes);
        self.enc.set_poses(true);
    }

    /// A v2 client applied StateDelta `tick`: its next deltas are encoded
    /// against it. Anything else is ignored and counted.
    fn on_ack(&mut self, pid: PlayerId, tick: u64) {
        let outcome = self
            .world
            .players
            .get_mut(&pid)
            .and_then(|p| p.v2.as_mut())
            .map_or(AckOutcome::Ignored, |peer| peer.ack(tick));
        if outcome == AckOutcome::Ignored {
            self.metrics.acks_ignored.inc();
        }
    }

    fn on_leave(&mut self, fx: &mut dyn Effects, now: Instant, conn: ConnId, pid: PlayerId) {
        if self.world.players[&pid].instance.is_none() {
            self.send_error(fx, conn, ErrorCode::NotInInstance, "not in an instance");
            return;
        }
        self.unseat(fx, pid, LeaveReason::Left, now);
    }

    fn on_input(
        &mut self,
        fx: &mut dyn Effects,
        now: Instant,
        conn: ConnId,
        pid: PlayerId,
        input: PlayerInput,
    ) {
        self.metrics.inputs_received.inc();
        let p = self
            .world
            .players
            .get_mut(&pid)
            .expect("conn's player exists");
        p.last_input_at = Some(now);
        if matches!(p.migration, Migration::Out { .. }) {
            // Reading is paused during a move; an input here is a bug.
            debug_assert!(false, "input while moving");
            return;
        }
        let Some(id) = p.instance.clone() else {
            if p.ever_joined {
                // A late input after a Leave: harmless, dropped.
                self.metrics.inputs_dropped_stale.inc();
            } else {
                self.send_error(fx, conn, ErrorCode::OutOfOrder, "Input before Join");
                self.close(fx, conn, CloseReason::PolicyViolation);
            }
            return;
        };
        push_input(&mut self.world, &self.metrics, &id, pid, input, now);
    }
}

/// Queues an input; `arrived` is when it reached this shard.
fn push_input(
    w: &mut World,
    metrics: &crate::metrics::ShardMetrics,
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
        PushInput::DroppedFull => metrics.inputs_dropped_full.inc(),
        PushInput::DroppedStale | PushInput::NotSeated => metrics.inputs_dropped_stale.inc(),
    }
}

/// What the game is told about a leave.
pub(crate) fn leave_cause(reason: LeaveReason) -> crate::game::LeaveCause {
    use crate::game::LeaveCause;
    match reason {
        LeaveReason::TimedOut => LeaveCause::TimedOut,
        LeaveReason::Moved => LeaveCause::Moved,
        LeaveReason::Kicked => LeaveCause::Kicked,
        _ => LeaveCause::Left,
    }
}

/// A game's refusal reason as sent to the client: at most
/// `game::hooks::REFUSAL_LEN_MAX` bytes.
pub(crate) fn cut_reason(mut why: String) -> String {
    let mut end = why.len().min(crate::game::hooks::REFUSAL_LEN_MAX);
    while !why.is_char_boundary(end) {
        end -= 1;
    }
    why.truncate(end);
    why
}

pub(crate) fn new_resume_token() -> String {
    let mut bytes = [0u8; RESUME_TOKEN_BYTES];
    getrandom::fill(&mut bytes).expect("OS random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
