//! Server → client messages: encoding on the server ([`Encoder`]) and
//! decoding for client-side tools ([`decode_server`], [`peek_state_update`]).

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, Vector, WIPOffset};

use super::delta::DeltaRef;
use super::error::verifier_reason;
use super::{fb, ErrorCode, LeaveReason, ProtocolError};
use crate::game::types::EntityView;

/// Limits sent in `Welcome`, so a client can stay inside them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LimitsInfo {
    pub max_payload_bytes: u32,
    pub inputs_per_tick_max: u16,
    pub players_per_instance_max: u16,
    pub heartbeat_ms: u32,
    pub connect_timeout_ms: u32,
    pub reconnect_grace_ms: u32,
    /// Ticks of history a delta may be encoded against (version 2).
    pub delta_history_ticks: u16,
    /// --message-bytes-max.
    pub message_bytes_max: u32,
    /// --messages-per-tick-max.
    pub messages_per_tick_max: u16,
}

/// Everything a `Welcome` carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WelcomeInfo<'a> {
    pub player_id: u64,
    pub resume_token: &'a str,
    pub node_id: &'a str,
    pub region: &'a str,
    pub shard: u16,
    pub tick_rate_hz: u16,
    pub limits: LimitsInfo,
    pub resumed: bool,
}

/// Builds server messages. One per shard, reused for every message: once the
/// builder and the entity scratch buffer have grown to the largest message,
/// encoding allocates nothing.
///
/// Each method returns the finished frame, borrowed from the builder until
/// the next call.
pub struct Encoder {
    fbb: FlatBufferBuilder<'static>,
    // Entities are converted here first so `create_vector` can copy them in
    // one pass; kept to reuse its capacity.
    entities: Vec<fb::EntityState>,
    poses: Vec<fb::EntityPose>,
    /// Write `poses` in full states when an entity has them (on by
    /// default; off for protocol version 1 clients).
    poses_on: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        Self {
            fbb: FlatBufferBuilder::with_capacity(4096),
            entities: Vec::new(),
            poses: Vec::new(),
            poses_on: true,
        }
    }

    /// Whether Joined and StateUpdate carry `poses` (z, facing) when some
    /// entity has them: on by default; a protocol version 1 client gets
    /// its messages with it off, exactly as before poses existed.
    pub fn set_poses(&mut self, on: bool) {
        self.poses_on = on;
    }

    pub fn welcome(&mut self, w: &WelcomeInfo<'_>) -> &[u8] {
        self.fbb.reset();
        let fbb = &mut self.fbb;
        let resume_token = fbb.create_string(w.resume_token);
        let node_id = fbb.create_string(w.node_id);
        let region = fbb.create_string(w.region);
        let l = &w.limits;
        let limits = fb::Limits::create(
            fbb,
            &fb::LimitsArgs {
                max_payload_bytes: l.max_payload_bytes,
                inputs_per_tick_max: l.inputs_per_tick_max,
                players_per_instance_max: l.players_per_instance_max,
                heartbeat_ms: l.heartbeat_ms,
                connect_timeout_ms: l.connect_timeout_ms,
                reconnect_grace_ms: l.reconnect_grace_ms,
                delta_history_ticks: l.delta_history_ticks,
                message_bytes_max: l.message_bytes_max,
                messages_per_tick_max: l.messages_per_tick_max,
            },
        );
        let body = fb::Welcome::create(
            fbb,
            &fb::WelcomeArgs {
                player_id: w.player_id,
                resume_token: Some(resume_token),
                node_id: Some(node_id),
                region: Some(region),
                shard: w.shard,
                tick_rate_hz: w.tick_rate_hz,
                limits: Some(limits),
                resumed: w.resumed,
            },
        );
        self.finish(fb::ServerBody::Welcome, body.as_union_value())
    }

    pub fn joined(
        &mut self,
        instance_id: &str,
        entity_id: u32,
        tick: u64,
        arena: (f32, f32),
        entities: &[EntityView],
        custom: &[u8],
    ) -> &[u8] {
        self.fbb.reset();
        let instance_id = self.fbb.create_string(instance_id);
        let poses = write_poses(&mut self.fbb, &mut self.poses, entities, self.poses_on);
        let entities = write_entities(&mut self.fbb, &mut self.entities, entities);
        let custom = write_custom(&mut self.fbb, custom);
        let body = fb::Joined::create(
            &mut self.fbb,
            &fb::JoinedArgs {
                instance_id: Some(instance_id),
                entity_id,
                tick,
                arena_width: arena.0,
                arena_height: arena.1,
                entities: Some(entities),
                custom,
                poses,
            },
        );
        self.finish(fb::ServerBody::Joined, body.as_union_value())
    }

    pub fn state_update(
        &mut self,
        tick: u64,
        last_input_seq: u32,
        inputs_applied: u32,
        entities: &[EntityView],
        custom: &[u8],
    ) -> &[u8] {
        self.fbb.reset();
        let poses = write_poses(&mut self.fbb, &mut self.poses, entities, self.poses_on);
        let entities = write_entities(&mut self.fbb, &mut self.entities, entities);
        let custom = write_custom(&mut self.fbb, custom);
        let body = fb::StateUpdate::create(
            &mut self.fbb,
            &fb::StateUpdateArgs {
                tick,
                last_input_seq,
                inputs_applied,
                entities: Some(entities),
                custom,
                poses,
            },
        );
        self.finish(fb::ServerBody::StateUpdate, body.as_union_value())
    }

    /// A StateUpdate shared by every player of an instance: the entities
    /// and custom state are encoded once; each player's copy differs only
    /// in `last_input_seq` and `inputs_applied`, which
    /// [`UpdateTemplate::patch`] writes into a copy in place. Both fields
    /// are always present in the bytes (their default would otherwise be
    /// left out, leaving nowhere to patch).
    pub fn state_update_shared(
        &mut self,
        tick: u64,
        entities: &[EntityView],
        custom: &[u8],
    ) -> (&[u8], UpdateTemplate) {
        self.fbb.reset();
        let poses = write_poses(&mut self.fbb, &mut self.poses, entities, self.poses_on);
        let entities = write_entities(&mut self.fbb, &mut self.entities, entities);
        let custom = write_custom(&mut self.fbb, custom);
        self.fbb.force_defaults(true);
        let body = fb::StateUpdate::create(
            &mut self.fbb,
            &fb::StateUpdateArgs {
                tick,
                last_input_seq: 0,
                inputs_applied: 0,
                entities: Some(entities),
                custom,
                poses,
            },
        );
        self.fbb.force_defaults(false);
        let bytes = self.finish(fb::ServerBody::StateUpdate, body.as_union_value());
        let template = UpdateTemplate::locate(bytes);
        (bytes, template)
    }

    /// A StateDelta (version 2) shared by the players whose baseline and
    /// view are the same: as [`Encoder::state_update_shared`], each
    /// player's copy is patched with its own `last_input_seq` and
    /// `inputs_applied` ([`UpdateTemplate::patch`]). `entities` are the
    /// delta's bytes ([`super::delta::encode_entities`]).
    pub fn state_delta_shared(
        &mut self,
        tick: u64,
        baseline_tick: u64,
        entities: &[u8],
        custom: CustomPart<'_>,
    ) -> (&[u8], UpdateTemplate) {
        self.fbb.reset();
        let entities = self.fbb.create_vector(entities);
        let (custom_full, custom_patch) = match custom {
            CustomPart::Unchanged => (None, None),
            CustomPart::Full(b) => (Some(self.fbb.create_vector(b)), None),
            CustomPart::Patch(b) => (None, Some(self.fbb.create_vector(b))),
        };
        let body = {
            let fbb = &mut self.fbb;
            let start = fbb.start_table();
            fbb.push_slot_always(fb::StateDelta::VT_TICK, tick);
            if baseline_tick != 0 {
                fbb.push_slot_always(fb::StateDelta::VT_BASELINE_TICK, baseline_tick);
            }
            fbb.push_slot_always(fb::StateDelta::VT_ENTITIES, entities);
            if let Some(c) = custom_full {
                fbb.push_slot_always(fb::StateDelta::VT_CUSTOM_FULL, c);
            }
            if let Some(c) = custom_patch {
                fbb.push_slot_always(fb::StateDelta::VT_CUSTOM_PATCH, c);
            }
            fbb.push_slot_always(fb::StateDelta::VT_LAST_INPUT_SEQ, 0u32);
            fbb.push_slot_always(fb::StateDelta::VT_INPUTS_APPLIED, 0u32);
            let o = fbb.end_table(start);
            flatbuffers::WIPOffset::<fb::StateDelta>::new(o.value())
        };
        let bytes = self.finish(fb::ServerBody::StateDelta, body.as_union_value());
        let template = UpdateTemplate::locate(bytes);
        (bytes, template)
    }

    pub fn player_joined(&mut self, player_id: u64, entity_id: u32, name: &str) -> &[u8] {
        self.fbb.reset();
        let name = self.fbb.create_string(name);
        let body = fb::PlayerJoined::create(
            &mut self.fbb,
            &fb::PlayerJoinedArgs {
                player_id,
                entity_id,
                name: Some(name),
            },
        );
        self.finish(fb::ServerBody::PlayerJoined, body.as_union_value())
    }

    pub fn player_left(&mut self, player_id: u64, entity_id: u32, reason: LeaveReason) -> &[u8] {
        self.fbb.reset();
        let body = fb::PlayerLeft::create(
            &mut self.fbb,
            &fb::PlayerLeftArgs {
                player_id,
                entity_id,
                reason,
            },
        );
        self.finish(fb::ServerBody::PlayerLeft, body.as_union_value())
    }

    pub fn pong(&mut self, client_time: f64, server_time_us: u64) -> &[u8] {
        self.fbb.reset();
        let body = fb::Pong::create(
            &mut self.fbb,
            &fb::PongArgs {
                client_time,
                server_time_us,
            },
        );
        self.finish(fb::ServerBody::Pong, body.as_union_value())
    }

    pub fn error(&mut self, code: ErrorCode, message: &str) -> &[u8] {
        self.fbb.reset();
        let message = self.fbb.create_string(message);
        let body = fb::Error::create(
            &mut self.fbb,
            &fb::ErrorArgs {
                code,
                message: Some(message),
            },
        );
        self.finish(fb::ServerBody::Error, body.as_union_value())
    }

    /// An event from the game (protocol version 2 clients only), sent
    /// after the state of `tick`.
    pub fn game_event(&mut self, tick: u64, kind: u16, body: &[u8]) -> &[u8] {
        self.fbb.reset();
        let body = write_custom(&mut self.fbb, body);
        let event = fb::GameEvent::create(&mut self.fbb, &fb::GameEventArgs { tick, kind, body });
        self.finish(fb::ServerBody::GameEvent, event.as_union_value())
    }

    /// A fleet broadcast (`shardline fleet broadcast`).
    pub fn notice(&mut self, message: &str, region: &str, sent_at_us: u64) -> &[u8] {
        self.fbb.reset();
        let message = self.fbb.create_string(message);
        let region = self.fbb.create_string(region);
        let body = fb::Notice::create(
            &mut self.fbb,
            &fb::NoticeArgs {
                message: Some(message),
                region: Some(region),
                sent_at_us,
            },
        );
        self.finish(fb::ServerBody::Notice, body.as_union_value())
    }

    /// The player's seat moved to `instance_id` on the node at `url`.
    pub fn transfer(&mut self, url: &str, instance_id: &str) -> &[u8] {
        self.fbb.reset();
        let url = self.fbb.create_string(url);
        let instance_id = self.fbb.create_string(instance_id);
        let body = fb::Transfer::create(
            &mut self.fbb,
            &fb::TransferArgs {
                url: Some(url),
                instance_id: Some(instance_id),
            },
        );
        self.finish(fb::ServerBody::Transfer, body.as_union_value())
    }

    fn finish(&mut self, body_type: fb::ServerBody, body: WIPOffset<UnionWIPOffset>) -> &[u8] {
        let root = fb::ServerMessage::create(
            &mut self.fbb,
            &fb::ServerMessageArgs {
                body_type,
                body: Some(body),
            },
        );
        self.fbb.finish(root, None);
        self.fbb.finished_data()
    }
}

