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
    when: "an image cannot be decoded (corrupt or truncated PNG/JPEG, zero size)",
  },
  "not-found": { status: 404, title: "Not found", when: "no such route" },
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
    when: "width x height over the pixels-per-image limit (checked from the PNG/JPEG header, before decoding)",
  },
  "unsupported-media-type": {
    status: 415,
    title: "Unsupported media type",
    when: "the body is neither application/json nor multipart/form-data",
  },
  "unsupported-image-type": {
    status: 415,
    title: "Unsupported image type",
    when: "an image is neither PNG nor JPEG (by its magic bytes)",
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
  "too-many-requests": {
    status: 429,
    title: "Too many requests",
    when: "the concurrent-request limit is reached (retry after the Retry-After seconds)",
  },
  "not-ready": {
    status: 503,
    title: "Not ready",
    when: "the model has not finished its start-up warm-up inference",
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
