import * as flatbuffers from 'flatbuffers';
/**
 * Player input for the next tick. `seq` increases by one per Input; the
 * server reports the highest applied `seq` in every StateUpdate.
 * Axes are clamped to [-1, 1]; NaN or infinity is Error(BadInput).
 */
export declare class Input {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Input;
    static getRootAsInput(bb: flatbuffers.ByteBuffer, obj?: Input): Input;
    static getSizePrefixedRootAsInput(bb: flatbuffers.ByteBuffer, obj?: Input): Input;
    seq(): number;
    moveX(): number;
    moveY(): number;
    buttons(): number;
    /**
     * V2: the newest StateDelta.tick this client has applied (0 = none), as
     * Ack.tick; saves a separate Ack when the client sends input every tick.
     */
    ackTick(): bigint;
    static startInput(builder: flatbuffers.Builder): void;
    static addSeq(builder: flatbuffers.Builder, seq: number): void;
    static addMoveX(builder: flatbuffers.Builder, moveX: number): void;
    static addMoveY(builder: flatbuffers.Builder, moveY: number): void;
    static addButtons(builder: flatbuffers.Builder, buttons: number): void;
    static addAckTick(builder: flatbuffers.Builder, ackTick: bigint): void;
    static endInput(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createInput(builder: flatbuffers.Builder, seq: number, moveX: number, moveY: number, buttons: number, ackTick: bigint): flatbuffers.Offset;
}
