/**
 * Decoding the encoded images of one request into one model batch ([n, H, W, C] float32 in
 * [0, 1]), and the interface the server decodes through: inline (this thread; tests and tools) or
 * on the inference worker threads (src/inference/workers), which call decodeBatch themselves.
 */
import { toModelInput, type ImageOptions, type ModelInput, type Preprocessing } from "./convert.js";
import { decodeImage } from "./decode.js";
import { ImagingError, type ImagingErrorKind } from "./errors.js";

/** One encoded image of a request, and how to name it in errors ("image[0] (a.png)"). */
export interface EncodedImage {
  bytes: Uint8Array;
  what: string;
}

export interface DecodeRequest {
  images: EncodedImage[];
  model: ModelInput;
  options: ImageOptions;
  /** Per-image width x height limit (also checked from the header before any decoding). */
  maxPixels: number;
  /** The images' width x height added up, from their headers, when the caller has read them. */
  pixels?: number;
}

export interface DecodedBatch {
  x: Float32Array;
  pre: Preprocessing[];
}

/** Decodes a request's images on some thread; rejects with an ImagingError for the first bad image. */
export interface ImageDecoder {
  decode(req: DecodeRequest): Promise<DecodedBatch>;
}

/** Decodes every image of a request, in order, into one batch. */
export async function decodeBatch(req: DecodeRequest): Promise<DecodedBatch> {
  const { model } = req;
  const px = model.height * model.width * model.channels;
  const x = new Float32Array(req.images.length * px);
  const pre: Preprocessing[] = [];
  for (let i = 0; i < req.images.length; i++) {
    const { bytes, what } = req.images[i];
    const raster = await decodeImage(bytes, { maxPixels: req.maxPixels, what });
    pre.push(toModelInput(raster, model, req.options, x.subarray(i * px, (i + 1) * px)));
  }
  return { x, pre };
}

/** Decoding on this thread (sharp itself runs on libuv's pool; the conversion runs here). */
export const inlineDecoder: ImageDecoder = { decode: decodeBatch };

/** An ImagingError as plain data, to cross a worker boundary (structured clone drops the class). */
export interface ImagingFailure {
  kind: ImagingErrorKind;
  message: string;
}

export function toFailure(e: unknown): ImagingFailure | undefined {
  return e instanceof ImagingError ? { kind: e.kind, message: e.message } : undefined;
}

export function fromFailure(f: ImagingFailure): ImagingError {
  return new ImagingError(f.kind, f.message);
}
