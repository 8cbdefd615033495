/**
 * Image headers: the format, size and colour of a PNG, JPEG, WebP or GIF, read from its first bytes
 * without decoding any pixels, so that an image over the limits is refused before it costs anything.
 */
import { ImagingError } from "./errors.js";

/** Images smaller than this on either side are rejected (image-too-small), never upscaled. */
export const MIN_IMAGE_SIDE = 8;

export type ImageFormat = "png" | "jpeg" | "webp" | "gif";

/** The formats decodeImage accepts, as named in the unsupported-image-type message. */
export const ACCEPTED_FORMATS = "PNG, JPEG, WebP or GIF";

export interface ImageHeader {
  format: ImageFormat;
  /** Width and height as stored (before the EXIF orientation is applied). */
  width: number;
  height: number;
  /**
   * PNG: grey, rgb, palette, grey+alpha, rgba; JPEG: grey, rgb, cmyk; WebP: rgb, rgba;
   * GIF: palette; "unknown" for a value the format does not define.
   */
  colour: string;
  /** Bits per sample (PNG: 1, 2, 4, 8 or 16; JPEG: 8 or 12; WebP, GIF: 8). */
  bitDepth: number;
  /**
   * EXIF Orientation (1-8; 1 when there is none or it is invalid) from a JPEG APP1 segment (before
   * the first scan), a PNG eXIf chunk (before IDAT) or a WebP EXIF chunk, where libvips reads it.
   * 5-8 swap width and height when applied.
   */
  orientation: number;
}

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const PNG_COLOUR: Record<number, string> = { 0: "grey", 2: "rgb", 3: "palette", 4: "grey+alpha", 6: "rgba" };
const JPEG_COLOUR: Record<number, string> = { 1: "grey", 3: "rgb", 4: "cmyk" };

function startsWith(b: Buffer, bytes: number[] | string, at = 0): boolean {
  const s = typeof bytes === "string" ? Array.from(bytes, (c) => c.charCodeAt(0)) : bytes;
  if (b.length < at + s.length) return false;
  for (let i = 0; i < s.length; i++) if (b[at + i] !== s[i]) return false;
  return true;
}

/**
 * The Orientation tag (0x0112) of IFD0 of a TIFF structure (EXIF payload), optionally preceded by
 * "Exif\0\0"; 1 when absent, malformed or outside 1-8.
 */
export function exifOrientation(b: Buffer, start: number, end: number): number {
  if (startsWith(b, "Exif\0\0", start)) start += 6;
  if (end > b.length || end - start < 8) return 1;
  const le = b[start] === 0x49 && b[start + 1] === 0x49;
  if (!le && !(b[start] === 0x4d && b[start + 1] === 0x4d)) return 1;
  const u16 = (o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  if (u16(start + 2) !== 42) return 1;
  const ifd = start + u32(start + 4);
  if (ifd + 2 > end) return 1;
  const n = u16(ifd);
  for (let k = 0; k < n; k++) {
    const e = ifd + 2 + 12 * k;
    if (e + 12 > end) return 1;
    if (u16(e) !== 0x0112) continue;
    // SHORT, count 1: the value sits in the first two bytes of the value field.
    const v = u16(e + 2) === 3 ? u16(e + 8) : 0;
    return v >= 1 && v <= 8 ? v : 1;
  }
  return 1;
}

function readPng(b: Buffer, what: string): ImageHeader {
  if (b.length < 26 || b.toString("latin1", 12, 16) !== "IHDR")
    throw new ImagingError("invalid-image", `${what}: truncated PNG (no IHDR header)`);
  let orientation = 1;
  // Ancillary chunks before the image data: only eXIf matters here (libvips ignores one after
  // IDAT). Walk the chunk lengths; no data is read.
  for (let p = 8; p + 8 <= b.length;) {
    const len = b.readUInt32BE(p);
    const type = b.toString("latin1", p + 4, p + 8);
    if (type === "eXIf") {
      orientation = exifOrientation(b, p + 8, p + 8 + len);
      break;
    }
    if (type === "IDAT" || type === "IEND") break;
    p += 12 + len;
  }
  return {
    format: "png",
    width: b.readUInt32BE(16),
    height: b.readUInt32BE(20),
    colour: PNG_COLOUR[b[25]] ?? "unknown",
    bitDepth: b[24],
    orientation,
  };
}

function readJpeg(b: Buffer, what: string): ImageHeader {
  let frame: Omit<ImageHeader, "orientation"> | undefined;
  let orientation = 1;
  let i = 2;
  // Segments up to the first scan (SOS): the frame header (SOFn) and an EXIF APP1 in any order.
  while (i + 3 < b.length) {
    if (b[i] !== 0xff) {
      if (frame) break;
      throw new ImagingError("invalid-image", `${what}: corrupt JPEG (bad marker at byte ${i})`);
    }
    const m = b[i + 1];
    if (m === 0xff) {
      i++;
      continue;
    }
    if ((m >= 0xd0 && m <= 0xd7) || m === 0x01) {
      i += 2;
      continue;
    }
    if (m === 0xda || m === 0xd9) break;
    const len = b.readUInt16BE(i + 2);
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc && !frame) {
      if (i + 9 >= b.length) break;
      frame = {
        format: "jpeg",
        bitDepth: b[i + 4],
        height: b.readUInt16BE(i + 5),
        width: b.readUInt16BE(i + 7),
        colour: JPEG_COLOUR[b[i + 9]] ?? "unknown",
      };
    } else if (m === 0xe1 && orientation === 1 && startsWith(b, "Exif\0\0", i + 4)) {
      orientation = exifOrientation(b, i + 4, Math.min(b.length, i + 2 + len));
    }
    i += 2 + len;
  }
  if (!frame) throw new ImagingError("invalid-image", `${what}: corrupt JPEG (no frame header)`);
  return { ...frame, orientation };
}