/// The custom state of a StateDelta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomPart<'a> {
    /// Neither field: the baseline's custom state holds.
    Unchanged,
    /// `custom_full`.
    Full(&'a [u8]),
    /// `custom_patch` ([`super::delta::encode_custom_patch`]).
    Patch(&'a [u8]),
}

/// Where one StateUpdate's or StateDelta's per-player fields sit in its
/// bytes (see [`Encoder::state_update_shared`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateTemplate {
    last_input_seq_at: usize,
    inputs_applied_at: usize,
}

impl UpdateTemplate {
    /// Reads the field positions from the vtable of a StateUpdate the
    /// encoder just built with both fields present.
    fn locate(bytes: &[u8]) -> UpdateTemplate {
        // SAFETY: `bytes` is a ServerMessage this encoder just finished.
        let msg = unsafe { flatbuffers::root_unchecked::<fb::ServerMessage>(bytes) };
        let (table, fields) = match msg.body_as_state_update() {
            Some(update) => (
                update._tab,
                (
                    fb::StateUpdate::VT_LAST_INPUT_SEQ,
                    fb::StateUpdate::VT_INPUTS_APPLIED,
                ),
            ),
            None => (
                msg.body_as_state_delta()
                    .expect("the body just built is a StateUpdate or a StateDelta")
                    ._tab,
                (
                    fb::StateDelta::VT_LAST_INPUT_SEQ,
                    fb::StateDelta::VT_INPUTS_APPLIED,
                ),
            ),
        };
        let vtable = table.vtable();
        let at = |field| {
            let off = vtable.get(field);
            assert_ne!(off, 0, "the field was forced present");
            table.loc() + usize::from(off)
        };
        UpdateTemplate {
            last_input_seq_at: at(fields.0),
            inputs_applied_at: at(fields.1),
        }
    }

