// A node's base URL → its /play and /echo WebSocket URLs. Pure code.
/**
 * Normalizes a node address: `ws://host:9000`, `wss://host/prefix/`,
 * `http(s)://…` (mapped to ws/wss, e.g. a page's own origin), or a URL that
 * already ends in `/play` or `/echo`. Returns the base without a trailing
 * slash, query or fragment.
 */
export function baseUrl(url) {
    const u = new URL(url);
    if (u.protocol === 'http:')
        u.protocol = 'ws:';
    else if (u.protocol === 'https:')
        u.protocol = 'wss:';
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
        throw new TypeError(`not a WebSocket or HTTP URL: ${url}`);
    }
    u.search = '';
    u.hash = '';
    let path = u.pathname.replace(/\/+$/, '');
    if (path.endsWith('/play') || path.endsWith('/echo'))
        path = path.slice(0, -'/play'.length);
    u.pathname = path;
    return u.toString().replace(/\/+$/, '');
}
/** The /play URL, naming the instance when given so the connection lands on its owner shard. */
export function playUrl(base, instanceId) {
    const play = `${baseUrl(base)}/play`;
    return instanceId ? `${play}?instance=${encodeURIComponent(instanceId)}` : play;
}
export function echoUrl(base) {
    return `${baseUrl(base)}/echo`;
}
