//! The agent's replica writes: shards' reported states go to the budget's
//! queue (`budget.rs`); every flush interval the agent writes what the
//! budget allows, each replica with its seats in one fenced script, all of
//! a flush in one round trip. A write the fence refuses tells the agent it
//! lost the instance.

use std::time::Instant;

use super::Agent;
use crate::directory::budget::{Due, Offer};
use crate::directory::fence;
use crate::directory::metrics::Op;
use crate::directory::{keys, replica};
use crate::game::InstanceId;
use crate::snapshot::InstanceSnapshot;

impl Agent {
    /// A shard's latest states: queued if changed (and ours).
    pub(super) fn offer_replicas(&mut self, snaps: Vec<InstanceSnapshot>) {
        let now = Instant::now();
        let refresh = self.seat_ttl() / 2;
        for snap in snaps {
            let Ok(id) = InstanceId::parse(&snap.id) else {
                continue;
            };
            if !self.owned.contains_key(&id) {
                continue;
            }
            match self.replicas.offer(id, snap, now, refresh) {
                Offer::Queued => {}
                Offer::Superseded => self.metrics.replicas_superseded.inc(),
                Offer::Unchanged => self.metrics.replicas_unchanged.inc(),
            }
        }
        self.note_queue();
    }

    /// Writes what the budget allows now.
    pub(super) fn flush_replicas(&mut self) {
        if self.conn.is_some() && !self.replicas.is_empty() {
            let due = self.replicas.take(Instant::now());
            self.write_replicas(due);
        }
        self.note_queue();
    }

    /// Writes everything queued (a stopping node's final state).
    pub(super) fn flush_all_replicas(&mut self) {
        let due = self.replicas.take_all();
        self.write_replicas(due);
        self.note_queue();
    }

    fn note_queue(&self) {
        self.metrics
            .replicas_pending
            .set(self.replicas.len() as u64);
        self.metrics
            .replica_wait_ms_max
            .set(self.replicas.oldest_age(Instant::now()).as_millis() as u64);
    }

    /// The fenced script writing `d` (its world when it changed, and the
    /// seats whose records are not fresh), with the replica's compressed
    /// size and the seats it writes; `None` when there is nothing to write
    /// or the instance is no longer ours.
    fn replica_command(&self, d: &Due, now: Instant) -> Option<(redis::Cmd, u64, Vec<String>)> {
        let epoch = self.owned.get(&d.id)?.epoch;
        let seat_ttl = self.seat_ttl();
        let bytes = if d.with_world {
            match replica::encode(&self.start.game, &d.snap, self.start.cfg.replica_bytes_max) {
                Ok(b) => b,
                Err(e) => {
                    self.metrics.replicas_too_large.inc();
                    tracing::warn!(instance = %d.id, error = %e, "instance not replicated");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let tokens: Vec<String> = d
            .snap
            .seats
            .iter()
            .filter(|s| !s.token.is_empty())
            .filter(|s| self.ended.get(&s.token).is_none_or(|(i, _)| *i != d.id))
            .filter(|s| {
                !self.seats.get(&s.token).is_some_and(|(i, t)| {
                    *i == d.id && now.saturating_duration_since(*t) < seat_ttl / 2
                })
            })
            .map(|s| s.token.clone())
            .collect();
        if bytes.is_empty() && tokens.is_empty() {
            return None;
        }
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(fence::REPLICATE)
            .arg(3 + tokens.len())
            .arg(keys::instance(&d.id))
            .arg(keys::epoch(&d.id))
            .arg(keys::snapshot(&d.id));
        for t in &tokens {
            cmd.arg(keys::seat(t));
        }
        cmd.arg(self.me())
            .arg(epoch)
            .arg(&bytes)
            .arg(seat_ttl.as_millis() as u64)
            .arg(d.id.as_str());
        Some((cmd, bytes.len() as u64, tokens))
    }

    fn write_replicas(&mut self, due: Vec<Due>) {
        if due.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut pipe = redis::pipe();
        // (what was sent, its compressed size, the seats it wrote)
        let mut sent: Vec<(Due, u64, Vec<String>)> = Vec::with_capacity(due.len());
        for d in due {
            if let Some((cmd, bytes, tokens)) = self.replica_command(&d, now) {
                pipe.add_command(cmd);
                sent.push((d, bytes, tokens));
            }
        }
        if sent.is_empty() {
            return;
        }
        let seat_ttl = self.seat_ttl();
        let n = sent.len() as u64;
        // On failure the connection drops; after the reconnect every
        // instance is written again (`reset_written`).
        let Some(results) = self.redis(Op::Replica, n, |c| pipe.query::<Vec<i64>>(c)) else {
            return;
        };
        for ((d, bytes, tokens), written) in sent.into_iter().zip(results) {
            if written != 1 {
                self.metrics.replicas_fenced.inc();
                self.check_owner(&d.id);
                continue;
            }
            self.replicas.written(&d, now);
            if bytes > 0 {
                self.metrics.replicas_written.inc();
                self.metrics.replica_bytes.add(bytes);
                if let Some(o) = self.owned.get_mut(&d.id) {
                    o.replica_bytes = bytes;
                }
            }
            for t in tokens {
                self.seats.insert(t, (d.id.clone(), now));
            }
        }
        let largest = self.owned.values().map(|o| o.replica_bytes).max();
        self.metrics
            .replica_instance_bytes_max
            .set(largest.unwrap_or(0));
        self.seats
            .retain(|_, (_, t)| now.saturating_duration_since(*t) < seat_ttl);
    }
}
