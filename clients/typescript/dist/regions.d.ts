import { type WebSocketConstructor } from './socket.js';
import type { Region, RegionProbe } from './types.js';
export interface ProbeOptions {
    /** Echo round trips per region; the median counts. */
    samples: number;
    /** A region that has not answered every sample by then is out. */
    timeoutMs: number;
}
export declare const PROBE_DEFAULTS: ProbeOptions;
/** Probes every region at once; results in the order given. */
export declare function probeRegions(regions: Region[], WebSocket: WebSocketConstructor, opts?: ProbeOptions, now?: () => number): Promise<RegionProbe[]>;
/** The region with the lowest round trip, or null when none answered. */
export declare function fastest(probes: RegionProbe[]): RegionProbe | null;
