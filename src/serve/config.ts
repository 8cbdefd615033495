import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (this file is dist/src/serve/config.js once compiled). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** The shipped default model. */
export const DEFAULT_MODEL_DIR = resolve(PACKAGE_ROOT, "models", "mnist");
/** The API's source of truth, served at GET /openapi.yaml. */
export const OPENAPI_PATH = resolve(PACKAGE_ROOT, "openapi.yaml");

/** Images smaller than this on either side are rejected (422 image-too-small), never upscaled. */
export const MIN_IMAGE_SIDE = 8;

export interface Limits {
  /** Largest request body (JSON) or uploaded file (multipart), in bytes. */
  maxBodyBytes: number;
  /** Images per request (uploaded or in JSON), and images a /generate request may produce. */
  maxImages: number;
  /** Decoded width x height per image, checked from the PNG/JPEG header before decoding. */
  maxPixels: number;
  /** Requests admitted at once (waiting for or running inference); one more gets 429. */
  maxConcurrent: number;
  /** Milliseconds before a request is answered 503 timeout. */
  timeoutMs: number;
}

/** One limit: its flag, environment variable twin, default and description (for --help and docs). */
export const LIMIT_FLAGS: Array<{
  key: keyof Limits;
  flag: string;
  env: string;
  dflt: number;
  help: string;
}> = [
  {
    key: "maxBodyBytes",
    flag: "max-body-bytes",
    env: "EQUIVAE_MAX_BODY_BYTES",
    dflt: 8 * 1024 * 1024,
    help: "largest JSON body or uploaded file, bytes",
  },
  {
    key: "maxImages",
    flag: "max-images",
    env: "EQUIVAE_MAX_IMAGES",
    dflt: 64,
    help: "images per request (in or generated)",
  },
  {
    key: "maxPixels",
    flag: "max-pixels",
    env: "EQUIVAE_MAX_PIXELS",
    dflt: 4_000_000,
    help: "width*height per image (read from the header)",
  },
  {
    key: "maxConcurrent",
    flag: "max-concurrent",
    env: "EQUIVAE_MAX_CONCURRENT",
    dflt: 64,
    help: "requests in flight at once; more get 429",
  },
  {
    key: "timeoutMs",
    flag: "timeout-ms",
    env: "EQUIVAE_TIMEOUT_MS",
    dflt: 30_000,
    help: "request timeout in milliseconds (503 timeout)",
  },
];

export const DEFAULT_LIMITS: Limits = Object.fromEntries(
  LIMIT_FLAGS.map((l) => [l.key, l.dflt]),
) as unknown as Limits;

export interface ServeOptions {
  limits?: Partial<Limits>;
  /** Engine calls running at once; waiting invariant-embedding work is coalesced into one call. */
  engineConcurrency?: number;
  /** Most images in one coalesced engine call. */
  maxBatchImages?: number;
  /** Run the warm-up classify at creation (default true); /readyz is 503 until it succeeded. */
  warmUp?: boolean;
  /** Model id shown by /v1/models (default: the dataset name). */
  modelId?: string;
  /** Where the model was loaded from (shown by /v1/models). */
  modelDir?: string;
  /** Error log for unexpected failures (default console.error). */
  log?: (msg: string) => void;
}
