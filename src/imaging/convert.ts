/**
 * From a decoded image (or a raw pixel array) to the model's input: alpha compositing, colour
 * conversion, resizing and inversion, all in float32 and synchronous; plus PNG encoding of
 * model-space images, tiling, and base64 decoding.
 */
import { PNG } from "pngjs";
import { ImagingError } from "./errors.js";
import { checkSize, type ImageFormat } from "./header.js";

/** What was done to one input image to make it the model's input (reported in every response). */
export interface Preprocessing {
  source: ImageFormat | "pixels";
  /** The image as decoded, after its EXIF orientation was applied (see `oriented`). */
  original: { height: number; width: number; colour: string };
  /** The EXIF Orientation (2-8) that was applied; absent when the image had none (or 1). */
  oriented?: number;
  converted_from?: string;
  alpha_composited_on?: "black" | "white";
  resized_from?: [number, number];
  inverted?: true;
  /**
   * Present when `invert` was "auto": the mean of the model-space image's border (a 2-pixel frame,
   * 1 for sides under 8; all channels) rounded to 3 decimals, and the background it implies (light
   * when the mean is over 0.5). The image is inverted when that background is not the model's.
   */
  invert_auto?: { border_mean: number; background: "light" | "dark" };
}

export interface ImageOptions {
  /** Invert (1 - x) after resizing; "auto": invert when the border's background is not the model's. */
  invert?: boolean | "auto";
  /** Colour that transparent pixels are composited on (default black, the MNIST background). */
  background?: "black" | "white";
  /** Scale of raw pixel arrays (default "0-1"). */
  pixelsRange?: "0-1" | "0-255";
}

export interface ModelInput {
  height: number;
  width: number;
  channels: number;
  /**
   * The background of the model's training images, for `invert: "auto"`: "dark" (default; MNIST is
   * a white digit on black), "light", or "any" (auto never inverts; border_mean is still reported).
   */
  background?: "dark" | "light" | "any";
}

/** A source image: float values in [0, 1], row-major [h, w, colour channels (1 or 3)], plus optional alpha. */
export interface Raster {
  height: number;
  width: number;
  colourChannels: 1 | 3;
  data: Float32Array;
  alpha?: Float32Array;
  colour: string;
  source: Preprocessing["source"];
  /** The EXIF Orientation applied while decoding (absent or 1: none). */
  orientation?: number;
}

/**
 * Interleaved 8-bit pixels with `channels` = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) -> a
 * Raster; `grey` keeps only the first channel of RGB(A) input (a grey image expanded to RGB).
 * Alpha is kept only when some pixel is not opaque.
 */
export function fromInterleaved(
  px: Uint8Array,
  h: number,
  w: number,
  channels: 1 | 2 | 3 | 4,
  grey: boolean,
  colour: string,
  source: Raster["source"],
): Raster {
  const n = h * w;
  const hasAlpha = channels === 2 || channels === 4;
  const cc: 1 | 3 = grey || channels <= 2 ? 1 : 3;
  const data = new Float32Array(n * cc);
  let alpha: Float32Array | undefined;
  const a = channels - 1;
  for (let i = 0; i < n; i++) {
    const o = i * channels;
    if (cc === 1) data[i] = px[o] / 255;
    else {
      data[i * 3] = px[o] / 255;
      data[i * 3 + 1] = px[o + 1] / 255;
      data[i * 3 + 2] = px[o + 2] / 255;
    }
    if (hasAlpha && px[o + a] !== 255) {
      alpha ??= new Float32Array(n).fill(1);
      alpha[i] = px[o + a] / 255;
    }
  }
  return { height: h, width: w, colourChannels: cc, data, alpha, colour, source };
}

