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
    static startLimits(builder: flatbuffers.Builder): void;
    static addMaxPayloadBytes(builder: flatbuffers.Builder, maxPayloadBytes: number): void;
    static addInputsPerTickMax(builder: flatbuffers.Builder, inputsPerTickMax: number): void;
    static addPlayersPerInstanceMax(builder: flatbuffers.Builder, playersPerInstanceMax: number): void;
    static addHeartbeatMs(builder: flatbuffers.Builder, heartbeatMs: number): void;
    static addConnectTimeoutMs(builder: flatbuffers.Builder, connectTimeoutMs: number): void;
    static addReconnectGraceMs(builder: flatbuffers.Builder, reconnectGraceMs: number): void;
    static endLimits(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createLimits(builder: flatbuffers.Builder, maxPayloadBytes: number, inputsPerTickMax: number, playersPerInstanceMax: number, heartbeatMs: number, connectTimeoutMs: number, reconnectGraceMs: number): flatbuffers.Offset;
}