    /// Writes one player's fields into a copy of the shared bytes.
    pub fn patch(self, bytes: &mut [u8], last_input_seq: u32, inputs_applied: u32) {
        bytes[self.last_input_seq_at..self.last_input_seq_at + 4]
            .copy_from_slice(&last_input_seq.to_le_bytes());
        bytes[self.inputs_applied_at..self.inputs_applied_at + 4]
            .copy_from_slice(&inputs_applied.to_le_bytes());
    }
}

fn write_entities<'fbb>(
    fbb: &mut FlatBufferBuilder<'fbb>,
    scratch: &mut Vec<fb::EntityState>,
    views: &[EntityView],
) -> WIPOffset<Vector<'fbb, fb::EntityState>> {
    scratch.clear();
    scratch.extend(
        views
            .iter()
            .map(|e| fb::EntityState::new(e.id, e.kind, e.flags, e.x, e.y, e.vx, e.vy)),
    );
    fbb.create_vector(scratch)
}

/// `poses` parallel to `views`, or nothing when every entity is flat (z
/// and facing 0): a 2D game's messages stay exactly as they were.
fn write_poses<'fbb>(
    fbb: &mut FlatBufferBuilder<'fbb>,
    scratch: &mut Vec<fb::EntityPose>,
    views: &[EntityView],
    on: bool,
) -> Option<WIPOffset<Vector<'fbb, fb::EntityPose>>> {
    if !on || views.iter().all(|e| e.z == 0.0 && e.facing == 0.0) {
        return None;
    }
    scratch.clear();
    scratch.extend(views.iter().map(|e| fb::EntityPose::new(e.z, e.facing)));
    Some(fbb.create_vector(scratch))
}

