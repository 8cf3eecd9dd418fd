import * as flatbuffers from 'flatbuffers';
/**
 * Limits that apply to this client, so it can stay inside them.
 */
export declare class Limits {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Limits;
    static getRootAsLimits(bb: flatbuffers.ByteBuffer, obj?: Limits): Limits;
    static getSizePrefixedRootAsLimits(bb: flatbuffers.ByteBuffer, obj?: Limits): Limits;
    maxPayloadBytes(): number;
    inputsPerTickMax(): number;
    playersPerInstanceMax(): number;
    heartbeatMs(): number;
    connectTimeoutMs(): number;
    reconnectGraceMs(): number;
    /**
     * V2: how many recent ticks the server can encode a delta against; a client
     * keeps its reconstructed world for at least this many ticks after its Ack.
     */
    deltaHistoryTicks(): number;
    /**
     * Largest Message.body accepted, in bytes.
     */
    messageBytesMax(): number;
    /**
     * Messages accepted per tick from one player.
     */
    messagesPerTickMax(): number;
    static startLimits(builder: flatbuffers.Builder): void;
    static addMaxPayloadBytes(builder: flatbuffers.Builder, maxPayloadBytes: number): void;
    static addInputsPerTickMax(builder: flatbuffers.Builder, inputsPerTickMax: number): void;
    static addPlayersPerInstanceMax(builder: flatbuffers.Builder, playersPerInstanceMax: number): void;
    static addHeartbeatMs(builder: flatbuffers.Builder, heartbeatMs: number): void;
    static addConnectTimeoutMs(builder: flatbuffers.Builder, connectTimeoutMs: number): void;
    static addReconnectGraceMs(builder: flatbuffers.Builder, reconnectGraceMs: number): void;
    static addDeltaHistoryTicks(builder: flatbuffers.Builder, deltaHistoryTicks: number): void;
    static addMessageBytesMax(builder: flatbuffers.Builder, messageBytesMax: number): void;
    static addMessagesPerTickMax(builder: flatbuffers.Builder, messagesPerTickMax: number): void;
    static endLimits(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createLimits(builder: flatbuffers.Builder, maxPayloadBytes: number, inputsPerTickMax: number, playersPerInstanceMax: number, heartbeatMs: number, connectTimeoutMs: number, reconnectGraceMs: number, deltaHistoryTicks: number, messageBytesMax: number, messagesPerTickMax: number): flatbuffers.Offset;
}
