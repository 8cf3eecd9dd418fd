//! An instance whose game code panicked (in any call: create, restore,
//! spawn, despawn, apply_input, step, entities, custom_state, save): it is
//! disposed, each connected player gets `Error(Internal)` and a close with
//! 1011, detached seats are dropped, and the shard goes on with its other
//! instances. The instance itself stops calling game code at the first
//! panic (`game::Instance::failed`).

use super::effects::Effects;
use super::Core;
use crate::game::InstanceId;
use crate::protocol::close::CloseReason;
use crate::protocol::ErrorCode;

impl Core {
    /// Disposes `id` after its game failed, telling its players.
    pub(crate) fn game_failed(&mut self, fx: &mut dyn Effects, id: &InstanceId) {
        let Some(hosted) = self.remove_instance(id) else {
            return;
        };
        self.metrics.game_panics.inc();
        self.metrics.instances_disposed.inc();
        let failure = hosted
            .inst
            .failure()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string);
        tracing::error!(
            shard = self.id,
            instance = %id,
            game = self.shared.factory.name(),
            failure,
            "game rules panicked; instance stopped"
        );
        let message = format!("instance {id} stopped: its game rules failed");
        for seat in hosted.inst.seats() {
            let Some(p) = self.world.players.get_mut(&seat.player) else {
                continue;
            };
            p.instance = None;
            match p.conn {
                Some(conn) => {
                    self.send_error(fx, conn, ErrorCode::Internal, &message);
                    self.close(fx, conn, CloseReason::InternalError);
                }
                None => {
                    self.world.remove_player(seat.player);
                }
            }
        }
    }
}
