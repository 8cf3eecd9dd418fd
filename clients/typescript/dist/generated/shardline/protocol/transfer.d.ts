import * as flatbuffers from 'flatbuffers';
/**
 * The player was moved to an instance on another node of the fleet
 * (`shardline fleet move`), and its seat there is reserved for
 * Limits.reconnect_grace_ms. Connect to <url>/play?instance=<instance_id>
 * and send Hello with the same resume token: Welcome (resumed) and Joined
 * follow. The server closes this connection (1000) right after.
 */
export declare class Transfer {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Transfer;
    static getRootAsTransfer(bb: flatbuffers.ByteBuffer, obj?: Transfer): Transfer;
    static getSizePrefixedRootAsTransfer(bb: flatbuffers.ByteBuffer, obj?: Transfer): Transfer;
    /**
     * The other node's WebSocket base URL.
     */
    url(): string | null;
    url(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    instanceId(): string | null;
    instanceId(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    static startTransfer(builder: flatbuffers.Builder): void;
    static addUrl(builder: flatbuffers.Builder, urlOffset: flatbuffers.Offset): void;
    static addInstanceId(builder: flatbuffers.Builder, instanceIdOffset: flatbuffers.Offset): void;
    static endTransfer(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createTransfer(builder: flatbuffers.Builder, urlOffset: flatbuffers.Offset, instanceIdOffset: flatbuffers.Offset): flatbuffers.Offset;
}