// An absent vector reads back as empty and saves its length prefix, which
// matters for the many games that send no custom state at all.
fn write_custom<'fbb>(
    fbb: &mut FlatBufferBuilder<'fbb>,
    custom: &[u8],
) -> Option<WIPOffset<Vector<'fbb, u8>>> {
    (!custom.is_empty()).then(|| fbb.create_vector(custom))
}

/// An owned, decoded server message.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMsg {
    Welcome {
        player_id: u64,
        resume_token: String,
        node_id: String,
        region: String,
        shard: u16,
        tick_rate_hz: u16,
        limits: LimitsInfo,
        resumed: bool,
    },
    Joined {
        instance_id: String,
        entity_id: u32,
        tick: u64,
        arena: (f32, f32),
        entities: Vec<EntityView>,
        custom: Vec<u8>,
    },
    StateUpdate {
        tick: u64,
        last_input_seq: u32,
        inputs_applied: u32,
        entities: Vec<EntityView>,
        custom: Vec<u8>,
    },
    /// Version 2 (docs/protocol.md, "Delta format").
    StateDelta {
        tick: u64,
        baseline_tick: u64,
        last_input_seq: u32,
        inputs_applied: u32,
        entities: Vec<u8>,
        custom_full: Option<Vec<u8>>,
        custom_patch: Option<Vec<u8>>,
    },
    PlayerJoined {
        player_id: u64,
        entity_id: u32,
        name: String,
    },
    PlayerLeft {
        player_id: u64,
        entity_id: u32,
        reason: LeaveReason,
    },
    Pong {
        client_time: f64,
        server_time_us: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    Notice {
        message: String,
        region: String,
        sent_at_us: u64,
    },
    Transfer {
        url: String,
        instance_id: String,
    },
    GameEvent {
        tick: u64,
        kind: u16,
        body: Vec<u8>,
    },
}

