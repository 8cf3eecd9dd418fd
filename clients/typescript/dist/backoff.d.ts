export interface ReconnectOptions {
    /** First delay's ceiling, ms. */
    baseDelayMs: number;
    /** No delay is longer than this, ms. */
    maxDelayMs: number;
    /** Attempts after one drop before giving up (the client then emits `closed`). */
    maxAttempts: number;
}
export declare const RECONNECT_DEFAULTS: ReconnectOptions;
/**
 * Delay before reconnect attempt `attempt` (0 for the first): the ceiling
 * doubles per attempt up to `maxDelayMs`, and the delay is drawn uniformly
 * from its upper half ("equal jitter"), so a crowd of clients dropped at the
 * same moment does not come back at the same moment, yet none retries
 * at once in a tight loop.
 */
export declare function backoffDelayMs(attempt: number, opts: ReconnectOptions, random?: () => number): number;
