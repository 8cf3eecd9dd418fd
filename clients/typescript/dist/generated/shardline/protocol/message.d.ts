import * as flatbuffers from 'flatbuffers';
/**
 * A game message: delivered to the game (`Game::on_message`) at the next
 * tick, in arrival order with this player's inputs. `kind` is the game's own.
 * Size, count per tick and rate are bounded (Limits); see docs/protocol.md.
 */
export declare class Message {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Message;
    static getRootAsMessage(bb: flatbuffers.ByteBuffer, obj?: Message): Message;
    static getSizePrefixedRootAsMessage(bb: flatbuffers.ByteBuffer, obj?: Message): Message;
    kind(): number;
    body(index: number): number | null;
    bodyLength(): number;
    bodyArray(): Uint8Array | null;
    static startMessage(builder: flatbuffers.Builder): void;
    static addKind(builder: flatbuffers.Builder, kind: number): void;
    static addBody(builder: flatbuffers.Builder, bodyOffset: flatbuffers.Offset): void;
    static createBodyVector(builder: flatbuffers.Builder, data: number[] | Uint8Array): flatbuffers.Offset;
    static startBodyVector(builder: flatbuffers.Builder, numElems: number): void;
    static endMessage(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createMessage(builder: flatbuffers.Builder, kind: number, bodyOffset: flatbuffers.Offset): flatbuffers.Offset;
}
