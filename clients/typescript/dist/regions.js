// Choosing a region: measure the round trip to each region's /echo endpoint
// and take the lowest. Every probe is bounded by a timeout.
import { abandon, messageBytes } from './socket.js';
import { echoUrl } from './urls.js';
export const PROBE_DEFAULTS = { samples: 3, timeoutMs: 2000 };
// Bytes per echo sample: small, like a game message.
const SAMPLE_BYTES = 16;
/** Probes every region at once; results in the order given. */
export function probeRegions(regions, WebSocket, opts = PROBE_DEFAULTS, now = () => performance.now()) {
    return Promise.all(regions.map((r) => probeOne(r, WebSocket, opts, now)));
}
/** The region with the lowest round trip, or null when none answered. */
export function fastest(probes) {
    let best = null;
    for (const p of probes) {
        if (p.rttMs !== null && (best === null || p.rttMs < best.rttMs))
            best = p;
    }
    return best;
}
function probeOne(region, WebSocket, opts, now) {
    return new Promise((resolve) => {
        let sock = null;
        const rtts = [];
        let sentAt = 0;
        let done = false;
        const finish = (error) => {
            if (done)
                return;
            done = true;
            clearTimeout(timer);
            if (sock)
                abandon(sock, 1000, 'probe done');
            if (error !== undefined)
                resolve({ region, rttMs: null, error });
            else
                resolve({ region, rttMs: median(rtts) });
        };
        const timer = setTimeout(() => finish(`no answer within ${opts.timeoutMs} ms`), opts.timeoutMs);
        const payload = new Uint8Array(SAMPLE_BYTES);
        const sendSample = () => {
            payload[0] = rtts.length;
            sentAt = now();
            sock?.send(payload);
        };
        try {
            sock = open(WebSocket, echoUrl(region.url));
        }
        catch (e) {
            finish(String(e));
            return;
        }
        sock.onopen = sendSample;
        sock.onmessage = (ev) => {
            const bytes = messageBytes(ev.data);
            if (!bytes || bytes[0] !== rtts.length)
                return;
            rtts.push(now() - sentAt);
            if (rtts.length >= opts.samples)
                finish();
            else
                sendSample();
        };
        sock.onerror = () => finish('connection failed');
        sock.onclose = (ev) => finish(`closed (${ev.code}) before the probe finished`);
    });
}
function open(WebSocket, url) {
    const s = new WebSocket(url);
    s.binaryType = 'arraybuffer';
    return s;
}
function median(xs) {
    const s = [...xs].sort((a, b) => a - b);
    const mid = s.length >> 1;
    return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
