import { Hello } from '../../shardline/protocol/hello.js';
import { Input } from '../../shardline/protocol/input.js';
import { Join } from '../../shardline/protocol/join.js';
import { Leave } from '../../shardline/protocol/leave.js';
import { Ping } from '../../shardline/protocol/ping.js';
export declare enum ClientBody {
    NONE = 0,
    Hello = 1,
    Join = 2,
    Leave = 3,
    Input = 4,
    Ping = 5
}
export declare function unionToClientBody(type: ClientBody, accessor: (obj: Hello | Input | Join | Leave | Ping) => Hello | Input | Join | Leave | Ping | null): Hello | Input | Join | Leave | Ping | null;
export declare function unionListToClientBody(type: ClientBody, accessor: (index: number, obj: Hello | Input | Join | Leave | Ping) => Hello | Input | Join | Leave | Ping | null, index: number): Hello | Input | Join | Leave | Ping | null;
