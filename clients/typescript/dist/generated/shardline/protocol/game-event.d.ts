import * as flatbuffers from 'flatbuffers';
/**
 * V2: an event from the game, to this player, to every player of the
 * instance, or to the players near an entity. Sent after the StateDelta of
 * the tick that produced it, in the order the game emitted them.
 */
export declare class GameEvent {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): GameEvent;
    static getRootAsGameEvent(bb: flatbuffers.ByteBuffer, obj?: GameEvent): GameEvent;
    static getSizePrefixedRootAsGameEvent(bb: flatbuffers.ByteBuffer, obj?: GameEvent): GameEvent;
    tick(): bigint;
    kind(): number;
    body(index: number): number | null;
    bodyLength(): number;
    bodyArray(): Uint8Array | null;
    static startGameEvent(builder: flatbuffers.Builder): void;
    static addTick(builder: flatbuffers.Builder, tick: bigint): void;
    static addKind(builder: flatbuffers.Builder, kind: number): void;
    static addBody(builder: flatbuffers.Builder, bodyOffset: flatbuffers.Offset): void;
    static createBodyVector(builder: flatbuffers.Builder, data: number[] | Uint8Array): flatbuffers.Offset;
    static startBodyVector(builder: flatbuffers.Builder, numElems: number): void;
    static endGameEvent(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createGameEvent(builder: flatbuffers.Builder, tick: bigint, kind: number, bodyOffset: flatbuffers.Offset): flatbuffers.Offset;
}
