/**
 * Version of this schema's semantics. A client sends the version it speaks in
 * Hello; the server refuses an unknown version with Error(UnsupportedVersion).
 *   V1: full state in every StateUpdate.
 *   V2: StateDelta instead of StateUpdate (deltas against the tick the client
 *       acknowledged, quantized, filtered by area of interest), GameEvent, and
 *       the 3D fields (z, facing). docs/protocol.md "Protocol version 2".
 */
export declare enum ProtocolVersion {
    V1 = 1,
    V2 = 2
}
