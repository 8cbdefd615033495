/**
 * Decoding PNG, JPEG, WebP and GIF images with sharp (libvips), after the header has been checked
 * against the limits, so that nothing is decoded for an image that is refused.
 *
 * - Corrupt or truncated data is an error, every time (failOn "error": libpng / libjpeg errors
 *   abort the decode, a cut-off file never yields uninitialised or grey-filled pixels).
 * - The EXIF orientation is applied (a photo taken sideways comes out upright).
 * - Output is 8 bits per sample (16-bit PNGs are reduced); ICC profiles are converted to sRGB;
 *   grey images stay one channel, alpha is kept when present; an animated GIF/WebP gives its first frame.
 * - Small plain 8-bit PNGs (up to 128x128, no colour chunks) take a pure-JS fast path (png-fast.ts)
 *   that gives the same pixels as libvips; anything it does not take, damaged files included, goes
 *   to sharp, so errors are the same whichever path.
 *
 * libvips is set up once, at module load, for a server that runs decodes on its own worker threads:
 * no operation cache (memory is returned after a burst) and one libvips thread per image.
 */
import type { OutputInfo, Sharp, SharpOptions } from "sharp";
import { fromInterleaved, type Raster } from "./convert.js";
import { ImagingError } from "./errors.js";
import { checkSize, readHeader } from "./header.js";
import { decodePlainPng } from "./png-fast.js";

type SharpFn = ((input: Uint8Array, options?: SharpOptions) => Sharp) & {
  cache(o: boolean): unknown;
  concurrency(n: number): number;
};
let sharpLoaded: Promise<SharpFn> | undefined;

/**
 * Loads sharp (libvips) on first use: a process that never decodes with it (embedding an IDX file,
 * an inference worker) skips its ~20 MB and start-up. Call it on the main thread before starting
 * threads that decode: on glibc Linux, sharp must be loaded by the main thread first.
 */
export function loadDecoder(): Promise<SharpFn> {
  return (sharpLoaded ??= import("sharp").then((m) => {
    const sharp = m.default as unknown as SharpFn;
    sharp.cache(false);
    sharp.concurrency(1);
    return sharp;
  }));
}

export interface DecodeOptions {
  /** Largest width x height accepted (checked from the header before decoding). */
  maxPixels: number;
  /** Names the image in error messages ("images[2]", a file path). */
  what: string;
  /** Take the pure-JS path for small plain PNGs (default true; false: always sharp). */
  fastPath?: boolean;
}

export interface ImagingStats {
  /** Images handed to a decoder (sharp or the PNG fast path), successfully or not. */
  decoded: number;
  /** Of those, decoded by the PNG fast path. */
  fastPath: number;
  /** Images refused from their header (type, size): nothing decoded. */
  refusedBeforeDecode: number;
  /** Decodes that failed (invalid-image). */
  failed: number;
}

const stats: ImagingStats = { decoded: 0, fastPath: 0, refusedBeforeDecode: 0, failed: 0 };

/** Counters since this module was loaded (per thread). */
export function imagingStats(): ImagingStats {
  return { ...stats };
}

/**
 * Decodes a PNG, JPEG, WebP or GIF to a Raster (floats in [0, 1]) after checking its header against
 * the limits. Throws ImagingError: unsupported-image-type, image-too-large, image-too-small from the
 * header (nothing decoded), invalid-image for a bad header or any decoding failure.
 */
export async function decodeImage(buf: Uint8Array, opts: DecodeOptions): Promise<Raster> {
  const { maxPixels, what } = opts;
  let hdr;
  try {
    hdr = readHeader(buf, what);
    checkSize(hdr.height, hdr.width, maxPixels, what);
  } catch (e) {
    stats.refusedBeforeDecode++;
    throw e;
  }
  stats.decoded++;
  const grey = hdr.colour === "grey" || hdr.colour === "grey+alpha";
  if (hdr.format === "png" && opts.fastPath !== false) {
    const fast = decodePlainPng(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
    if (fast) {
      stats.fastPath++;
      return fromInterleaved(fast.data, fast.height, fast.width, fast.channels, grey, hdr.colour, "png");
    }
  }
  const name = hdr.format.toUpperCase().replace("WEBP", "WebP");
  let out: { data: Buffer; info: OutputInfo };
  const sharp = await loadDecoder();
  try {
    out = await sharp(buf, {
      limitInputPixels: Math.max(1, Math.min(Math.floor(maxPixels), Number.MAX_SAFE_INTEGER)),
      failOn: "error",
      sequentialRead: true,
      animated: false,
    })
      .rotate()
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
  } catch {
    stats.failed++;
    // libvips' message is not stable (its error buffer is shared and accumulates across calls:
    // "libpng read error", the same twice, "Unknown error" for one file), so the answer names the
    // failure without it: the same bytes always give the same answer.
    throw new ImagingError("invalid-image", `${what}: cannot decode ${name}: corrupt or truncated data`);
  }
  const { data, info } = out;
  // The EXIF orientation (read from the header, applied by libvips) swaps the sides when 5-8.
  const upright = info.width === hdr.width && info.height === hdr.height;
  const turned = info.width === hdr.height && info.height === hdr.width;
  if ((!upright && !turned) || data.length !== info.width * info.height * info.channels) {
    stats.failed++;
    throw new ImagingError(
      "invalid-image",
      `${what}: header and data sizes differ (${hdr.width}x${hdr.height} vs ${info.width}x${info.height})`,
    );
  }
  const { width: w, height: h } = info;
  const raster = fromInterleaved(data, h, w, info.channels as 1 | 2 | 3 | 4, grey, hdr.colour, hdr.format);
  // Reported only when what was done agrees with it (a square image cannot tell).
  if (hdr.orientation !== 1 && (hdr.orientation >= 5 ? turned : upright))
    raster.orientation = hdr.orientation;
  return raster;
}
