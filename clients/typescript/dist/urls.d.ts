/**
 * Normalizes a node address: `ws://host:9000`, `wss://host/prefix/`,
 * `http(s)://…` (mapped to ws/wss, e.g. a page's own origin), or a URL that
 * already ends in `/play` or `/echo`. Returns the base without a trailing
 * slash, query or fragment.
 */
export declare function baseUrl(url: string): string;
/** The /play URL, naming the instance when given so the connection lands on its owner shard. */
export declare function playUrl(base: string, instanceId?: string | null): string;
export declare function echoUrl(base: string): string;
