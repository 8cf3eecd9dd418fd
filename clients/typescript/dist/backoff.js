// Reconnect delays: exponential backoff with jitter. Pure code.
export const RECONNECT_DEFAULTS = {
    baseDelayMs: 200,
    maxDelayMs: 10000,
    maxAttempts: 20,
};
/**
 * Delay before reconnect attempt `attempt` (0 for the first): the ceiling
 * doubles per attempt up to `maxDelayMs`, and the delay is drawn uniformly
 * from its upper half ("equal jitter"), so a crowd of clients dropped at the
 * same moment does not come back at the same moment, yet none retries
 * at once in a tight loop.
 */
export function backoffDelayMs(attempt, opts, random = Math.random) {
    const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** Math.min(attempt, 30));
    return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
