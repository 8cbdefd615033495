/**
 * Everything thrown while handling a request, mapped onto ERROR_TABLE's kinds, and the one way a
 * problem is sent: RFC 9457 JSON, never a stack trace.
 */
import type { Request, Response } from "express";
import { ImagingError } from "../imaging/index.js";
import { InputError } from "../util/errors.js";
import { ApiError, problem, type ErrorKind } from "./errors.js";

export interface Mapped {
  kind: ErrorKind;
  detail: string;
  extra?: Record<string, unknown>;
}

/** The kind of a client error, or null for an unexpected failure (answered 500 and logged). */
export function mapError(err: unknown): Mapped | null {
  if (err instanceof ApiError) return { kind: err.kind, detail: err.message, extra: err.extra };
  // ImagingError's kinds are ERROR_TABLE keys by design (src/imaging stays apart from HTTP).
  if (err instanceof ImagingError) return { kind: err.kind, detail: err.message };
  const e = err as { type?: string; status?: number; message?: string };
  if (e && typeof e === "object" && typeof e.type === "string") {
    // Errors of Node's and Express's own body handling (kept for routes outside the inference path).
    if (e.type === "entity.too.large")
      return { kind: "payload-too-large", detail: "the body is over the body-size limit" };
    if (e.type === "entity.parse.failed")
      return { kind: "malformed-request", detail: `invalid JSON: ${e.message ?? ""}` };
    if (typeof e.status === "number" && e.status >= 400 && e.status < 500)
      return { kind: "malformed-request", detail: e.message ?? "malformed request" };
  }
  return null;
}

/** Sends a problem; a no-op once the response has started. Statuses that end the exchange early close the connection. */
export function sendProblem(
  req: Request,
  res: Response,
  kind: ErrorKind,
  detail: string,
  extra: Record<string, unknown> = {},
): void {
  if (res.headersSent) return;
  const p = problem(kind, detail, req.originalUrl.split("?")[0], extra);
  // The request's id (src/serve/request-log.ts), also in X-Request-Id and the log line.
  if (typeof res.locals.requestId === "string") p.request_id = res.locals.requestId;
  if (p.status === 429 || p.status === 503) res.setHeader("Retry-After", "1");
  // A body that did not arrive in time is not waited for. (A refused body that is still arriving is
  // read and dropped instead, src/serve/body.ts, so its client reads this answer, not a reset.)
  if (kind === "body-timeout") res.setHeader("Connection", "close");
  res.status(p.status).type("application/problem+json").send(JSON.stringify(p));
}

/** Answers any error: a mapped client error, or 500 with the cause logged. */
export function answerError(err: unknown, req: Request, res: Response, log: (m: string) => void): void {
  const k = mapError(err);
  if (k) return sendProblem(req, res, k.kind, k.detail, k.extra);
  // With a request logger, the request's log line carries the error and its stack.
  if (res.locals.logsErrors === true) res.locals.error = err;
  else if (err instanceof InputError) log(`engine refused a request: ${err.message}`);
  else
    log(
      `internal error on ${req.method} ${req.originalUrl}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
  sendProblem(req, res, "internal", "an unexpected error occurred; it has been logged");
}
