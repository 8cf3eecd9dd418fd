//! The fixed-step tick and the slower sweeps.
//!
//! Each tick: every instance applies its queued inputs and steps once, then
//! every connected player gets exactly one StateUpdate appended to its
//! outbound buffer. The session tasks run after the tick returns, so each
//! player's frames of one tick leave in one socket write.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::game::{EntityView, InstanceId};
use crate::metrics::HistName;
use crate::net::close::CloseReason;
use crate::net::conn::Conn;
use crate::net::fenced::Front;
use crate::net::session::{message_arrived, on_binary};
use crate::net::tick_read::{TICK_MESSAGES_PER_CONN_MAX, TICK_READS_PER_CONN_MAX};
use crate::protocol::ErrorCode;
use crate::shard::world::World;
use crate::shard::Shard;

/// How often seats and idle instances are checked for expiry.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// Reused per-tick buffers (allocated once per shard).
#[derive(Default)]
pub struct TickScratch {
    entities: Vec<EntityView>,
    custom: Vec<u8>,
    failed: Vec<InstanceId>,
    /// Connections the tick reads this time (`net::tick_read`).
    readers: Vec<Rc<Conn>>,
    /// One unmasked client message.
    payload: Vec<u8>,
}

impl Shard {
    /// One tick of every instance this shard owns.
    pub fn tick(&self, scratch: &mut TickScratch) {
        self.read_inputs(scratch);
        let dt_s = self.cfg().tick_interval().as_secs_f32();
        let mut w = self.world.borrow_mut();
        let World {
            instances, players, ..
        } = &mut *w;
        let mut enc = self.enc.borrow_mut();
        scratch.failed.clear();
        for (id, hosted) in instances.iter_mut() {
            let started = Instant::now();
            // A studio's game rules are not trusted to be panic-free: a panic
            // stops that instance only.
            let stepped = catch_unwind(AssertUnwindSafe(|| {
                let report = hosted.inst.step(dt_s);
                scratch.entities.clear();
                scratch.entities.extend_from_slice(hosted.inst.entities());
                scratch.custom.clear();
                hosted.inst.custom_state(&mut scratch.custom);
                report
            }));
            let report = match stepped {
                Ok(r) => r,
                Err(_) => {
                    scratch.failed.push(id.clone());
                    continue;
                }
            };
            self.metrics
                .inputs_applied
                .add(u64::from(report.inputs_applied));
            let tick = hosted.inst.tick();
            for seat in hosted.inst.seats() {
                let Some(p) = players.get_mut(&seat.player) else {
                    continue;
                };
                let Some(conn) = p.conn.as_ref() else {
                    p.inputs_pending_since.clear();
                    continue;
                };
                let bytes = enc.state_update(
                    tick,
                    seat.last_input_seq,
                    seat.inputs_applied,
                    &scratch.entities,
                    &scratch.custom,
                );
                let queued = conn.queue(bytes);
                // The inputs applied in this step are reflected in this
                // update: their latency ends when it reaches the socket.
                conn.inputs_in_flight(&mut p.inputs_pending_since);
                if queued {
                    self.write_or_wake(conn);
                }
                self.metrics.messages_out.inc();
                self.metrics.state_updates.inc();
            }
            let took_us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
            hosted.tick_us.push(took_us);
        }
        drop(enc);
        for id in std::mem::take(&mut scratch.failed) {
            self.stop_failed_instance(&mut w, &id);
        }
        self.metrics.ticks.inc();
    }

    /// Reads, for every connection whose session lets it, what the client
    /// sent since the last tick (`net::tick_read`).
    fn read_inputs(&self, scratch: &mut TickScratch) {
        scratch.readers.clear();
        scratch.readers.extend(
            self.conns
                .borrow()
                .values()
                .filter(|c| c.tick_read.is_on())
                .cloned(),
        );
        let now = Instant::now();
        let mut readers = std::mem::take(&mut scratch.readers);
        for conn in readers.drain(..) {
            if !self.read_conn(&conn, now, &mut scratch.payload) {
                // Hand reading back to the session.
                conn.tick_read.turn_off();
                conn.wake();
            }
        }
        scratch.readers = readers;
    }

    /// One connection's reads; `false` when the session must read on.
    fn read_conn(&self, conn: &Rc<Conn>, now: Instant, payload: &mut Vec<u8>) -> bool {
        let Some((fd, inbox)) = conn.tick_read.source() else {
            return true;
        };
        let cfg = self.cfg();
        let (mut reads, mut messages) = (0, 0);
        let mut drained = false;
        loop {
            loop {
                let front = inbox
                    .borrow_mut()
                    .take_binary_frame(cfg.max_payload_bytes, payload);
                match front {
                    Front::Binary => {
                        if message_arrived(self, conn, now) {
                            on_binary(self, conn, payload, now);
                        }
                        // A Join may pause the session for a move; a bad
                        // message may close it: the session takes over.
                        if conn.paused_since().is_some()
                            || conn.close_requested().is_some()
                            || !conn.tick_read.is_on()
                        {
                            return false;
                        }
                    }
                    Front::Pong => {
                        if message_arrived(self, conn, now) {
                            self.on_pong(payload, now);
                        }
                    }
                    Front::NeedMore => break,
                    Front::Other => return false,
                }
                messages += 1;
                if messages == TICK_MESSAGES_PER_CONN_MAX {
                    return false;
                }
            }
            if drained {
                return true;
            }
            if reads == TICK_READS_PER_CONN_MAX {
                // More queued than a player sends between ticks: the
                // session reads the rest at its own pace (and meets the
                // flood limits) instead of the tick.
                return false;
            }
            reads += 1;
            match inbox.borrow_mut().recv_from(fd, cfg.read_buffer_bytes) {
                Ok(0) => return false, // the end of the stream: the session sees it
                // Less than asked for: the socket had no more just now.
                Ok(n) => drained = n < cfg.read_buffer_bytes,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false, // the session's own read reports it
            }
        }
    }

