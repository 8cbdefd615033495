/**
 * From a parsed body to a typed request: the schema-validated fields, and the request's images
 * checked by cost from their headers alone (per image and per request, before a byte is inflated),
 * then decoded into one model batch [n, H, W, C] on the decoder's threads.
 */
import {
  checkSize,
  decodeBase64,
  fromPixels,
  readHeader,
  toModelInput,
  type EncodedImage,
  type ImageDecoder,
  type ImageOptions,
  type ModelInput,
  type Preprocessing,
} from "../imaging/index.js";
import { findNonFinite, type ParsedBody } from "./body.js";
import type { Limits } from "./config.js";
import { ApiError } from "./errors.js";
import { deref, type Spec } from "./spec.js";

type Body = Record<string, any>;

/** A validated request: its fields, its encoded images (checked from their headers) and raw pixel arrays. */
export interface RequestInputs {
  body: Body;
  encoded: EncodedImage[];
  pixelArrays: unknown[];
  /** Images in the request. */
  count: number;
  /** width x height of all its images, from their headers: what decoding it will cost. */
  pixels: number;
  options: ImageOptions;
}

/** Coerces multipart text fields by the JSON request schema's property types. */
function coerceFields(spec: Spec, operationId: string, fields: Record<string, string>): Body {
  const schema = spec.requestSchema(operationId);
  const out: Body = {};
  for (const [k, value] of Object.entries(fields)) {
    const prop = deref(spec.doc, schema?.properties?.[k]);
    if (prop?.type === "string") {
      out[k] = value;
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      out[k] = value;
      continue;
    }
    findNonFinite(parsed, k);
    out[k] = parsed;
  }
  return out;
}

/** Pixel count of a raw pixel array ([h][w](...) nested, or flat: the model's size). */
function pixelArraySize(p: unknown, model: ModelInput): number {
  if (!Array.isArray(p)) return 0;
  if (!Array.isArray(p[0])) return model.height * model.width;
  return p.length * (p[0] as unknown[]).length;
}

/** Validates the body and checks every image's declared size; nothing is decoded. */
export function prepareInputs(
  parsed: ParsedBody,
  operationId: string,
  spec: Spec,
  model: ModelInput,
  limits: Limits,
): RequestInputs {
  const body =
    parsed.kind === "multipart"
      ? coerceFields(spec, operationId, parsed.value as Record<string, string>)
      : (parsed.value as Body);
  if (body === null || typeof body !== "object" || Array.isArray(body))
    throw new ApiError("validation-failed", "the body must be a JSON object");
  spec.validate(operationId, body);
  const encoded: EncodedImage[] = [
    ...parsed.files.map((f, k) => ({ bytes: f.bytes, what: `image[${k}] (${f.filename})` })),
    ...((body.images ?? []) as string[]).map((s, k) => ({
      bytes: decodeBase64(s, `images[${k}]`),
      what: `images[${k}]`,
    })),
  ];
  const pixelArrays: unknown[] = body.pixels ?? [];
  const count = encoded.length + pixelArrays.length;
  if (count > limits.maxImages)
    throw new ApiError("too-many-images", `${count} images; the limit is ${limits.maxImages} per request`);
  let pixels = 0;
  for (const im of encoded) {
    const h = readHeader(im.bytes, im.what);
    checkSize(h.height, h.width, limits.maxPixels, im.what);
    pixels += h.width * h.height;
  }
  for (const p of pixelArrays) pixels += pixelArraySize(p, model);
  if (pixels > limits.maxRequestPixels)
    throw new ApiError(
      "too-many-pixels",
      `the request's images add up to ${pixels} pixels; the limit is ${limits.maxRequestPixels} per request`,
    );
  const options: ImageOptions = {
    invert: body.invert,
    background: body.background,
    pixelsRange: body.pixels_range,
  };
  return { body, encoded, pixelArrays, count, pixels, options };
}

/** Decodes the request's images (encoded ones on the decoder's threads) into one [n, H, W, C] batch. */
export async function decodeInputs(
  inputs: RequestInputs,
  decoder: ImageDecoder,
  model: ModelInput,
  limits: Limits,
): Promise<{ x: Float32Array; n: number; pre: Preprocessing[] }> {
  const px = model.height * model.width * model.channels;
  const n = inputs.count;
  const x = new Float32Array(n * px);
  const pre: Preprocessing[] = [];
  if (inputs.encoded.length > 0) {
    const d = await decoder.decode({
      images: inputs.encoded,
      model,
      options: inputs.options,
      maxPixels: limits.maxPixels,
      pixels: inputs.pixels,
    });
    x.set(d.x);
    pre.push(...d.pre);
  }
  inputs.pixelArrays.forEach((a, k) => {
    const i = inputs.encoded.length + k;
    const raster = fromPixels(a, model, inputs.options, limits.maxPixels, `pixels[${k}]`);
    pre.push(toModelInput(raster, model, inputs.options, x.subarray(i * px, (i + 1) * px)));
  });
  return { x, n, pre };
}
