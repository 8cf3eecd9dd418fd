/**
 * Version of this schema's semantics. A client sends the version it speaks in
 * Hello; the server refuses an unknown version with Error(UnsupportedVersion).
 */
export declare enum ProtocolVersion {
    V1 = 1
}
