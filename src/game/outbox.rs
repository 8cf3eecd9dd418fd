//! What a game says besides its state: events to players and messages to
//! other instances.
//!
//! The game fills an [`Outbox`] from its hooks ([`Game::on_message`],
//! [`Game::after_step`], …); the instance hands it to its shard after the
//! tick, which sends the events after that tick's state messages, in the
//! order the game emitted them, and routes the instance messages (another
//! shard through the mesh, another node through the directory).
//!
//! Both are bounded per instance and tick ([`MessageLimits`]): an event or
//! message over a bound is not queued, the call returns `false` and the
//! drop is counted (`shardline_game_events_dropped_total`,
//! `shardline_instance_messages_dropped_total{reason="outbox"}`).
//!
//! [`Game::on_message`]: super::Game::on_message
//! [`Game::after_step`]: super::Game::after_step

use super::types::{EntityId, InstanceId, PlayerId};

/// Bounds of game messages and events, set by the node's configuration.
///
/// Memory per instance, worst case: `players × messages_per_tick_max ×
/// message_bytes_max` of queued client messages, `events_per_tick_max ×
/// message_bytes_max` of events, `instance_messages_per_tick_max ×
/// message_bytes_max` outgoing and `instance_inbox_max × message_bytes_max`
/// incoming instance messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    /// Largest body of a client Message, event or instance message, bytes
    /// (--message-bytes-max).
    pub message_bytes_max: usize,
    /// Client Messages one player may queue between two ticks
    /// (--messages-per-tick-max); more are dropped and counted.
    pub messages_per_tick_max: usize,
    /// Events one instance may emit per tick (--events-per-tick-max).
    pub events_per_tick_max: usize,
    /// Messages to other instances one instance may send per tick
    /// (--instance-messages-per-tick-max).
    pub instance_messages_per_tick_max: usize,
    /// Messages from other instances waiting for an instance's next tick
    /// (--instance-inbox-max); more are dropped and counted.
    pub instance_inbox_max: usize,
}

impl Default for MessageLimits {
    fn default() -> Self {
        Self {
            message_bytes_max: 1024,
            messages_per_tick_max: 8,
            events_per_tick_max: 256,
            instance_messages_per_tick_max: 16,
            instance_inbox_max: 256,
        }
    }
}

/// Who gets an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Audience {
    /// One player of the instance (nobody if it is not seated here).
    Player(PlayerId),
    /// Every player of the instance.
    All,
    /// Every player whose entity is within `radius` game units of
    /// `entity` (in x, y, z), that entity's player included.
    Near { entity: EntityId, radius: f32 },
}

/// One event, as the shard sends it (a `GameEvent` to protocol version 2
/// clients).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub audience: Audience,
    pub kind: u16,
    pub body: Vec<u8>,
}

/// One message to another instance (at most once: a target that is gone
/// or whose inbox is full drops it, counted).
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    pub to: InstanceId,
    pub kind: u16,
    pub body: Vec<u8>,
}

/// A message from another instance, as [`Game::on_instance_message`]
/// receives it.
///
/// [`Game::on_instance_message`]: super::Game::on_instance_message
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceMail {
    pub from: InstanceId,
    pub kind: u16,
    pub body: Vec<u8>,
}

/// Where a game puts what it sends during one tick.
#[derive(Debug, Default)]
pub struct Outbox {
    limits: MessageLimits,
    events: Vec<Event>,
    mail: Vec<Mail>,
    events_dropped: u64,
    mail_dropped: u64,
}

impl Outbox {
    pub fn new(limits: MessageLimits) -> Self {
        Self {
            limits,
            ..Default::default()
        }
    }

    pub(crate) fn set_limits(&mut self, limits: MessageLimits) {
        self.limits = limits;
    }

    /// An event to one player. `false`: dropped (a bound was hit).
    pub fn to_player(&mut self, player: PlayerId, kind: u16, body: &[u8]) -> bool {
        self.event(Audience::Player(player), kind, body)
    }

    /// An event to every player of the instance.
    pub fn to_all(&mut self, kind: u16, body: &[u8]) -> bool {
        self.event(Audience::All, kind, body)
    }

    /// An event to the players whose entities are within `radius` of
    /// `entity`.
    pub fn to_near(&mut self, entity: EntityId, radius: f32, kind: u16, body: &[u8]) -> bool {
        self.event(Audience::Near { entity, radius }, kind, body)
    }

    /// An event to `audience`.
    pub fn event(&mut self, audience: Audience, kind: u16, body: &[u8]) -> bool {
        if body.len() > self.limits.message_bytes_max
            || self.events.len() >= self.limits.events_per_tick_max
        {
            self.events_dropped += 1;
            return false;
        }
        self.events.push(Event {
            audience,
            kind,
            body: body.to_vec(),
        });
        true
    }

    /// A message to instance `to`, on this node or another one of the
    /// fleet; it reaches `to`'s game at its next tick, at most once.
    pub fn to_instance(&mut self, to: &InstanceId, kind: u16, body: &[u8]) -> bool {
        if body.len() > self.limits.message_bytes_max
            || self.mail.len() >= self.limits.instance_messages_per_tick_max
        {
            self.mail_dropped += 1;
            return false;
        }
        self.mail.push(Mail {
            to: to.clone(),
            kind,
            body: body.to_vec(),
        });
        true
    }

    /// Events queued so far this tick, in emission order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Instance messages queued so far this tick.
    pub fn mail(&self) -> &[Mail] {
        &self.mail
    }

    /// Takes this tick's events (the shard sends them).
    pub fn take_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// Takes this tick's instance messages (the shard routes them).
    pub fn take_mail(&mut self) -> std::vec::Drain<'_, Mail> {
        self.mail.drain(..)
    }

    /// (events, instance messages) dropped since the last call.
    pub fn take_dropped(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.events_dropped),
            std::mem::take(&mut self.mail_dropped),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_drop_and_count() {
        let mut out = Outbox::new(MessageLimits {
            message_bytes_max: 4,
            events_per_tick_max: 2,
            instance_messages_per_tick_max: 1,
            ..Default::default()
        });
        assert!(out.to_all(1, b"abcd"));
        assert!(!out.to_player(7, 2, b"abcde"), "over message_bytes_max");
        assert!(out.to_near(3, 5.0, 3, b""));
        assert!(!out.to_all(4, b""), "over events_per_tick_max");
        let to = InstanceId::parse("lobby").unwrap();
        assert!(out.to_instance(&to, 9, b"hi"));
        assert!(!out.to_instance(&to, 9, b"hi"), "over the per-tick bound");
        assert_eq!(out.take_dropped(), (2, 1));
        let kinds: Vec<u16> = out.take_events().map(|e| e.kind).collect();
        assert_eq!(kinds, [1, 3], "emission order");
        assert_eq!(out.take_mail().count(), 1);
        assert!(out.events().is_empty() && out.mail().is_empty());
        assert_eq!(out.take_dropped(), (0, 0));
    }
}