/// Verifies and decodes a server frame, for client-side tools. Absent strings
/// and vectors read as empty, an absent `limits` as all zeros.
///
/// # Errors
///
/// `BadMessage` when the frame is not a verifiable `ServerMessage` with a
/// known body.
pub fn decode_server(frame: &[u8]) -> Result<ServerMsg, ProtocolError> {
    let msg = flatbuffers::root::<fb::ServerMessage>(frame).map_err(|e| {
        ProtocolError::bad_message(format!(
            "not a valid ServerMessage: {}",
            verifier_reason(&e)
        ))
    })?;
    let missing = || ProtocolError::bad_message("not a valid ServerMessage: its body is missing");
    let text = |s: Option<&str>| s.unwrap_or_default().to_owned();
    Ok(match msg.body_type() {
        fb::ServerBody::Welcome => {
            let w = msg.body_as_welcome().ok_or_else(missing)?;
            ServerMsg::Welcome {
                player_id: w.player_id(),
                resume_token: text(w.resume_token()),
                node_id: text(w.node_id()),
                region: text(w.region()),
                shard: w.shard(),
                tick_rate_hz: w.tick_rate_hz(),
                limits: w.limits().map(limits_from_fb).unwrap_or_default(),
                resumed: w.resumed(),
            }
        }
        fb::ServerBody::Joined => {
            let j = msg.body_as_joined().ok_or_else(missing)?;
            ServerMsg::Joined {
                instance_id: text(j.instance_id()),
                entity_id: j.entity_id(),
                tick: j.tick(),
                arena: (j.arena_width(), j.arena_height()),
                entities: entities_from_fb(j.entities(), j.poses()),
                custom: j.custom().map(|c| c.bytes().to_vec()).unwrap_or_default(),
            }
        }
        fb::ServerBody::StateUpdate => {
            let s = msg.body_as_state_update().ok_or_else(missing)?;
            ServerMsg::StateUpdate {
                tick: s.tick(),
                last_input_seq: s.last_input_seq(),
                inputs_applied: s.inputs_applied(),
                entities: entities_from_fb(s.entities(), s.poses()),
                custom: s.custom().map(|c| c.bytes().to_vec()).unwrap_or_default(),
            }
        }
        fb::ServerBody::StateDelta => {
            let d = msg.body_as_state_delta().ok_or_else(missing)?;
            ServerMsg::StateDelta {
                tick: d.tick(),
                baseline_tick: d.baseline_tick(),
                last_input_seq: d.last_input_seq(),
                inputs_applied: d.inputs_applied(),
                entities: d.entities().map(|v| v.bytes().to_vec()).unwrap_or_default(),
                custom_full: d.custom_full().map(|v| v.bytes().to_vec()),
                custom_patch: d.custom_patch().map(|v| v.bytes().to_vec()),
            }
        }
        fb::ServerBody::PlayerJoined => {
            let p = msg.body_as_player_joined().ok_or_else(missing)?;
            ServerMsg::PlayerJoined {
                player_id: p.player_id(),
                entity_id: p.entity_id(),
                name: text(p.name()),
            }
        }
        fb::ServerBody::PlayerLeft => {
            let p = msg.body_as_player_left().ok_or_else(missing)?;
            ServerMsg::PlayerLeft {
                player_id: p.player_id(),
                entity_id: p.entity_id(),
                reason: p.reason(),
            }
        }
        fb::ServerBody::Pong => {
            let p = msg.body_as_pong().ok_or_else(missing)?;
            ServerMsg::Pong {
                client_time: p.client_time(),
                server_time_us: p.server_time_us(),
            }
        }
        fb::ServerBody::Error => {
            let e = msg.body_as_error().ok_or_else(missing)?;
            ServerMsg::Error {
                code: e.code(),
                message: text(e.message()),
            }
        }
        fb::ServerBody::Notice => {
            let n = msg.body_as_notice().ok_or_else(missing)?;
            ServerMsg::Notice {
                message: text(n.message()),
                region: text(n.region()),
                sent_at_us: n.sent_at_us(),
            }
        }
        fb::ServerBody::Transfer => {
            let t = msg.body_as_transfer().ok_or_else(missing)?;
            ServerMsg::Transfer {
                url: text(t.url()),
                instance_id: text(t.instance_id()),
            }
        }
        fb::ServerBody::GameEvent => {
            let e = msg.body_as_game_event().ok_or_else(missing)?;
            ServerMsg::GameEvent {
                tick: e.tick(),
                kind: e.kind(),
                body: e.body().map(|b| b.bytes().to_vec()).unwrap_or_default(),
            }
        }
        fb::ServerBody::NONE => {
            return Err(ProtocolError::bad_message(
                "not a valid ServerMessage: it has no body",
            ))
        }
        other => {
            return Err(ProtocolError::bad_message(format!(
                "not a valid ServerMessage: unknown body type {}",
                other.0
            )))
        }
    })
}

/// `(tick, last_input_seq)` of a verified StateUpdate frame, `None` for any
/// other frame. Allocates nothing, for the load generator's receive loop.
pub fn peek_state_update(frame: &[u8]) -> Option<(u64, u32)> {
    let update = flatbuffers::root::<fb::ServerMessage>(frame)
        .ok()?
        .body_as_state_update()?;
    Some((update.tick(), update.last_input_seq()))
}

