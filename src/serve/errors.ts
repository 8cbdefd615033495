/**
 * The one table of the service's errors: every error kind, its HTTP status and title. Responses are
 * RFC 9457 problem details (application/problem+json); `type` is a link to the kind's row in the
 * docs page. openapi.yaml repeats this table under `x-problem-types` (a test keeps them equal).
 */
export const ERROR_TABLE = {
  "malformed-request": {
    status: 400,
    title: "Malformed request",
    when: "the body is not valid JSON or multipart",
  },
  "validation-failed": {
    status: 400,
    title: "Request does not match the API schema",
    when: "a field is missing, unknown, of the wrong type or out of range (`errors` lists each problem)",
  },
  "invalid-base64": {
    status: 400,
    title: "Invalid base64",
    when: "an `images` entry is not base64 or a base64 data URI",
  },
  "invalid-image": {
    status: 400,
    title: "Invalid image",
    when: "an image cannot be decoded (corrupt or truncated, zero size); the same bytes always give the same answer",
  },
  "bad-encoding": {
    status: 400,
    title: "Bad content encoding",
    when: "the body does not decode with its `Content-Encoding` (say gzip, but not gzip data)",
  },
  unauthorized: {
    status: 401,
    title: "Unauthorized",
    when: "API keys are configured and the request has no `Authorization: Bearer <key>`, or a key that is not valid (see `WWW-Authenticate`)",
  },
  "cors-refused": {
    status: 403,
    title: "CORS preflight refused",
    when: "a browser's preflight (OPTIONS) from an origin that `--cors-origin` does not allow",
  },
  "not-found": { status: 404, title: "Not found", when: "no such route" },
  "unknown-model": {
    status: 404,
    title: "Unknown model",
    when: "a model id that the server does not have (GET /v1/models lists them)",
  },
  "body-timeout": {
    status: 408,
    title: "Body timeout",
    when: "the request body did not arrive in full within the body-read timeout",
  },
  "payload-too-large": {
    status: 413,
    title: "Payload too large",
    when: "the body or one uploaded file is larger than the body-size limit",
  },
  "too-many-images": {
    status: 413,
    title: "Too many images",
    when: "more images (or generated images) in one request than the images-per-request limit",
  },
  "image-too-large": {
    status: 413,
    title: "Image too large",
    when: "width x height over the pixels-per-image limit (read from the image header, before decoding)",
  },
  "too-many-pixels": {
    status: 413,
    title: "Too many pixels",
    when: "the images of one request add up to more pixels than the per-request pixel budget (read from the headers, before decoding)",
  },
  "unsupported-media-type": {
    status: 415,
    title: "Unsupported media type",
    when: "the body is neither application/json nor multipart/form-data",
  },
  "unsupported-encoding": {
    status: 415,
    title: "Unsupported content encoding",
    when: "a `Content-Encoding` other than identity, gzip, deflate or br",
  },
  "unsupported-image-type": {
    status: 415,
    title: "Unsupported image type",
    when: "an image is not PNG, JPEG, WebP or GIF (by its magic bytes)",
  },
  "image-too-small": {
    status: 422,
    title: "Image too small",
    when: "an image side is below the minimum (8 pixels); such images are rejected, not upscaled",
  },
  "invalid-pixels": {
    status: 422,
    title: "Invalid pixel array",
    when: "a pixel array has the wrong length or shape, is ragged, or has values outside its range",
  },
  "non-finite-number": {
    status: 422,
    title: "Non-finite number",
    when: "a number in the request is too large for a float64 (1e309 would be Infinity)",
  },
  "unknown-class": {
    status: 422,
    title: "Unknown class",
    when: "a class label or name that the model does not have (or a class without a centroid)",
  },
  "invalid-dimensions": {
    status: 422,
    title: "Wrong vector length",
    when: "a v or z vector whose length is not the model's dv or dz, or inconsistent counts",
  },
  "method-unavailable": {
    status: 422,
    title: "Classification method unavailable",
    when: "`method: posterior` on a model without q(y|x) (a supervised checkpoint)",
  },
  "model-load-failed": {
    status: 422,
    title: "Model load failed",
    when: "POST /v1/models/{id}/load: the model's version cannot be loaded (the previous version keeps serving)",
  },
  "too-many-requests": {
    status: 429,
    title: "Too many requests",
    when: "the concurrent-request limit or the in-flight pixel budget is reached (retry after the Retry-After seconds)",
  },
  "not-ready": {
    status: 503,
    title: "Not ready",
    when: "the model has not finished loading and its warm-up inference (or it failed, or was unloaded)",
  },
  timeout: {
    status: 503,
    title: "Request timed out",
    when: "the request took longer than the request timeout",
  },
  "shutting-down": { status: 503, title: "Shutting down", when: "the server is draining before exit" },
  internal: {
    status: 500,
    title: "Internal error",
    when: "an unexpected failure (logged; never a stack trace)",
  },
} as const satisfies Record<string, { status: number; title: string; when: string }>;

export type ErrorKind = keyof typeof ERROR_TABLE;

/** Base of problem `type` URIs: the docs page's error table has one anchor per kind. */
export const PROBLEM_TYPE_BASE = "/docs#problem-";

/** An error meant for the client: its kind fixes the status and title (see ERROR_TABLE). */
export class ApiError extends Error {
  constructor(
    readonly kind: ErrorKind,
    detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = "ApiError";
  }

  get status(): number {
    return ERROR_TABLE[this.kind].status;
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  [k: string]: unknown;
}

export function problem(
  kind: ErrorKind,
  detail: string,
  instance: string,
  extra: Record<string, unknown> = {},
): Problem {
  const row = ERROR_TABLE[kind];
  return { type: PROBLEM_TYPE_BASE + kind, title: row.title, status: row.status, detail, instance, ...extra };
}
