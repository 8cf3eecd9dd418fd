// HdrHistogram in the browser: decodes what GET /histograms serves (base64 of
// the V2-deflate encoding, as written by the `hdrhistogram` crate and by
// HdrHistogram's Java/C implementations) and answers percentile questions.
//
// Layout (all integers big-endian):
//   V2-deflate: u32 cookie 0x1c849304|0x10, u32 length, zlib(V2 payload)
//   V2 payload: u32 cookie 0x1c849303|0x10, u32 counts length, u32 normalizing
//               index offset, u32 significant digits, u64 lowest discernible
//               value, u64 highest trackable value, f64 int-to-double ratio,
//               then the counts: ZigZag LEB128-64b9B varints, a negative
//               value -n standing for n empty buckets.

const V2_COOKIE_BASE = 0x1c849303;
const V2_COMPRESSED_COOKIE_BASE = 0x1c849304;
const V2_HEADER_BYTES = 40;

/** Decodes base64 V2-deflate text into a Histogram (async: inflating is a stream). */
export async function decodeBase64(text) {
  const bin = atob(text.trim());
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return decodeCompressed(bytes);
}

export async function decodeCompressed(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const cookie = dv.getUint32(0);
  if ((cookie & ~0xf0) >>> 0 !== V2_COMPRESSED_COOKIE_BASE) {
    throw new Error(`not a V2-deflate histogram (cookie 0x${cookie.toString(16)})`);
  }
  const len = dv.getUint32(4);
  if (8 + len > bytes.length) throw new Error(`truncated histogram: ${len} bytes announced, ${bytes.length - 8} present`);
  return decodeV2(await inflate(bytes.subarray(8, 8 + len)));
}

async function inflate(data) {
  // 'deflate' is the zlib format (RFC 1950), which the Rust crate writes.
  const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export function decodeV2(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const cookie = dv.getUint32(0);
  if ((cookie & ~0xf0) >>> 0 !== V2_COOKIE_BASE) throw new Error(`not a V2 histogram (cookie 0x${cookie.toString(16)})`);
  const countsLen = dv.getUint32(4);
  const normalizingOffset = dv.getUint32(8);
  if (normalizingOffset !== 0) throw new Error('normalizing index offsets are not supported');
  const sigfig = dv.getUint32(12);
  const lowest = Number(dv.getBigUint64(16));
  const highest = Number(dv.getBigUint64(24));
  const end = V2_HEADER_BYTES + countsLen;
  if (end > bytes.length) throw new Error('truncated histogram counts');

  const h = new Histogram(lowest, highest, sigfig);
  let pos = V2_HEADER_BYTES;
  let index = 0;
  while (pos < end) {
    // LEB128-64b9B: 8 groups of 7 bits, then a 9th byte of 8 bits.
    let value = 0;
    let scale = 1;
    let i = 0;
    for (;;) {
      const b = bytes[pos++];
      if (i === 8) {
        value += b * scale;
        break;
      }
      value += (b & 0x7f) * scale;
      scale *= 128;
      i++;
      if ((b & 0x80) === 0) break;
    }
    // ZigZag: even → value/2, odd → -(value+1)/2. (Exact below 2^53.)
    const n = value % 2 === 0 ? value / 2 : -(value + 1) / 2;
    if (n < 0) index += -n;
    else {
      if (n > 0) h.add(index, n);
      index++;
    }
  }
  h.finish();
  return h;
}

/** The bucket structure of an HdrHistogram, and its non-empty counts. */
export class Histogram {
  constructor(lowest, highest, sigfig) {
    this.lowest = lowest;
    this.highest = highest;
    this.sigfig = sigfig;
    this.unitMagnitude = Math.floor(Math.log2(lowest));
    const subBucketCountMagnitude = Math.ceil(Math.log2(2 * 10 ** sigfig));
    this.subBucketHalfCountMagnitude = Math.max(subBucketCountMagnitude, 1) - 1;
    this.subBucketHalfCount = 2 ** this.subBucketHalfCountMagnitude;
    /** [highest equivalent value, count] of each non-empty bucket, by value. */
    this.buckets = [];
    this.totalCount = 0;
    this.min = 0;
    this.max = 0;
  }

  add(index, count) {
    let bucket = Math.floor(index / this.subBucketHalfCount) - 1;
    let sub = (index % this.subBucketHalfCount) + this.subBucketHalfCount;
    if (bucket < 0) {
      sub -= this.subBucketHalfCount;
      bucket = 0;
    }
    const shift = 2 ** (bucket + this.unitMagnitude);
    const lowestEquivalent = sub * shift;
    this.buckets.push([lowestEquivalent + shift - 1, count, lowestEquivalent]);
    this.totalCount += count;
  }

  finish() {
    this.buckets.sort((a, b) => a[0] - b[0]);
    this.cumulative = [];
    let sum = 0;
    for (const [, c] of this.buckets) this.cumulative.push((sum += c));
    if (this.buckets.length > 0) {
      this.min = this.buckets[0][2];
      this.max = this.buckets[this.buckets.length - 1][0];
    }
  }

  /** The value at `percentile` (0–100), as HdrHistogram reports it: the highest value equivalent to the bucket reached. */
  valueAtPercentile(percentile) {
    if (this.totalCount === 0) return 0;
    const p = Math.min(Math.max(percentile, 0), 100) / 100;
    const target = Math.max(1, Math.ceil(p * this.totalCount));
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid] >= target) hi = mid;
      else lo = mid + 1;
    }
    return this.buckets[lo][0];
  }

  /**
   * Points of the percentile distribution for a plot with HdrHistogram's
   * x axis: x = log10(1 / (1 - p)), so 0 is 0%, 1 is 90%, 2 is 99%, 3 is
   * 99.9%… It runs to the percentile of the single worst sample
   * (1 - 1/count), at most 99.9999%. Empty histogram: no points.
   */
  percentileCurve(stepsPerDecade = 40) {
    if (this.totalCount === 0) return [];
    const xMax = Math.min(6, Math.log10(Math.max(this.totalCount, 2)));
    const steps = Math.max(2, Math.ceil(xMax * stepsPerDecade));
    const pts = [];
    for (let i = 0; i <= steps; i++) {
      const x = (xMax * i) / steps;
      pts.push([x, this.valueAtPercentile(100 * (1 - 10 ** -x))]);
    }
    pts.push([xMax, this.max]);
    return pts;
  }
}