function readWebp(b: Buffer, what: string): ImageHeader {
  const bad = (why: string) => new ImagingError("invalid-image", `${what}: corrupt WebP (${why})`);
  if (b.length < 30) throw bad("truncated header");
  const chunk = b.toString("latin1", 12, 16);
  const d = 20; // the first chunk's data
  let width: number;
  let height: number;
  let colour = "rgb";
  let orientation = 1;
  if (chunk === "VP8 ") {
    // A key frame: 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height.
    if (!startsWith(b, [0x9d, 0x01, 0x2a], d + 3)) throw bad("no VP8 start code");
    width = b.readUInt16LE(d + 6) & 0x3fff;
    height = b.readUInt16LE(d + 8) & 0x3fff;
  } else if (chunk === "VP8L") {
    if (b[d] !== 0x2f) throw bad("no VP8L signature");
    const bits = b.readUInt32LE(d + 1);
    width = (bits & 0x3fff) + 1;
    height = ((bits >>> 14) & 0x3fff) + 1;
    if ((bits >>> 28) & 1) colour = "rgba";
  } else if (chunk === "VP8X") {
    const flags = b[d];
    width = b.readUIntLE(d + 4, 3) + 1;
    height = b.readUIntLE(d + 7, 3) + 1;
    if (flags & 0x10) colour = "rgba";
    if (flags & 0x08) {
      // The EXIF chunk usually follows the image data: walk the RIFF chunk sizes to it.
      for (let p = 12; p + 8 <= b.length;) {
        const len = b.readUInt32LE(p + 4);
        if (b.toString("latin1", p, p + 4) === "EXIF") {
          orientation = exifOrientation(b, p + 8, p + 8 + len);
          break;
        }
        p += 8 + len + (len & 1);
      }
    }
  } else throw bad(`unknown first chunk '${chunk.replace(/[^\x20-\x7e]/g, "?")}'`);
  return { format: "webp", width, height, colour, bitDepth: 8, orientation };
}

function readGif(b: Buffer, what: string): ImageHeader {
  if (b.length < 13) throw new ImagingError("invalid-image", `${what}: truncated GIF (no screen descriptor)`);
  return {
    format: "gif",
    width: b.readUInt16LE(6),
    height: b.readUInt16LE(8),
    colour: "palette",
    bitDepth: 8,
    orientation: 1,
  };
}

/**
 * Reads the format, size, colour and EXIF orientation of a PNG (IHDR), JPEG (SOFn), WebP (VP8,
 * VP8L or VP8X) or GIF (logical screen) from its header, without decoding any pixels.
 * Throws ImagingError: unsupported-image-type for other bytes, invalid-image for a cut-off header.
 */
export function readHeader(buf: Uint8Array, what: string): ImageHeader {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (startsWith(b, PNG_SIG)) return readPng(b, what);
  if (startsWith(b, [0xff, 0xd8, 0xff])) return readJpeg(b, what);
  if (startsWith(b, "RIFF") && startsWith(b, "WEBP", 8)) return readWebp(b, what);
  if (startsWith(b, "GIF87a") || startsWith(b, "GIF89a")) return readGif(b, what);
  throw new ImagingError("unsupported-image-type", `${what}: not a ${ACCEPTED_FORMATS} image`);
}

/**
 * Admission of a w x h image: zero size is invalid-image, over `maxPixels` (w * h) image-too-large,
 * a side under MIN_IMAGE_SIDE image-too-small. Both sides are checked against the minimum, so the
 * answer is the same before and after an EXIF rotation (which swaps them); callers pass the stored size.
 */
export function checkSize(h: number, w: number, maxPixels: number, what: string): void {
  if (h === 0 || w === 0) throw new ImagingError("invalid-image", `${what}: image of size ${w}x${h}`);
  if (h * w > maxPixels)
    throw new ImagingError(
      "image-too-large",
      `${what}: ${w}x${h} = ${h * w} pixels is over the limit of ${maxPixels}`,
    );
  if (h < MIN_IMAGE_SIDE || w < MIN_IMAGE_SIDE)
    throw new ImagingError(
      "image-too-small",
      `${what}: ${w}x${h} is below the minimum of ${MIN_IMAGE_SIDE}x${MIN_IMAGE_SIDE} pixels (not upscaled)`,
    );
}
