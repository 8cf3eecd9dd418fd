// Plain-data views of the server's messages, as the client hands them to a
// game: numbers and strings instead of FlatBuffers accessors, so they can be
// kept after the frame they came in is gone.
import { ErrorCode } from './generated/shardline/protocol/error-code.js';
import { LeaveReason } from './generated/shardline/protocol/leave-reason.js';
export { ErrorCode, LeaveReason };
/** Thrown (as a rejected promise) by requests the server refused or that the connection did not outlive. */
export class ShardlineError extends Error {
    constructor(message, code = null, closeCode = null) {
        super(message);
        this.name = 'ShardlineError';
        this.code = code;
        this.closeCode = closeCode;
    }
}
/** Name of an ErrorCode value, e.g. `InstanceFull`. */
export function errorCodeName(code) {
    return ErrorCode[code] ?? `code ${code}`;
}