/** RGBA bytes -> a Raster; `colour` "grey"/"grey+alpha" keeps one channel. */
export function fromRgba(
  rgba: Uint8Array,
  h: number,
  w: number,
  colour: string,
  source: Raster["source"],
): Raster {
  const grey = colour === "grey" || colour === "grey+alpha";
  return fromInterleaved(rgba, h, w, 4, grey, colour, source);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** Decodes a base64 string or a data URI (data:image/png;base64,...). */
export function decodeBase64(s: string, what: string): Buffer {
  let body = s;
  if (s.startsWith("data:")) {
    const m = /^data:([^,;]*)(;[^,]*)?,(.*)$/s.exec(s);
    if (!m || !(m[2] ?? "").split(";").includes("base64"))
      throw new ImagingError("invalid-base64", `${what}: a data URI must be 'data:<type>;base64,<data>'`);
    body = m[3];
  }
  body = body.replace(/\s+/g, "");
  const ok = (BASE64.test(body) || BASE64URL.test(body)) && body.length % 4 !== 1;
  if (!ok || body.length === 0) throw new ImagingError("invalid-base64", `${what}: not valid base64`);
  return Buffer.from(body, BASE64.test(body) ? "base64" : "base64url");
}

/**
 * A raw pixel array: flat (exactly the model's H*W*C values) or nested [h][w] / [h][w][c]
 * (c = 1, 3 or 4; any size within the limits).
 */
export function fromPixels(
  p: unknown,
  model: ModelInput,
  opts: ImageOptions,
  maxPixels: number,
  what: string,
): Raster {
  const scale = opts.pixelsRange === "0-255" ? 255 : 1;
  const val = (x: unknown, where: string): number => {
    if (typeof x !== "number" || !Number.isFinite(x))
      throw new ImagingError("invalid-pixels", `${what}${where}: not a finite number`);
    if (x < 0 || x > scale)
      throw new ImagingError(
        "invalid-pixels",
        `${what}${where}: ${x} is outside [0, ${scale}] (pixels_range "${opts.pixelsRange ?? "0-1"}")`,
      );
    return x / scale;
  };
  if (!Array.isArray(p) || p.length === 0)
    throw new ImagingError("invalid-pixels", `${what}: not a non-empty array`);
  if (!Array.isArray(p[0])) {
    const want = model.height * model.width * model.channels;
    if (p.length !== want)
      throw new ImagingError(
        "invalid-pixels",
        `${what}: a flat array needs ${want} values (${model.height}x${model.width}x${model.channels}), got ${p.length}; send other sizes nested as [h][w] or [h][w][c]`,
      );
    const data = Float32Array.from(p, (x, i) => val(x, `[${i}]`));
    const cc = model.channels === 1 ? 1 : 3;
    if (model.channels !== 1 && model.channels !== 3)
      throw new ImagingError("invalid-pixels", `${what}: flat arrays need a 1- or 3-channel model`);
    return {
      height: model.height,
      width: model.width,
      colourChannels: cc,
      data,
      colour: cc === 1 ? "grey" : "rgb",
      source: "pixels",
    };
  }
  const h = p.length;
  const row0 = p[0] as unknown[];
  const w = row0.length;
  const c = Array.isArray(row0[0]) ? (row0[0] as unknown[]).length : 0; // 0: [h][w] grey
  if (c !== 0 && c !== 1 && c !== 3 && c !== 4)
    throw new ImagingError("invalid-pixels", `${what}: pixels need 1, 3 or 4 channels, got ${c}`);
  checkSize(h, w, maxPixels, what);
  const cc: 1 | 3 = c === 3 || c === 4 ? 3 : 1;
  const data = new Float32Array(h * w * cc);
  let alpha: Float32Array | undefined;
  for (let y = 0; y < h; y++) {
    const row = p[y];
    if (!Array.isArray(row) || row.length !== w)
      throw new ImagingError("invalid-pixels", `${what}[${y}]: ragged rows (want ${w} values)`);
    for (let x = 0; x < w; x++) {
      const px = row[x];
      if (c === 0) {
        data[y * w + x] = val(px, `[${y}][${x}]`);
        continue;
      }
      if (!Array.isArray(px) || px.length !== c)
        throw new ImagingError("invalid-pixels", `${what}[${y}][${x}]: want ${c} channel values`);
      const o = (y * w + x) * cc;
      for (let k = 0; k < cc; k++) data[o + k] = val(px[k], `[${y}][${x}][${k}]`);
      if (c === 4) {
        const a = val(px[3], `[${y}][${x}][3]`);
        if (a !== 1) (alpha ??= new Float32Array(h * w).fill(1))[y * w + x] = a;
      }
    }
  }
  const colour = c === 4 ? "rgba" : cc === 3 ? "rgb" : "grey";
  return { height: h, width: w, colourChannels: cc, data, alpha, colour, source: "pixels" };
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

/**
 * Resizes [h, w, c] floats to [H, W, c]: area averaging when shrinking, bilinear when enlarging
 * (each axis on its own; the aspect ratio is not kept); values clamped to [0, 1].
 */
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
  for (let y = 0; y < H; y++)
    for (const [j, wt] of wy[y])
      for (let x = 0; x < W; x++)
        for (let k = 0; k < c; k++) out[(y * W + x) * c + k] += wt * tmp[(j * W + x) * c + k];
  for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, out[i]));
  return out;
}

/**
 * The mean of an [H, W, C] image's border: a frame 2 pixels wide (1 when a side is under 8), all
 * channels. Used by `invert: "auto"` to tell a light background from a dark one.
 */