/// The fields of a verified StateDelta frame, borrowed from it; `None`
/// for any other frame. Allocates nothing, for the load generator.
pub fn peek_state_delta(frame: &[u8]) -> Option<DeltaRef<'_>> {
    let d = flatbuffers::root::<fb::ServerMessage>(frame)
        .ok()?
        .body_as_state_delta()?;
    Some(DeltaRef {
        tick: d.tick(),
        baseline_tick: d.baseline_tick(),
        last_input_seq: d.last_input_seq(),
        inputs_applied: d.inputs_applied(),
        entities: d.entities().map(|v| v.bytes()).unwrap_or_default(),
        custom_full: d.custom_full().map(|v| v.bytes()),
        custom_patch: d.custom_patch().map(|v| v.bytes()),
    })
}

fn limits_from_fb(l: fb::Limits<'_>) -> LimitsInfo {
    LimitsInfo {
        max_payload_bytes: l.max_payload_bytes(),
        inputs_per_tick_max: l.inputs_per_tick_max(),
        players_per_instance_max: l.players_per_instance_max(),
        heartbeat_ms: l.heartbeat_ms(),
        connect_timeout_ms: l.connect_timeout_ms(),
        reconnect_grace_ms: l.reconnect_grace_ms(),
        delta_history_ticks: l.delta_history_ticks(),
        message_bytes_max: l.message_bytes_max(),
        messages_per_tick_max: l.messages_per_tick_max(),
    }
}

