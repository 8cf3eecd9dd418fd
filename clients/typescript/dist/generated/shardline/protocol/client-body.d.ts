import { Ack } from '../../shardline/protocol/ack.js';
import { Hello } from '../../shardline/protocol/hello.js';
import { Input } from '../../shardline/protocol/input.js';
import { Join } from '../../shardline/protocol/join.js';
import { Leave } from '../../shardline/protocol/leave.js';
import { Message } from '../../shardline/protocol/message.js';
import { Ping } from '../../shardline/protocol/ping.js';
export declare enum ClientBody {
    NONE = 0,
    Hello = 1,
    Join = 2,
    Leave = 3,
    Input = 4,
    Ping = 5,
    Ack = 6,
    Message = 7
}
export declare function unionToClientBody(type: ClientBody, accessor: (obj: Ack | Hello | Input | Join | Leave | Message | Ping) => Ack | Hello | Input | Join | Leave | Message | Ping | null): Ack | Hello | Input | Join | Leave | Message | Ping | null;
export declare function unionListToClientBody(type: ClientBody, accessor: (index: number, obj: Ack | Hello | Input | Join | Leave | Message | Ping) => Ack | Hello | Input | Join | Leave | Message | Ping | null, index: number): Ack | Hello | Input | Join | Leave | Message | Ping | null;
