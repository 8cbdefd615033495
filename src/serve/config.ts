import { resolve } from "node:path";
import { MIN_IMAGE_SIDE } from "../imaging/index.js";
import { DEFAULT_MODEL_DIR, ENGINES, PACKAGE_ROOT } from "../util/defaults.js";
import type { FlagSpec } from "../util/flags.js";
import { parseDevice } from "../inference/device.js";
import type { MetricsAuth } from "./auth.js";
import { logFormat, logLevel } from "./request-log.js";

export { DEFAULT_MODEL_DIR };
/** The API's source of truth, served at GET /openapi.yaml. */
export const OPENAPI_PATH = resolve(PACKAGE_ROOT, "openapi.yaml");
/** The demo page's static files (served at GET / and /demo/...; copied into the image as they are). */
export const DEMO_DIR = resolve(PACKAGE_ROOT, "src", "serve", "demo");

/** Images smaller than this on either side are rejected (422 image-too-small), never upscaled. */
export { MIN_IMAGE_SIDE };

/**
 * Node flags the server runs with (`npm start`, the Dockerfile, the benchmarks and tests that start
 * it): a 64 MB young generation, so garbage collection runs less often; with the default 16 MB its
 * ~3 ms pauses were the p99 at one connection (2.7-3.2 ms against 1.2-1.55 ms).
 */
export const SERVE_NODE_FLAGS = ["--max-semi-space-size=64"];

export interface Limits {
  /** Largest request body in bytes, also after decompression, whatever the transfer encoding. */
  maxBodyBytes: number;
  /** Images per request (uploaded or in JSON), and images a /generate request may produce. */
  maxImages: number;
  /** Decoded width x height per image, checked from the image header before decoding. */
  maxPixels: number;
  /** Decoded width x height of all images of one request, from their headers, before decoding. */
  maxRequestPixels: number;
  /** Pixels of admitted requests not yet answered, across requests; one more gets 429. */
  maxInflightPixels: number;
  /** Requests admitted at once (decoding, waiting for or running inference); one more gets 429. */
  maxConcurrent: number;
  /** Milliseconds for the whole body to arrive (408 after it); no concurrency slot is held meanwhile. */
  bodyTimeoutMs: number;
  /** Milliseconds from admission to the answer (503 timeout after it). */
  timeoutMs: number;
}

/** --metrics-auth: open, or key (/metrics needs an API key too). */
export const METRICS_AUTH_MODES = ["open", "key"] as const satisfies readonly MetricsAuth[];

/** A flag of `serve`: every one has an environment twin (for containers). */
export type ServeFlag = FlagSpec & { env: string };

type LimitFlag = ServeFlag & { key: keyof Limits; dflt: number; kind: "int" };

const MiB = 1024 * 1024;

export const LIMIT_FLAGS = [
  {
    key: "maxBodyBytes",
    flag: "max-body-bytes",
    env: "EQUIVAE_MAX_BODY_BYTES",
    dflt: 8 * MiB,
    kind: "int",
    help: "largest request body in bytes, also after decompression and when chunked",
  },
  {
    key: "maxImages",
    flag: "max-images",
    env: "EQUIVAE_MAX_IMAGES",
    dflt: 64,
    kind: "int",
    help: "images per request (in or generated)",
  },
  {
    key: "maxPixels",
    flag: "max-pixels",
    env: "EQUIVAE_MAX_PIXELS",
    dflt: 4_000_000,
    kind: "int",
    help: "width*height per image (read from the header, before decoding)",
  },
  {
    key: "maxRequestPixels",
    flag: "max-request-pixels",
    env: "EQUIVAE_MAX_REQUEST_PIXELS",
    dflt: 16_000_000,
    kind: "int",
    help: "width*height of all images of one request (from the headers, before decoding)",
  },
  {
    key: "maxInflightPixels",
    flag: "max-inflight-pixels",
    env: "EQUIVAE_MAX_INFLIGHT_PIXELS",
    dflt: 16_000_000,
    kind: "int",
    help: "pixels of all admitted requests at once (memory: see README); more get 429",
  },
  {
    key: "maxConcurrent",
    flag: "max-concurrent",
    env: "EQUIVAE_MAX_CONCURRENT",
    dflt: 64,
    kind: "int",
    help: "requests admitted at once (after their body arrived); more get 429",
  },
  {
    key: "bodyTimeoutMs",
    flag: "body-timeout-ms",
    env: "EQUIVAE_BODY_TIMEOUT_MS",
    dflt: 10_000,
    kind: "int",
    help: "time for the whole body to arrive, ms (408 after it)",
  },
  {
    key: "timeoutMs",
    flag: "timeout-ms",
    env: "EQUIVAE_TIMEOUT_MS",
    dflt: 30_000,
    kind: "int",
    help: "time from admission to the answer, ms (503 timeout after it)",
  },
] as const satisfies readonly LimitFlag[];

export const DEFAULT_LIMITS: Limits = Object.fromEntries(
  LIMIT_FLAGS.map((l) => [l.key, l.dflt]),
) as unknown as Limits;

/**
 * Every flag of `serve`, in --help order: the one source of its parsing (src/serve/command.ts),
 * `--help`, the README's flag table and /docs' limits.
 */
