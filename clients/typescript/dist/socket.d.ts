/** The part of the WebSocket API the client uses. */
export interface WebSocketLike {
    binaryType: string;
    readonly readyState: number;
    send(data: Uint8Array): void;
    close(code?: number, reason?: string): void;
    onopen: ((ev: any) => any) | null;
    onmessage: ((ev: any) => any) | null;
    onclose: ((ev: any) => any) | null;
    onerror: ((ev: any) => any) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;
/** WebSocket.OPEN, the same in every implementation. */
export declare const OPEN = 1;
/** The global WebSocket, or an error saying how to pass one. */
export declare function defaultWebSocket(): WebSocketConstructor;
/**
 * Drops a socket at once, without waiting for a closing handshake the other
 * side may never answer: `ws`'s terminate() when it has one, else close().
 */
export declare function abandon(sock: WebSocketLike, code: number, reason: string): void;
/** The bytes of a binary message event (ArrayBuffer with binaryType 'arraybuffer'; Buffer/Uint8Array from some Node sockets). */
export declare function messageBytes(data: unknown): Uint8Array | null;
