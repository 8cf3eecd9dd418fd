//! Capture the coin: a complete second game on shardline, served by its own
//! binary with every command and flag of `shardline`.
//!
//! ```sh
//! cargo run --release --example coins -- serve
//! ```
//!
//! Players walk (input axes, 120 units/s, facing where they go) on a
//! 400 × 400 field where coins appear. Everything else is game messages and
//! events:
//!
//! | client → server `Message` | kind | body |
//! |---|---|---|
//! | pick up the nearest coin within 40 units | 1 | empty |
//! | chat | 2 | UTF-8, at most 200 bytes |
//! | announce to another instance | 3 | `INSTANCE_ID` `\n` UTF-8 text |
//!
//! | server → client `GameEvent` | kind | body |
//! |---|---|---|
//! | a coin was picked up (to everyone) | 1 | player id (u64 LE), coin id (u32 LE), new score (u32 LE) |
//! | chat (to everyone) | 2 | player id (u64 LE), the text |
//! | nothing to pick up (to the sender) | 3 | empty |
//! | an announcement from another instance (to everyone) | 4 | sender instance id `\n` text |
//! | welcome (to the joining or returning player, after the next tick's state) | 5 | its team (the ticket's `team` claim, or `none`) |
//!
//! Custom state (in every state message): the number of coins picked in
//! this instance (u32 LE), then per player (entity id u32 LE, score u32 LE).
//! Entities: players are kind 1, coins kind 2.
//!
//! Hooks: `on_join` refuses a player whose ticket claims `banned=yes` and
//! any player named `mallory`; `validate_input` refuses inputs with button
//! bit 31 (reserved: "reserved-button"). The world is saved with rkyv and
//! comes back after a restart.
//!
//! Settings (`--game KEY=VALUE` or `[game]` in `--config FILE`):
//! `coins` (coins on the field at once, 1–32, default 3).

use std::f32::consts::TAU;

use shardline::game::rules::{restore_archived, save_archived};
use shardline::game::{
    EntityId, EntityView, Game, GameFactory, InstanceId, InstanceMail, JoinInfo, LeaveCause,
    Outbox, PlayerId, PlayerInput, Refusal,
};

const FIELD: f32 = 400.0;
const SPEED: f32 = 120.0;
const REACH: f32 = 40.0;
const CHAT_BYTES_MAX: usize = 200;
const KIND_PLAYER: u16 = 1;
const KIND_COIN: u16 = 2;

const MSG_PICK_UP: u16 = 1;
const MSG_CHAT: u16 = 2;
const MSG_ANNOUNCE: u16 = 3;

const EV_PICKED: u16 = 1;
const EV_CHAT: u16 = 2;
const EV_NOTHING_HERE: u16 = 3;
const EV_ANNOUNCED: u16 = 4;
const EV_WELCOME: u16 = 5;

/// Instance messages between games of this binary.
const MAIL_ANNOUNCE: u16 = 1;

#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Walker {
    player: PlayerId,
    entity: EntityId,
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
    facing: f32,
    score: u32,
}

#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Coin {
    entity: EntityId,
    x: f32,
    y: f32,
}

#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Field {
    walkers: Vec<Walker>,
    coins: Vec<Coin>,
    entity_last: EntityId,
    picked: u32,
    /// Coins on the field at once (a setting, saved with the world).
    coins_max: u32,
    /// Drives where coins appear (deterministic).
    seed: u64,
}

impl Field {
    fn new(coins_max: u32) -> Self {
        let mut f = Field {
            walkers: Vec::new(),
            coins: Vec::new(),
            entity_last: 0,
            picked: 0,
            coins_max,
            seed: 0x5EED,
        };
        f.refill();
        f
    }

    fn next_id(&mut self) -> EntityId {
        self.entity_last += 1;
        self.entity_last
    }

    fn refill(&mut self) {
        while self.coins.len() < self.coins_max as usize {
            self.seed = self
                .seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let x = 20.0 + ((self.seed >> 33) % 360) as f32;
            let y = 20.0 + ((self.seed >> 13) % 360) as f32;
            let entity = self.next_id();
            self.coins.push(Coin { entity, x, y });
        }
    }

