import { Error } from '../../shardline/protocol/error.js';
import { GameEvent } from '../../shardline/protocol/game-event.js';
import { Joined } from '../../shardline/protocol/joined.js';
import { Notice } from '../../shardline/protocol/notice.js';
import { PlayerJoined } from '../../shardline/protocol/player-joined.js';
import { PlayerLeft } from '../../shardline/protocol/player-left.js';
import { Pong } from '../../shardline/protocol/pong.js';
import { StateDelta } from '../../shardline/protocol/state-delta.js';
import { StateUpdate } from '../../shardline/protocol/state-update.js';
import { Transfer } from '../../shardline/protocol/transfer.js';
import { Welcome } from '../../shardline/protocol/welcome.js';
export declare enum ServerBody {
    NONE = 0,
    Welcome = 1,
    Joined = 2,
    StateUpdate = 3,
    PlayerJoined = 4,
    PlayerLeft = 5,
    Pong = 6,
    Error = 7,
    Notice = 8,
    Transfer = 9,
    StateDelta = 10,
    GameEvent = 11
}
export declare function unionToServerBody(type: ServerBody, accessor: (obj: Error | GameEvent | Joined | Notice | PlayerJoined | PlayerLeft | Pong | StateDelta | StateUpdate | Transfer | Welcome) => Error | GameEvent | Joined | Notice | PlayerJoined | PlayerLeft | Pong | StateDelta | StateUpdate | Transfer | Welcome | null): Error | GameEvent | Joined | Notice | PlayerJoined | PlayerLeft | Pong | StateDelta | StateUpdate | Transfer | Welcome | null;
export declare function unionListToServerBody(type: ServerBody, accessor: (index: number, obj: Error | GameEvent | Joined | Notice | PlayerJoined | PlayerLeft | Pong | StateDelta | StateUpdate | Transfer | Welcome) => Error | GameEvent | Joined | Notice | PlayerJoined | PlayerLeft | Pong | StateDelta | StateUpdate | Transfer | Welcome | null, index: number): Error | GameEvent | Joined | Notice | PlayerJoined | PlayerLeft | Pong | StateDelta | StateUpdate | Transfer | Welcome | null;
