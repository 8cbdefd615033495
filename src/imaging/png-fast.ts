/**
 * A fast path for small, plain PNGs (the 28x28 digits a classifier mostly sees): sharp costs a fixed
 * few hundred microseconds per image, this costs tens. It accepts only files whose pixels the PNG
 * specification fixes exactly, so it returns what libvips would, byte for byte:
 * 8-bit grey, grey+alpha, RGB or RGBA, not interlaced, every chunk's CRC correct, IDAT inflating to
 * exactly the expected length, IEND last, and no chunk that could change the pixels (iCCP, gAMA,
 * cHRM, sBIT, tRNS, eXIf, ... are absent). For anything else it returns undefined and the caller
 * decodes with sharp, which also gives the error of a damaged file: so errors stay deterministic
 * and identical whichever path a file takes.
 */
import { inflateSync } from "node:zlib";

/** Largest image (width x height) taken by the fast path; larger ones are faster in libvips. */
export const FAST_PNG_MAX_PIXELS = 128 * 128;

/** Chunks that never change the decoded pixels. */
const HARMLESS = new Set(["tEXt", "zTXt", "iTXt", "pHYs", "tIME"]);
const CHANNELS: Record<number, 1 | 2 | 3 | 4> = { 0: 1, 4: 2, 2: 3, 6: 4 };

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 of b[start, end), as PNG chunks carry it. */
export function crc32(b: Uint8Array, start = 0, end = b.length): number {
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** One PNG chunk (length, type, data, CRC), for writers and tests. */
export function pngChunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  out.set(data, 8);
  out.writeUInt32BE(crc32(out, 4, 8 + data.length), 8 + data.length);
  return out;
}

/** The 8 bytes every PNG starts with. */
export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface FastPng {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  /** Interleaved 8-bit samples, width * height * channels. */
  data: Uint8Array;
}

/** Decodes `b` if it is a small plain PNG (see the module comment); undefined otherwise. */
export function decodePlainPng(b: Buffer): FastPng | undefined {
  if (b.length < 45 || b.readUInt32BE(8) !== 13 || b.toString("latin1", 12, 16) !== "IHDR") return undefined;
  const width = b.readUInt32BE(16);
  const height = b.readUInt32BE(20);
  const [depth, colourType, compression, filter, interlace] = b.subarray(24, 29);
  const channels = CHANNELS[colourType];
  if (depth !== 8 || channels === undefined || compression !== 0 || filter !== 0 || interlace !== 0)
    return undefined;
  if (width === 0 || height === 0 || width * height > FAST_PNG_MAX_PIXELS) return undefined;
  const idat: Buffer[] = [];
  let ended = false;
  let lastType = "";
  for (let p = 8; p < b.length;) {
    if (p + 12 > b.length) return undefined;
    const len = b.readUInt32BE(p);
    const end = p + 8 + len;
    if (len > 0x7fffffff || end + 4 > b.length) return undefined;
    const type = b.toString("latin1", p + 4, p + 8);
    if (crc32(b, p + 4, end) !== b.readUInt32BE(end)) return undefined;
    if (type === "IDAT") {
      // IDAT chunks must be consecutive.
      if (idat.length > 0 && lastType !== "IDAT") return undefined;
      idat.push(b.subarray(p + 8, end));
    } else if (type === "IEND") {
      ended = end + 4 === b.length && len === 0;
      break;
    } else if (type !== "IHDR" || p !== 8) {
      if (!HARMLESS.has(type)) return undefined;
    }
    lastType = type;
    p = end + 4;
  }
  if (!ended || idat.length === 0) return undefined;
  const stride = width * channels;
  const expected = height * (stride + 1);
  let raw: Buffer;
  try {
    raw = inflateSync(idat.length === 1 ? idat[0] : Buffer.concat(idat), { maxOutputLength: expected });
  } catch {
    return undefined;
  }
  if (raw.length !== expected) return undefined;
  const out = new Uint8Array(height * stride);
  const bpp = channels;
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const o = y * stride;
    const up = o - stride; // the previous output row (y > 0)
    switch (f) {
      case 0:
        out.set(raw.subarray(src, src + stride), o);
        break;
      case 1:
        for (let x = 0; x < stride; x++) out[o + x] = raw[src + x] + (x >= bpp ? out[o + x - bpp] : 0);
        break;
      case 2:
        for (let x = 0; x < stride; x++) out[o + x] = raw[src + x] + (y > 0 ? out[up + x] : 0);
        break;
      case 3:
        for (let x = 0; x < stride; x++) {
          const a = x >= bpp ? out[o + x - bpp] : 0;
          const c = y > 0 ? out[up + x] : 0;
          out[o + x] = raw[src + x] + ((a + c) >> 1);
        }
        break;
      case 4:
        for (let x = 0; x < stride; x++) {
          const a = x >= bpp ? out[o + x - bpp] : 0;
          const c = y > 0 ? out[up + x] : 0;
          const d = x >= bpp && y > 0 ? out[up + x - bpp] : 0;
          const pa = Math.abs(c - d);
          const pb = Math.abs(a - d);
          const pc = Math.abs(a + c - 2 * d);
          out[o + x] = raw[src + x] + (pa <= pb && pa <= pc ? a : pb <= pc ? c : d);
        }
        break;
      default:
        return undefined;
    }
  }
  return { width, height, channels, data: out };
}