    fn walker(&self, entity: EntityId) -> Option<&Walker> {
        self.walkers.iter().find(|w| w.entity == entity)
    }

    fn check(&self) -> Result<(), String> {
        if !(1..=32).contains(&self.coins_max) {
            return Err(format!("coins_max {} is not 1-32", self.coins_max));
        }
        let inside = |x: f32, y: f32| (0.0..=FIELD).contains(&x) && (0.0..=FIELD).contains(&y);
        for w in &self.walkers {
            if !inside(w.x, w.y) || w.entity > self.entity_last {
                return Err(format!("walker {} is off the field", w.entity));
            }
        }
        for c in &self.coins {
            if !inside(c.x, c.y) || c.entity > self.entity_last {
                return Err(format!("coin {} is off the field", c.entity));
            }
        }
        Ok(())
    }
}

impl Game for Field {
    fn spawn(&mut self, player: PlayerId) -> EntityId {
        let entity = self.next_id();
        let turn = (entity % 8) as f32 / 8.0 * TAU;
        self.walkers.push(Walker {
            player,
            entity,
            x: FIELD / 2.0 + 50.0 * turn.cos(),
            y: FIELD / 2.0 + 50.0 * turn.sin(),
            vx: 0.0,
            vy: 0.0,
            facing: turn,
            score: 0,
        });
        entity
    }

    fn despawn(&mut self, entity: EntityId) {
        self.walkers.retain(|w| w.entity != entity);
    }

    fn apply_input(&mut self, entity: EntityId, input: &PlayerInput) {
        if let Some(w) = self.walkers.iter_mut().find(|w| w.entity == entity) {
            let len = (input.move_x.powi(2) + input.move_y.powi(2))
                .sqrt()
                .max(1.0);
            w.vx = input.move_x / len * SPEED;
            w.vy = input.move_y / len * SPEED;
            if w.vx != 0.0 || w.vy != 0.0 {
                w.facing = w.vy.atan2(w.vx).rem_euclid(TAU);
            }
        }
    }

    fn step(&mut self, dt_s: f32) {
        for w in &mut self.walkers {
            w.x = (w.x + w.vx * dt_s).clamp(0.0, FIELD);
            w.y = (w.y + w.vy * dt_s).clamp(0.0, FIELD);
        }
    }

    fn entities(&self, out: &mut Vec<EntityView>) {
        out.extend(self.walkers.iter().map(|w| EntityView {
            id: w.entity,
            kind: KIND_PLAYER,
            x: w.x,
            y: w.y,
            vx: w.vx,
            vy: w.vy,
            facing: w.facing,
            ..Default::default()
        }));
        out.extend(self.coins.iter().map(|c| EntityView {
            id: c.entity,
            kind: KIND_COIN,
            x: c.x,
            y: c.y,
            ..Default::default()
        }));
    }

    fn bounds(&self) -> (f32, f32) {
        (FIELD, FIELD)
    }

