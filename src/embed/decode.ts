/**
 * PNG / JPEG decoding to the model's input for the batch embedder: [H, W, C] float32 in [0, 1].
 *
 * The same preprocessing as the HTTP service's (src/serve/images.ts): transparent pixels are
 * composited on black (the MNIST background), colour becomes grey by Rec. 601 luminance
 * (0.299 R + 0.587 G + 0.114 B; grey is repeated for colour models), and the image is resized to
 * H x W (area averaging when shrinking, bilinear when enlarging; the aspect ratio is not kept).
 * Kept separate from src/serve so the two helpers could be written at the same time; they are
 * meant to be unified.
 */
import { PNG } from "pngjs";
import jpeg from "jpeg-js";

export interface ModelShape {
  height: number;
  width: number;
  channels: number;
}

/** Largest decoded image accepted (width x height, read from the header before decoding). */
export const MAX_DECODED_PIXELS = 40_000_000;

/** An image that cannot be used; the embedder skips it and reports the message. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The container format from the first bytes, or undefined. */
export function sniffImage(b: Uint8Array): "png" | "jpeg" | undefined {
  if (b.length >= 8 && PNG_SIG.every((x, i) => b[i] === x)) return "png";
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  return undefined;
}

function pngSize(b: Buffer): [number, number] {
  if (b.length < 24 || b.toString("latin1", 12, 16) !== "IHDR")
    throw new DecodeError("truncated PNG (no IHDR)");
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

function jpegSize(b: Buffer): [number, number] {
  let i = 2;
  while (i + 3 < b.length) {
    if (b[i] !== 0xff) throw new DecodeError(`corrupt JPEG (bad marker at byte ${i})`);
    const m = b[i + 1];
    if (m === 0xff) {
      i++;
      continue;
    }
    if ((m >= 0xd0 && m <= 0xd7) || m === 0x01) {
      i += 2;
      continue;
    }
    const len = b.readUInt16BE(i + 2);
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (i + 8 >= b.length) break;
      return [b.readUInt16BE(i + 7), b.readUInt16BE(i + 5)];
    }
    if (m === 0xda || m === 0xd9) break;
    i += 2 + len;
  }
  throw new DecodeError("corrupt JPEG (no frame header)");
}

/**
 * Decodes a PNG or JPEG into the model's input layout; writes H*W*C floats into `out` (or a new
 * array). Throws DecodeError for anything that is not a readable PNG/JPEG.
 */
export function decodeImage(buf: Uint8Array, model: ModelShape, out?: Float32Array): Float32Array {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const kind = sniffImage(b);
  if (kind === undefined) throw new DecodeError("not a PNG or JPEG image");
  const [w0, h0] = kind === "png" ? pngSize(b) : jpegSize(b);
  if (w0 === 0 || h0 === 0) throw new DecodeError(`image of size ${w0}x${h0}`);
  if (w0 * h0 > MAX_DECODED_PIXELS)
    throw new DecodeError(`${w0}x${h0} is over the limit of ${MAX_DECODED_PIXELS} pixels`);
  let rgba: Uint8Array;
  let w: number;
  let h: number;
  let grey: boolean;
  try {
    if (kind === "png") {
      const png = PNG.sync.read(b);
      ({ width: w, height: h } = png);
      rgba = png.data;
      grey = b[25] === 0 || b[25] === 4; // IHDR colour type: grey, grey + alpha
    } else {
      const img = jpeg.decode(b, {
        useTArray: true,
        formatAsRGBA: true,
        maxResolutionInMP: MAX_DECODED_PIXELS / 1e6,
        maxMemoryUsageInMB: 1024,
      });
      ({ width: w, height: h } = img);
      rgba = img.data;
      grey = false; // jpeg-js expands grey to RGB; R = G = B is detected per pixel below
    }
  } catch (e) {
    const msg = e instanceof Error ? (e.message.split("\n")[0] ?? "") : String(e);
    throw new DecodeError(`cannot decode ${kind.toUpperCase()} (${msg})`);
  }
  if (w !== w0 || h !== h0) throw new DecodeError("header and data sizes differ");
  return toModel(rgba, h, w, grey, model, out);
}

/** RGBA bytes -> the model's [H, W, C] floats (alpha on black, Rec. 601 grey, resize). */
export function toModel(
  rgba: Uint8Array,
  h: number,
  w: number,
  grey: boolean,
  model: ModelShape,
  out?: Float32Array,
): Float32Array {
  const n = h * w;
  const C = model.channels;
  const cc = grey ? 1 : 3;
  let data = new Float32Array(n * cc);
  for (let i = 0; i < n; i++) {
    const a = rgba[i * 4 + 3];
    const alpha = Math.fround(a / 255);
    for (let k = 0; k < cc; k++) {
      const v = Math.fround(rgba[i * 4 + k] / 255);
      data[i * cc + k] = a === 255 ? v : alpha * v; // composited on black
    }
  }
  let c: number = cc;
  if (C === 1 && cc === 3) {
    const g = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const R = data[i * 3];
      const G = data[i * 3 + 1];
      const B = data[i * 3 + 2];
      g[i] = R === G && G === B ? R : 0.299 * R + 0.587 * G + 0.114 * B;
    }
    data = g;
    c = 1;
  }
  let img: Float32Array = data;
  if (c !== C) {
    // grey to a colour (or other channel count) model: repeat the grey value
    img = new Float32Array(n * C);
    for (let i = 0; i < n; i++) img.fill(data[i], i * C, (i + 1) * C);
    c = C;
  }
  if (h !== model.height || w !== model.width) img = resize(img, h, w, c, model.height, model.width);
  const dst = out ?? new Float32Array(model.height * model.width * C);
  dst.set(img);
  return dst;
}

/** Resampling weights along one axis: area averaging when shrinking, bilinear when enlarging. */
function axisWeights(inSize: number, outSize: number): Array<Array<[number, number]>> {
  const out: Array<Array<[number, number]>> = [];
  const s = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const taps: Array<[number, number]> = [];
    if (s >= 1) {
      const a = o * s;
      const b = (o + 1) * s;
      for (let i = Math.floor(a); i < Math.min(Math.ceil(b), inSize); i++) {
        const wgt = Math.min(b, i + 1) - Math.max(a, i);
        if (wgt > 0) taps.push([i, wgt / s]);
      }
    } else {
      const x = Math.min(Math.max((o + 0.5) * s - 0.5, 0), inSize - 1);
      const i0 = Math.floor(x);
      const f = x - i0;
      taps.push([i0, 1 - f]);
      if (f > 0) taps.push([i0 + 1, f]);
    }
    out.push(taps);
  }
  return out;
}

/** Separable resize of [h, w, c] to [H, W, c], clamped to [0, 1]. */
export function resize(
  src: Float32Array,
  h: number,
  w: number,
  c: number,
  H: number,
  W: number,
): Float32Array {
  const wx = axisWeights(w, W);
  const wy = axisWeights(h, H);
  const tmp = new Float64Array(h * W * c);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < W; x++)
      for (const [i, wt] of wx[x])
        for (let k = 0; k < c; k++) tmp[(y * W + x) * c + k] += wt * src[(y * w + i) * c + k];
  const out = new Float32Array(H * W * c);
  const acc = new Float64Array(W * c);
  for (let y = 0; y < H; y++) {
    acc.fill(0);
    for (const [j, wt] of wy[y]) for (let t = 0; t < W * c; t++) acc[t] += wt * tmp[j * W * c + t];
    for (let t = 0; t < W * c; t++) out[y * W * c + t] = Math.min(1, Math.max(0, acc[t]));
  }
  return out;
}
