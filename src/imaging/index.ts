/**
 * The imaging room: image headers and admission limits, decoding (sharp / libvips), conversion to a
 * model's input, PNG encoding. Used by the server, the batch embedder and the image-folder loader, so
 * the same file becomes the same pixels everywhere. Depends on nothing of the server or the model.
 */
export { ImagingError, type ImagingErrorKind } from "./errors.js";
export {
  ACCEPTED_FORMATS,
  MIN_IMAGE_SIDE,
  checkSize,
  exifOrientation,
  readHeader,
  type ImageFormat,
  type ImageHeader,
} from "./header.js";
export { decodeImage, imagingStats, loadDecoder, type DecodeOptions, type ImagingStats } from "./decode.js";
export { FAST_PNG_MAX_PIXELS, decodePlainPng } from "./png-fast.js";
export {
  borderMean,
  decodeBase64,
  encodePng,
  fromInterleaved,
  fromPixels,
  fromRgba,
  resize,
  tile,
  toModelInput,
  type ImageOptions,
  type ModelInput,
  type Preprocessing,
  type Raster,
} from "./convert.js";
export {
  decodeBatch,
  fromFailure,
  inlineDecoder,
  toFailure,
  type DecodeRequest,
  type DecodedBatch,
  type EncodedImage,
  type ImageDecoder,
  type ImagingFailure,
} from "./batch.js";