    fn custom_state(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.picked.to_le_bytes());
        for w in &self.walkers {
            out.extend_from_slice(&w.entity.to_le_bytes());
            out.extend_from_slice(&w.score.to_le_bytes());
        }
    }

    fn state_bytes(&self) -> usize {
        self.walkers.capacity() * std::mem::size_of::<Walker>()
            + self.coins.capacity() * std::mem::size_of::<Coin>()
    }

    fn save(&self, out: &mut Vec<u8>) {
        save_archived(self, out);
    }

    fn on_join(
        &mut self,
        player: PlayerId,
        info: &JoinInfo<'_>,
        out: &mut Outbox,
    ) -> Result<(), Refusal> {
        if info.claims.get("banned") == Some("yes") {
            return Err(Refusal::new("banned by the backend"));
        }
        if info.name == "mallory" {
            return Err(Refusal::new("mallory may not play coins"));
        }
        let team = info.claims.get("team").unwrap_or("none");
        out.to_player(player, EV_WELCOME, team.as_bytes());
        Ok(())
    }

    fn on_leave(&mut self, _player: PlayerId, _entity: EntityId, _: LeaveCause, _: &mut Outbox) {}

    fn validate_input(&self, _entity: EntityId, input: &PlayerInput) -> Result<(), &'static str> {
        if input.buttons & 0x8000_0000 != 0 {
            return Err("reserved-button");
        }
        Ok(())
    }

    fn on_message(
        &mut self,
        player: PlayerId,
        entity: EntityId,
        kind: u16,
        body: &[u8],
        out: &mut Outbox,
    ) {
        match kind {
            MSG_PICK_UP => {
                let Some(w) = self.walker(entity) else {
                    return;
                };
                let (x, y) = (w.x, w.y);
                let nearest = self
                    .coins
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (i, (c.x - x).powi(2) + (c.y - y).powi(2)))
                    .filter(|&(_, d2)| d2 <= REACH * REACH)
                    .min_by(|a, b| a.1.total_cmp(&b.1));
                let Some((i, _)) = nearest else {
                    out.to_player(player, EV_NOTHING_HERE, &[]);
                    return;
                };
                let coin = self.coins.remove(i);
                self.picked += 1;
                let w = self
                    .walkers
                    .iter_mut()
                    .find(|w| w.entity == entity)
                    .expect("found above");
                w.score += 1;
                let mut ev = player.to_le_bytes().to_vec();
                ev.extend_from_slice(&coin.entity.to_le_bytes());
                ev.extend_from_slice(&w.score.to_le_bytes());
                out.to_all(EV_PICKED, &ev);
            }
            MSG_CHAT => {
                if body.len() > CHAT_BYTES_MAX || std::str::from_utf8(body).is_err() {
                    return;
                }
                let mut ev = player.to_le_bytes().to_vec();
                ev.extend_from_slice(body);
                out.to_all(EV_CHAT, &ev);
            }
            MSG_ANNOUNCE => {
                let Some(at) = body.iter().position(|&b| b == b'\n') else {
                    return;
                };
                let Ok(to) = std::str::from_utf8(&body[..at]).map(InstanceId::parse) else {
                    return;
                };
                if let Ok(to) = to {
                    out.to_instance(&to, MAIL_ANNOUNCE, &body[at + 1..]);
                }
            }
            _ => {}
        }
    }

    fn on_instance_message(&mut self, mail: &InstanceMail, out: &mut Outbox) {
        if mail.kind == MAIL_ANNOUNCE {
            let mut ev = mail.from.as_str().as_bytes().to_vec();
            ev.push(b'\n');
            ev.extend_from_slice(&mail.body);
            out.to_all(EV_ANNOUNCED, &ev);
        }
    }

    fn after_step(&mut self, _out: &mut Outbox) {
        // A picked coin comes back somewhere else at the next tick.
        self.refill();
    }
}

struct CoinsFactory {
    coins: u32,
}

impl CoinsFactory {
    fn from_settings(settings: &toml::Table) -> Result<Self, String> {
        let mut coins = 3;
        for (key, value) in settings {
            match key.as_str() {
                "coins" => {
                    coins = value
                        .as_integer()
                        .filter(|n| (1..=32).contains(n))
                        .ok_or_else(|| format!("coins = {value}: a whole number from 1 to 32"))?
                        as u32;
                }
                other => return Err(format!("unknown setting {other:?} (coins has: coins)")),
            }
        }
        Ok(CoinsFactory { coins })
    }
}

impl GameFactory for CoinsFactory {
    fn name(&self) -> &'static str {
        "coins"
    }

    fn create(&self, _instance: &InstanceId) -> Box<dyn Game> {
        Box::new(Field::new(self.coins))
    }

    fn restore(&self, _instance: &InstanceId, bytes: &[u8]) -> Result<Box<dyn Game>, String> {
        let field: Field = restore_archived(bytes)?;
        field.check()?;
        Ok(Box::new(field))
    }
}

fn main() {
    let launch = shardline::Server::builder()
        .game_with(CoinsFactory::from_settings)
        .from_args();
    if let Err(e) = launch.run() {
        eprintln!("coins: {e:#}");
        std::process::exit(2);
    }
}