    /// Writes `conn`'s outbound bytes now when its session lets the tick
    /// (`net::tick_read`); otherwise, or when the socket takes only part,
    /// wakes the session to write.
    fn write_or_wake(&self, conn: &Conn) {
        let Some(fd) = conn.tick_read.fd() else {
            conn.wake();
            return;
        };
        let mut out = conn.outbound().borrow_mut();
        let unsent = out.unsent();
        // SAFETY: `unsent` is valid for reads of its length; `fd` is the
        // session's socket, open while tick reading is on.
        let n = unsafe {
            libc::send(
                fd,
                unsent.as_ptr().cast(),
                unsent.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n > 0 {
            self.metrics.socket_writes.inc();
            self.metrics.bytes_out.add(n as u64);
            out.advance(n as usize);
        }
        if out.is_empty() {
            drop(out);
            conn.inputs_written(Instant::now(), |d| {
                self.metrics.hist.record(HistName::InputToUpdate, d)
            });
        } else {
            drop(out);
            conn.wake();
        }
    }

    /// The instance's game panicked: its players are told and disconnected,
    /// it is removed, and the shard goes on with the others.
    fn stop_failed_instance(&self, w: &mut World, id: &InstanceId) {
        self.metrics.game_panics.inc();
        tracing::error!(shard = self.id, instance = %id, "game rules panicked; instance stopped");
        let Some(hosted) = w.instances.remove(id) else {
            return;
        };
        let message = format!("instance {id} stopped: its game rules failed");
        for seat in hosted.inst.seats() {
            if let Some(p) = w.players.get_mut(&seat.player) {
                p.instance = None;
                if let Some(conn) = p.conn.clone() {
                    self.send_error(&conn, ErrorCode::Internal, &message);
                    conn.request_close(CloseReason::InternalError);
                } else {
                    w.remove_player(seat.player);
                }
            }
        }
        self.metrics.instances_disposed.inc();
    }

    /// Releases seats whose grace ran out and disposes idle empty instances.
    pub fn sweep(&self, now: Instant) {
        let grace = self.cfg().reconnect_grace;
        let idle = self.cfg().instance_idle;
        let mut w = self.world.borrow_mut();
        let expired: Vec<_> = w
            .players
            .values()
            .filter(|p| p.conn.is_none())
            .filter(|p| {
                p.detached_at
                    .is_some_and(|t| now.duration_since(t) >= grace)
            })
            .map(|p| p.id)
            .collect();
        for pid in expired {
            self.unseat(&mut w, pid, crate::protocol::LeaveReason::TimedOut, now);
            w.remove_player(pid);
            self.metrics.seats_expired.inc();
        }
        let before = w.instances.len();
        w.instances.retain(|_, h| {
            !(h.inst.is_empty() && h.empty_since.is_some_and(|t| now.duration_since(t) >= idle))
        });
        self.metrics
            .instances_disposed
            .add((before - w.instances.len()) as u64);
    }

    /// A pong to one of our heartbeat pings: its payload is the shard clock
    /// (µs since start) when the ping was queued.
    pub fn on_pong(&self, payload: &[u8], now: Instant) {
        let Ok(sent_us) = <[u8; 8]>::try_from(payload).map(u64::from_be_bytes) else {
            return; // an unsolicited pong: ignore
        };
        let now_us = now.duration_since(self.started_at).as_micros() as u64;
        if let Some(rtt) = now_us.checked_sub(sent_us) {
            self.metrics
                .hist
                .record_us(crate::metrics::HistName::Rtt, rtt);
        }
    }

    /// Drops connections silent for two heartbeat intervals; with `ping`,
    /// pings the others (the payload is the shard's clock in µs, so a Pong
    /// gives the round trip).
    pub fn heartbeat(&self, now: Instant, ping: bool) {
        let silent_max = self.settings.get().heartbeat * 2;
        let payload = (now.duration_since(self.started_at).as_micros() as u64).to_be_bytes();
        for conn in self.conns.borrow().values() {
            if now.duration_since(conn.last_rx()) >= silent_max {
                conn.request_close(CloseReason::HeartbeatTimeout);
            } else if ping {
                conn.ping(&payload);
            }
        }
    }
}
