// Choosing a region: measure the round trip to each region's /echo endpoint
// and take the lowest. Every probe is bounded by a timeout.

import { abandon, messageBytes, type WebSocketConstructor, type WebSocketLike } from './socket.js';
import type { Region, RegionProbe } from './types.js';
import { echoUrl } from './urls.js';

export interface ProbeOptions {
  /** Echo round trips per region; the median counts. */
  samples: number;
  /** A region that has not answered every sample by then is out. */
  timeoutMs: number;
}

export const PROBE_DEFAULTS: ProbeOptions = { samples: 3, timeoutMs: 2000 };

// Bytes per echo sample: small, like a game message.
const SAMPLE_BYTES = 16;

/** Probes every region at once; results in the order given. */
export function probeRegions(
  regions: Region[],
  WebSocket: WebSocketConstructor,
  opts: ProbeOptions = PROBE_DEFAULTS,
  now: () => number = () => performance.now(),
): Promise<RegionProbe[]> {
  return Promise.all(regions.map((r) => probeOne(r, WebSocket, opts, now)));
}

/** The region with the lowest round trip, or null when none answered. */
export function fastest(probes: RegionProbe[]): RegionProbe | null {
  let best: RegionProbe | null = null;
  for (const p of probes) {
    if (p.rttMs !== null && (best === null || p.rttMs < (best.rttMs as number))) best = p;
  }
  return best;
}

function probeOne(region: Region, WebSocket: WebSocketConstructor, opts: ProbeOptions, now: () => number): Promise<RegionProbe> {
  return new Promise((resolve) => {
    let sock: WebSocketLike | null = null;
    const rtts: number[] = [];
    let sentAt = 0;
    let done = false;
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (sock) abandon(sock, 1000, 'probe done');
      if (error !== undefined) resolve({ region, rttMs: null, error });
      else resolve({ region, rttMs: median(rtts) });
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
    } catch (e) {
      finish(String(e));
      return;
    }
    sock.onopen = sendSample;
    sock.onmessage = (ev: { data: unknown }) => {
      const bytes = messageBytes(ev.data);
      if (!bytes || bytes[0] !== rtts.length) return;
      rtts.push(now() - sentAt);
      if (rtts.length >= opts.samples) finish();
      else sendSample();
    };
    sock.onerror = () => finish('connection failed');
    sock.onclose = (ev: { code: number }) => finish(`closed (${ev.code}) before the probe finished`);
  });
}

function open(WebSocket: WebSocketConstructor, url: string): WebSocketLike {
  const s = new WebSocket(url);
  s.binaryType = 'arraybuffer';
  return s;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