export function borderMean(data: Float32Array, H: number, W: number, C: number): number {
  const f = Math.min(H, W) < 8 ? 1 : 2;
  let sum = 0;
  let count = 0;
  for (let y = 0; y < H; y++) {
    const edgeRow = y < f || y >= H - f;
    for (let x = 0; x < W; x++) {
      if (!edgeRow && x >= f && x < W - f) {
        x = W - f - 1; // skip the interior of the row
        continue;
      }
      for (let k = 0; k < C; k++) sum += data[(y * W + x) * C + k];
      count += C;
    }
  }
  return count === 0 ? 0 : sum / count;
}

/**
 * Makes a raster the model's input: alpha composited on the background colour, colour converted
 * (to grey by Rec. 601 luminance 0.299 R + 0.587 G + 0.114 B; grey to colour by repetition), resized
 * (area averaging down, bilinear up; the aspect ratio is not kept), then optionally inverted
 * (`invert: "auto"`: when the border of the resized image says its background is not the model's).
 * Writes into `out` (H*W*C floats) and returns what was done.
 */
export function toModelInput(
  r: Raster,
  model: ModelInput,
  opts: ImageOptions,
  out: Float32Array,
): Preprocessing {
  const pre: Preprocessing = {
    source: r.source,
    original: { height: r.height, width: r.width, colour: r.colour },
  };
  if (r.orientation !== undefined && r.orientation !== 1) pre.oriented = r.orientation;
  const n = r.height * r.width;
  let data = r.data;
  let cc: number = r.colourChannels;
  if (r.alpha) {
    const bg = opts.background === "white" ? 1 : 0;
    const alpha = r.alpha;
    data = Float32Array.from(data, (v, i) => {
      const a = alpha[Math.floor(i / cc)];
      return a * v + (1 - a) * bg;
    });
    pre.alpha_composited_on = opts.background ?? "black";
  }
  if (model.channels === 1 && cc === 3) {
    const g = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const R = data[i * 3];
      const G = data[i * 3 + 1];
      const B = data[i * 3 + 2];
      g[i] = R === G && G === B ? R : 0.299 * R + 0.587 * G + 0.114 * B;
    }
    data = g;
    cc = 1;
    pre.converted_from = r.colour;
  } else if (model.channels !== cc) {
    if (cc !== 1)
      throw new ImagingError("invalid-pixels", `cannot convert ${r.colour} to ${model.channels} channels`);
    const m = new Float32Array(n * model.channels);
    for (let i = 0; i < n; i++) m.fill(data[i], i * model.channels, (i + 1) * model.channels);
    data = m;
    cc = model.channels;
    pre.converted_from = r.colour;
  }
  if (r.height !== model.height || r.width !== model.width) {
    data = resize(data, r.height, r.width, cc, model.height, model.width);
    pre.resized_from = [r.height, r.width];
  }
  let invert = opts.invert === true;
  if (opts.invert === "auto") {
    const mean = borderMean(data, model.height, model.width, cc);
    const background = mean > 0.5 ? "light" : "dark";
    pre.invert_auto = { border_mean: Math.round(mean * 1000) / 1000, background };
    const want = model.background ?? "dark";
    invert = want !== "any" && background !== want;
  }
  if (invert) {
    for (let i = 0; i < data.length; i++) out[i] = 1 - data[i];
    pre.inverted = true;
  } else out.set(data);
  return pre;
}

/** Encodes model-space images ([H, W, C] floats in [0, 1], C = 1 or 3) as an 8-bit PNG. */
export function encodePng(data: Float32Array, h: number, w: number, c: number): Buffer {
  const png = new PNG({ width: w, height: h, colorType: c === 1 ? 0 : 2 });
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) {
      const v = data[i * c + (c === 1 ? 0 : k)];
      png.data[i * 4 + k] = Math.round(Math.min(1, Math.max(0, v)) * 255);
    }
    png.data[i * 4 + 3] = 255;
  }
  return PNG.sync.write(png, { colorType: c === 1 ? 0 : 2 });
}

/** Lays out n images [H, W, C] on a grid of `cols` columns (row-major), as one image. */
export function tile(images: Float32Array, n: number, H: number, W: number, C: number, cols: number) {
  const rows = Math.ceil(n / cols);
  const gh = rows * H;
  const gw = cols * W;
  const out = new Float32Array(gh * gw * C);
  for (let i = 0; i < n; i++) {
    const oy = Math.floor(i / cols) * H;
    const ox = (i % cols) * W;
    for (let y = 0; y < H; y++) {
      const src = images.subarray((i * H * W + y * W) * C, (i * H * W + (y + 1) * W) * C);
      out.set(src, ((oy + y) * gw + ox) * C);
    }
  }
  return { data: out, height: gh, width: gw };
}
