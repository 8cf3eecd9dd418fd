// The WebSocket the client drives: browsers' global WebSocket, or any class
// with the same shape (npm `ws` in Node 20, which has no global WebSocket).
/** WebSocket.OPEN, the same in every implementation. */
export const OPEN = 1;
/** The global WebSocket, or an error saying how to pass one. */
export function defaultWebSocket() {
    const ws = globalThis.WebSocket;
    if (!ws) {
        throw new TypeError('no global WebSocket (Node before 22?): pass one, e.g. new ShardlineClient({ WebSocket }) with `import WebSocket from "ws"`');
    }
    return ws;
}
/**
 * Drops a socket at once, without waiting for a closing handshake the other
 * side may never answer: `ws`'s terminate() when it has one, else close().
 */
export function abandon(sock, code, reason) {
    try {
        const terminate = sock.terminate;
        if (typeof terminate === 'function')
            terminate.call(sock);
        else
            sock.close(code, reason);
    }
    catch {
        // Already closed or closing: nothing more to do.
    }
}
/** The bytes of a binary message event (ArrayBuffer with binaryType 'arraybuffer'; Buffer/Uint8Array from some Node sockets). */
export function messageBytes(data) {
    if (data instanceof ArrayBuffer)
        return new Uint8Array(data);
    if (ArrayBuffer.isView(data))
        return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return null;
}