/// Entities with their poses (z, facing) when the message has them: a
/// `poses` vector of another length than `entities` is ignored (its z
/// and facing read as 0), as the schema makes them parallel.
fn entities_from_fb(
    v: Option<Vector<'_, fb::EntityState>>,
    poses: Option<Vector<'_, fb::EntityPose>>,
) -> Vec<EntityView> {
    let Some(v) = v else {
        return Vec::new();
    };
    let poses = poses.filter(|p| p.len() == v.len());
    v.iter()
        .enumerate()
        .map(|(i, e)| {
            let (z, facing) = poses
                .as_ref()
                .map(|p| (p.get(i).z(), p.get(i).facing()))
                .unwrap_or((0.0, 0.0));
            EntityView {
                id: e.id(),
                kind: e.kind(),
                flags: e.flags(),
                x: e.x(),
                y: e.y(),
                vx: e.vx(),
                vy: e.vy(),
                z,
                facing,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;

    fn decode(frame: &[u8]) -> ServerMsg {
        decode_server(frame).unwrap_or_else(|e| panic!("decode failed: {e:?}"))
    }

    fn sample_entities() -> Vec<EntityView> {
        vec![
            EntityView {
                id: 1,
                kind: 2,
                flags: 3,
                x: 10.5,
                y: -4.25,
                vx: 1.0,
                vy: -1.0,
                ..EntityView::default()
            },
            EntityView {
                id: u32::MAX,
                kind: u16::MAX,
                flags: 0,
                x: f32::MAX,
                y: f32::MIN_POSITIVE,
                vx: 0.0,
                vy: -0.0,
                ..EntityView::default()
            },
        ]
    }

    const LIMITS: LimitsInfo = LimitsInfo {
        max_payload_bytes: 4096,
        inputs_per_tick_max: 4,
        players_per_instance_max: 64,
        heartbeat_ms: 5000,
        connect_timeout_ms: 3000,
        reconnect_grace_ms: 10_000,
        delta_history_ticks: 32,
        message_bytes_max: 1024,
        messages_per_tick_max: 8,
    };

    #[test]
    fn poses_travel_only_when_some_entity_has_them() {
        let mut enc = Encoder::new();
        let flat = sample_entities();
        let flat_bytes = enc.state_update(5, 1, 1, &flat, b"").to_vec();
        let msg = flatbuffers::root::<fb::ServerMessage>(&flat_bytes).unwrap();
        assert!(
            msg.body_as_state_update().unwrap().poses().is_none(),
            "a 2D world sends no poses"
        );
        let mut lifted = flat.clone();
        lifted[1].z = 3.5;
        lifted[1].facing = 1.25;
        for frame in [
            enc.state_update(5, 1, 1, &lifted, b"").to_vec(),
            enc.state_update_shared(5, &lifted, b"").0.to_vec(),
            enc.joined("i", 1, 5, (1.0, 1.0), &lifted, b"").to_vec(),
        ] {
            let entities = match decode(&frame) {
                ServerMsg::StateUpdate { entities, .. } | ServerMsg::Joined { entities, .. } => {
                    entities
                }
                other => panic!("{other:?}"),
            };
            assert_eq!(entities, lifted, "z and facing round-trip");
        }
        assert!(flat_bytes.len() < enc.state_update(5, 1, 1, &lifted, b"").len());
    }

    #[test]
    fn game_events_round_trip() {
        let mut enc = Encoder::new();
        assert_eq!(
            decode(enc.game_event(42, 9, b"boom")),
            ServerMsg::GameEvent {
                tick: 42,
                kind: 9,
                body: b"boom".to_vec(),
            }
        );
    }

    const WELCOME: WelcomeInfo<'static> = WelcomeInfo {
        player_id: u64::MAX - 1,
        resume_token: "0123456789abcdef0123456789abcdef",
        node_id: "node-a",
        region: "eu-west",
        shard: 3,
        tick_rate_hz: 30,
        limits: LIMITS,
        resumed: true,
    };

    #[test]
    fn one_shared_update_patched_per_player_decodes_as_each_players_own() {
        let mut enc = Encoder::new();
        let ents = sample_entities();
        for (tick, custom) in [(0u64, &b""[..]), (u64::MAX, &b"custom bytes"[..])] {
            let (shared, template) = enc.state_update_shared(tick, &ents, custom);
            let shared = shared.to_vec();
            for (seq, applied) in [(0u32, 0u32), (1, 1), (u32::MAX, 77), (123_456, u32::MAX)] {
                let mut mine = shared.clone();
                template.patch(&mut mine, seq, applied);
                let want = enc.state_update(tick, seq, applied, &ents, custom).to_vec();
                assert_eq!(decode(&mine), decode(&want), "seq {seq} applied {applied}");
                assert_eq!(peek_state_update(&mine), Some((tick, seq)));
            }
        }
    }

    /// One frame of every message type, each with a decoded twin.
    fn every_message(enc: &mut Encoder) -> Vec<(Vec<u8>, ServerMsg)> {
        let ents = sample_entities();
        vec![
            (
                enc.welcome(&WELCOME).to_vec(),
                ServerMsg::Welcome {
                    player_id: WELCOME.player_id,
                    resume_token: WELCOME.resume_token.into(),
                    node_id: "node-a".into(),
                    region: "eu-west".into(),
                    shard: 3,
                    tick_rate_hz: 30,
                    limits: LIMITS,
                    resumed: true,
                },
            ),
            (
                enc.joined("arena-7", 1, 99, (800.0, 600.0), &ents, &[9, 8, 7])
                    .to_vec(),
                ServerMsg::Joined {
                    instance_id: "arena-7".into(),
                    entity_id: 1,
                    tick: 99,
                    arena: (800.0, 600.0),
                    entities: ents.clone(),
                    custom: vec![9, 8, 7],
                },
            ),
            (
                enc.state_update(100, 41, 40, &ents, &[]).to_vec(),
                ServerMsg::StateUpdate {
                    tick: 100,
                    last_input_seq: 41,
                    inputs_applied: 40,
                    entities: ents.clone(),
                    custom: vec![],
                },
            ),
            (
                enc.player_joined(17, 5, "bob").to_vec(),
                ServerMsg::PlayerJoined {
                    player_id: 17,
                    entity_id: 5,
                    name: "bob".into(),
                },
            ),
            (
                enc.player_left(17, 5, LeaveReason::TimedOut).to_vec(),
                ServerMsg::PlayerLeft {
                    player_id: 17,
                    entity_id: 5,
                    reason: LeaveReason::TimedOut,
                },
            ),
            (
                enc.pong(1234.5, 1_700_000_000_000_000).to_vec(),
                ServerMsg::Pong {
                    client_time: 1234.5,
                    server_time_us: 1_700_000_000_000_000,
                },
            ),
            (
                enc.notice("maintenance at 04:00 UTC", "eu", 1_700_000_000_000_001)
                    .to_vec(),
                ServerMsg::Notice {
                    message: "maintenance at 04:00 UTC".into(),
                    region: "eu".into(),
                    sent_at_us: 1_700_000_000_000_001,
                },
            ),
            (
                enc.transfer("ws://10.0.0.2:9000", "match-9").to_vec(),
                ServerMsg::Transfer {
                    url: "ws://10.0.0.2:9000".into(),
                    instance_id: "match-9".into(),
                },
            ),
            (
                enc.error(ErrorCode::InstanceFull, "instance arena-7 is full")
                    .to_vec(),
                ServerMsg::Error {
                    code: ErrorCode::InstanceFull,
                    message: "instance arena-7 is full".into(),
                },
            ),
        ]
    }

    #[test]
    fn every_message_round_trips() {
        let mut enc = Encoder::new();
        for (frame, expected) in every_message(&mut enc) {
            assert_eq!(decode(&frame), expected);
        }
    }

    #[test]
    fn empty_entities_and_custom_round_trip() {
        let mut enc = Encoder::new();
        let frame = enc.joined("a", 0, 0, (1.0, 1.0), &[], &[]).to_vec();
        assert_eq!(
            decode(&frame),
            ServerMsg::Joined {
                instance_id: "a".into(),
                entity_id: 0,
                tick: 0,
                arena: (1.0, 1.0),
                entities: vec![],
                custom: vec![],
            }
        );
    }

    #[test]
    fn empty_custom_is_left_out() {
        let mut enc = Encoder::new();
        let update = |frame: &[u8]| {
            flatbuffers::root::<fb::ServerMessage>(frame)
                .expect("verifies")
                .body_as_state_update()
                .expect("is a StateUpdate")
                .custom()
                .map(|c| c.len())
        };
        assert_eq!(update(enc.state_update(1, 0, 0, &[], &[])), None);
        assert_eq!(update(enc.state_update(1, 0, 0, &[], &[1])), Some(1));
    }

    #[test]
    fn peek_reads_state_updates_only() {
        let mut enc = Encoder::new();
        let ents = sample_entities();
        assert_eq!(
            peek_state_update(enc.state_update(77, 12, 11, &ents, &[1, 2])),
            Some((77, 12))
        );
        assert_eq!(peek_state_update(enc.pong(1.0, 2)), None);
        assert_eq!(peek_state_update(&[]), None);
        assert_eq!(peek_state_update(&[0xff; 40]), None);
    }

    #[test]
    fn encoder_reuse_gives_identical_bytes() {
        let mut enc = Encoder::new();
        let reference = every_message(&mut enc);
        for _ in 0..1000 {
            let again = every_message(&mut enc);
            assert!(
                reference.iter().zip(&again).all(|(a, b)| a.0 == b.0),
                "a reused encoder produced different bytes"
            );
        }
    }

    #[test]
    fn random_and_truncated_frames_are_bad_messages() {
        let mut rng = Rng::new(0xdead_beef_cafe_f00d);
        for _ in 0..4000 {
            let len = rng.below(200);
            let frame: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let e = decode_server(&frame).expect_err("random bytes decoded");
            assert_eq!(e.code, ErrorCode::BadMessage);
            assert!(e.message.starts_with("not a valid ServerMessage: "));
            assert_eq!(peek_state_update(&frame), None);
        }
        let mut enc = Encoder::new();
        for (frame, whole) in every_message(&mut enc) {
            let peeked = peek_state_update(&frame);
            for len in 0..frame.len() {
                let cut = &frame[..len];
                // Cutting only trailing alignment padding leaves a valid
                // message; it must then read exactly as the whole frame.
                match decode_server(cut) {
                    Ok(msg) => {
                        assert_eq!(msg, whole, "{cut:?}");
                        assert_eq!(peek_state_update(cut), peeked);
                    }
                    Err(e) => {
                        assert_eq!(e.code, ErrorCode::BadMessage);
                        assert_eq!(peek_state_update(cut), None);
                    }
                }
            }
        }
    }

    #[test]
    fn bit_flipped_frames_never_panic() {
        let mut rng = Rng::new(0x0123_4567_89ab_cdef);
        let mut enc = Encoder::new();
        let frames = every_message(&mut enc);
        for _ in 0..4000 {
            let mut frame = frames[rng.below(frames.len())].0.clone();
            for _ in 0..1 + rng.below(4) {
                let bit = rng.below(frame.len() * 8);
                frame[bit / 8] ^= 1 << (bit % 8);
            }
            if let Err(e) = decode_server(&frame) {
                assert_eq!(e.code, ErrorCode::BadMessage);
            }
            let _ = peek_state_update(&frame);
        }
    }

    #[test]
    fn missing_and_unknown_bodies_are_bad_messages() {
        let mut fbb = FlatBufferBuilder::new();
        let root = fb::ServerMessage::create(&mut fbb, &fb::ServerMessageArgs::default());
        fbb.finish(root, None);
        let e = decode_server(fbb.finished_data()).expect_err("no body decoded");
        assert!(e.message.contains("no body"), "{}", e.message);

        fbb.reset();
        let pong = fb::Pong::create(&mut fbb, &fb::PongArgs::default());
        let root = fb::ServerMessage::create(
            &mut fbb,
            &fb::ServerMessageArgs {
                body_type: fb::ServerBody(99),
                body: Some(pong.as_union_value()),
            },
        );
        fbb.finish(root, None);
        let e = decode_server(fbb.finished_data()).expect_err("unknown body decoded");
        assert!(e.message.contains("unknown body type 99"), "{}", e.message);
    }
}
