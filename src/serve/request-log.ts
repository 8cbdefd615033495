/**
 * Request ids, per-request timings and the request log: one line per request (pino; JSON by
 * default, `--log-format pretty` for people), written when its answer has been sent or its client
 * went away.
 *
 * The request id is the incoming `X-Request-Id` when it is a sane token (1-128 characters of
 * [A-Za-z0-9._:-]), else a new UUID; it is echoed in the `X-Request-Id` response header, in every
 * problem+json as `request_id`, and in the log line.
 *
 * A line's fields (null when they do not apply):
 *   time, level, msg ("request"), request_id, method, path (no query string), route (the matched
 *   route pattern without /v1, `/models/:id/...` for a model's routes; null when none matched), model, version (res.locals.model / .version), status,
 *   images (images in the request), bytes_in (body bytes received, on the wire), bytes_out
 *   (the answer's Content-Length), decode_ms (decoding the request's images, on the decode workers,
 *   waiting for one included), queue_ms (this request's engine jobs waiting in the batching queue,
 *   summed), infer_ms (the engine calls that ran them, summed; a call may serve other requests'
 *   images too), work_ms (from admission to the handler's end: decoding, queueing, inference and
 *   encoding the answer), total_ms (from the first byte of the request to the answer sent, body
 *   upload included), client (the peer address; X-Forwarded-For is not trusted), key (which API
 *   key: `file:LINE` or `env:N`, never the key), aborted (true when the client went away first),
 *   err (500 only: type, message, stack).
 * Levels: 5xx at error (500) or warn (503), everything else at info.
 */
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import type { NextFunction, Request, Response } from "express";
import { pino, type DestinationStream, type Logger } from "pino";
import type PinoPretty from "pino-pretty";
import { InputError } from "../util/errors.js";

export type { Logger } from "pino";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ["json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function logLevel(s: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(s))
    throw new InputError(
      `--log-level ($EQUIVAE_LOG_LEVEL) must be one of ${LOG_LEVELS.join(", ")} (got '${s}')`,
    );
  return s as LogLevel;
}

export function logFormat(s: string): LogFormat {
  if (!(LOG_FORMATS as readonly string[]).includes(s))
    throw new InputError(`--log-format ($EQUIVAE_LOG_FORMAT) must be json or pretty (got '${s}')`);
  return s as LogFormat;
}

/**
 * The service's logger: JSON lines (`level` as a name, `time` as ISO 8601 UTC) or pretty one-liners,
 * to `destination` (default stdout, written synchronously so nothing is lost at exit).
 */
export function createLogger(
  opts: {
    level?: LogLevel;
    format?: LogFormat;
    destination?: DestinationStream | NodeJS.WritableStream;
  } = {},
): Logger {
  const level = opts.level ?? "info";
  if (opts.format === "pretty") {
    // Loaded only for --log-format pretty (a CommonJS package).
    const pretty = createRequire(import.meta.url)("pino-pretty") as typeof PinoPretty;
    return pino(
      { level, base: null },
      pretty({
        sync: true,
        singleLine: true,
        translateTime: "SYS:HH:MM:ss.l",
        ignore: "method,path,status,total_ms",
        destination: opts.destination ?? 1,
        messageFormat: (log: Record<string, unknown>, key: string) =>
          log.method === undefined
            ? String(log[key])
            : `${log.method} ${log.path} ${log.status} ${log.total_ms} ms`,
      }),
    );
  }
  return pino(
    {
      level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    (opts.destination as DestinationStream | undefined) ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** What the pipeline measures for one request (milliseconds; null: that stage did not happen). */
export interface RequestTiming {
  admittedAt?: number;
  decodeMs: number | null;
  queueMs: number | null;
  inferMs: number | null;
  workMs: number | null;
}

/** The engine jobs' timings by their request's abort signal (the pipeline passes it to every job). */
const bySignal = new WeakMap<AbortSignal, RequestTiming>();

/** The request's timing record (created on first use). */
export function timing(res: Response): RequestTiming {
  return (res.locals.timing ??= { decodeMs: null, queueMs: null, inferMs: null, workMs: null });
}

/** Starts the work clock at admission; the queue's jobs carrying `signal` are counted for this request. */
export function startWork(res: Response, signal: AbortSignal): RequestTiming {
  const t = timing(res);
  t.admittedAt = performance.now();
  bySignal.set(signal, t);
  return t;
}

/** Adds to a timing field. */
export function addMs(t: RequestTiming, field: "decodeMs" | "queueMs" | "inferMs", ms: number): void {
  t[field] = (t[field] ?? 0) + ms;
}

/** For the batching queue's observer: one job of a request waited, then ran in an engine call. */
export function jobTimed(signal: AbortSignal | undefined, waitedS: number, ranS: number): void {
  const t = signal && bySignal.get(signal);
  if (!t) return;
  addMs(t, "queueMs", waitedS * 1000);
  addMs(t, "inferMs", ranS * 1000);
}

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Sets res.locals.requestId (the client's sane X-Request-Id, else a UUID) and echoes it. */
export function requestId() {
  return (req: Request, res: Response, next: NextFunction): void => {
    const h = req.headers["x-request-id"];
    const id = typeof h === "string" && SANE_ID.test(h) ? h : randomUUID();
    res.locals.requestId = id;
    res.setHeader("X-Request-Id", id);
    next();
  };
}

const ms = (x: number | null | undefined) =>
  x === null || x === undefined ? null : Math.round(x * 100) / 100;

function bytesIn(req: Request, res: Response): number | null {
  if (typeof res.locals.bytesIn === "number") return res.locals.bytesIn;
  const bodiless =
    req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined;
  return bodiless ? 0 : null;
}

/**
 * Logs one line per request. Sets `res.locals.logsErrors`, so the error mapper leaves a 500's
 * error in `res.locals.error` for this line (with its stack) instead of logging it apart.
 */
export function requestLog(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const t0 = performance.now();
    res.locals.logsErrors = true;
    let done = false;
    const write = (aborted: boolean) => {
      if (done) return;
      done = true;
      const t = res.locals.timing as RequestTiming | undefined;
      const status = res.statusCode;
      const err = res.locals.error as unknown;
      const line: Record<string, unknown> = {
        request_id: res.locals.requestId ?? null,
        method: req.method,
        path: req.originalUrl.split("?")[0],
        route: req.route
          ? String(req.baseUrl.replace(/^\/v1/, "") + req.route.path).replace(
              /^\/models\/[^/]+/,
              "/models/:id",
            )
          : null,
        model: res.locals.model ?? null,
        version: res.locals.version ?? null,
        status,
        images: typeof res.locals.images === "number" ? res.locals.images : null,
        bytes_in: bytesIn(req, res),
        bytes_out: res.hasHeader("content-length") ? Number(res.getHeader("content-length")) : null,
        decode_ms: ms(t?.decodeMs),
        queue_ms: ms(t?.queueMs),
        infer_ms: ms(t?.inferMs),
        work_ms: ms(t?.workMs),
        total_ms: ms(performance.now() - t0),
        client: req.socket.remoteAddress ?? null,
        key: res.locals.apiKey ?? null,
      };
      if (aborted) line.aborted = true;
      if (err !== undefined) line.err = err instanceof Error ? err : { message: String(err) };
      if (status >= 500 && status !== 503) logger.error(line, "request");
      else if (status >= 500) logger.warn(line, "request");
      else logger.info(line, "request");
    };
    res.once("finish", () => write(false));
    res.once("close", () => write(!res.writableFinished));
    next();
  };
}
