/**
 * PNG / JPEG / WebP / GIF decoding to the model's input for the batch embedder: [H, W, C] float32
 * in [0, 1].
 *
 * It is the HTTP service's codec (src/imaging), so the embedder and the server turn the same file
 * into the same pixels: EXIF orientation applied, transparent pixels composited on black (the MNIST
 * background), colour to grey by Rec. 601 luminance, resized to H x W (area averaging down, bilinear up).
 * Here a bad image is not a request error but a DecodeError: the embedder skips and reports it.
 */
import {
  ImagingError,
  decodeImage as decodeRaster,
  fromRgba,
  toModelInput,
  type ModelInput,
} from "../imaging/index.js";

export type ModelShape = ModelInput;

/** Largest decoded image accepted (width x height, read from the header before decoding). */
export const MAX_DECODED_PIXELS = 40_000_000;

/** An image that cannot be used; the embedder skips it and reports the message. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

const WHAT = "image";

function toDecodeError(e: unknown): unknown {
  return e instanceof ImagingError ? new DecodeError(e.message.replace(`${WHAT}: `, "")) : e;
}

function asDecodeError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw toDecodeError(e);
  }
}

function outFor(model: ModelShape, out?: Float32Array): Float32Array {
  return out ?? new Float32Array(model.height * model.width * model.channels);
}

/**
 * Decodes a PNG, JPEG, WebP or GIF into the model's input layout; writes H*W*C floats into `out`
 * (or a new array). Rejects with DecodeError for anything that is not a readable image of a usable size.
 */
export async function decodeImage(
  buf: Uint8Array,
  model: ModelShape,
  out?: Float32Array,
): Promise<Float32Array> {
  const o = outFor(model, out);
  try {
    toModelInput(await decodeRaster(buf, { maxPixels: MAX_DECODED_PIXELS, what: WHAT }), model, {}, o);
  } catch (e) {
    throw toDecodeError(e);
  }
  return o;
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
  const o = outFor(model, out);
  asDecodeError(() => toModelInput(fromRgba(rgba, h, w, grey ? "grey" : "rgb", "pixels"), model, {}, o));
  return o;
}