export const SERVE_FLAGS = [
  {
    flag: "model-dir",
    env: "EQUIVAE_MODEL_DIR",
    kind: "string",
    arg: "DIR",
    dfltText: "the shipped models/mnist",
    help: "one checkpoint to serve (its id: the folder name)",
  },
  {
    flag: "model-repository",
    env: "EQUIVAE_MODEL_REPOSITORY",
    kind: "string",
    arg: "DIR",
    dfltText: "none",
    help: "serve every model of DIR: DIR/<id>/ a checkpoint, or DIR/<id>/<n>/ numbered versions",
  },
  {
    flag: "default-model",
    env: "EQUIVAE_DEFAULT_MODEL",
    kind: "string",
    arg: "ID",
    dfltText: "the only or first model",
    help: "model id the unprefixed routes serve",
  },
  {
    flag: "poll-secs",
    env: "EQUIVAE_POLL_SECS",
    dflt: 0,
    kind: "int",
    min: 0,
    help: "look for new or changed models every N s (0: only on SIGHUP or POST .../load)",
  },
  { flag: "port", env: "PORT", dflt: 8080, kind: "int", min: 0, help: "port" },
  { flag: "host", env: "HOST", dflt: "0.0.0.0", kind: "string", arg: "HOST", help: "address to bind" },
  {
    flag: "admin-port",
    env: "EQUIVAE_ADMIN_PORT",
    kind: "int",
    min: 0,
    dfltText: "none",
    help: "also serve /healthz, /readyz and /metrics on this port",
  },
  {
    flag: "engine",
    env: "EQUIVAE_ENGINE",
    dflt: "auto",
    kind: "enum",
    choices: ENGINES,
    arg: "NAME",
    help: "auto, onnx or tfjs",
  },
  {
    flag: "workers",
    env: "EQUIVAE_WORKERS",
    kind: "int",
    dfltText: "the cores",
    help: "inference and decoding worker threads (onnx engine)",
  },
  {
    flag: "threads",
    env: "EQUIVAE_THREADS",
    dflt: 1,
    kind: "int",
    help: "ONNX Runtime intra-op threads per worker (no spin-waiting)",
  },
  {
    flag: "device",
    env: "EQUIVAE_DEVICE",
    dflt: "cpu",
    kind: "string",
    parse: parseDevice,
    arg: "DEVICE",
    help: "cpu, or cuda: ONNX Runtime's CUDA execution provider (onnx engine; README: GPU)",
  },
  {
    flag: "max-batch-size",
    env: "EQUIVAE_MAX_BATCH_SIZE",
    dflt: 64,
    kind: "int",
    help: "most images in one coalesced inference call",
  },
  {
    flag: "max-batch-delay-us",
    env: "EQUIVAE_MAX_BATCH_DELAY_US",
    dflt: 0,
    kind: "int",
    min: 0,
    help: "longest wait for a batch to fill, microseconds",
  },
  ...LIMIT_FLAGS,
  {
    flag: "drain-secs",
    env: "EQUIVAE_DRAIN_SECS",
    dflt: 5,
    kind: "int",
    min: 0,
    help: "on SIGTERM, seconds /readyz answers 503 while requests are still served",
  },
  {
    flag: "api-key-file",
    env: "EQUIVAE_API_KEY_FILE",
    kind: "string",
    arg: "FILE",
    dfltText: "none",
    help: "API keys, one a line (# comments), re-read on SIGHUP; more in $EQUIVAE_API_KEYS (comma-separated); no key at all: every route is open",
  },
  {
    flag: "metrics-auth",
    env: "EQUIVAE_METRICS_AUTH",
    kind: "enum",
    choices: METRICS_AUTH_MODES,
    arg: "MODE",
    dflt: "open",
    help: "open, or key: /metrics needs an API key too (when there are keys)",
  },
  {
    flag: "cors-origin",
    env: "EQUIVAE_CORS_ORIGINS",
    kind: "list",
    arg: "ORIGIN",
    dfltText: "none",
    help: "origin browsers may call from (https://app.example.com, or *); repeatable, comma-separated in the env; none: no CORS headers",
  },
  {
    flag: "log-level",
    env: "EQUIVAE_LOG_LEVEL",
    kind: "string",
    parse: logLevel,
    arg: "LEVEL",
    dflt: "info",
    help: "fatal, error, warn, info (a line per request), debug or silent",
  },
  {
    flag: "log-format",
    env: "EQUIVAE_LOG_FORMAT",
    kind: "string",
    parse: logFormat,
    arg: "FORMAT",
    dflt: "json",
    help: "json (one JSON line per event, on stdout) or pretty",
  },
] as const satisfies readonly ServeFlag[];

export interface ServeOptions {
  limits?: Partial<Limits>;
  /** Engine calls running at once (one per inference worker). */
  engineConcurrency?: number;
  /** Most images in one coalesced engine call. */
  maxBatchSize?: number;
  /** Longest wait for a batch to fill, microseconds. */
  maxBatchDelayUs?: number;
  /** Run the warm-up classify at creation (default true); /readyz is 503 until it succeeded. */
  warmUp?: boolean;
  /** Model id shown by /v1/models (default: the dataset name). */
  modelId?: string;
  /** Where the model was loaded from (shown by /v1/models). */
  modelDir?: string;
  /** Error log for unexpected failures (default console.error). */
  log?: (msg: string) => void;
}
