export type Listener<T> = (payload: T) => void;
export declare class Emitter<Events extends {
    [K in keyof Events]: unknown;
}> {
    private readonly listeners;
    /** Calls `fn` on every `event`; returns a function that removes it. */
    on<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void;
    /** Calls `fn` on the next `event` only. */
    once<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void;
    off<K extends keyof Events>(event: K, fn: Listener<Events[K]>): void;
    protected emit<K extends keyof Events>(event: K, payload: Events[K]): void;
    /** A listener threw: re-thrown on a task of its own, so the host reports it. */
    protected listenerFailed(err: unknown): void;
}
