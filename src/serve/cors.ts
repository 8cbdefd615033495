/**
 * CORS for browser clients on other origins (`--cors-origin`, repeatable, or `*`). With no origin
 * configured nothing here runs and no CORS header is ever sent (browsers then refuse cross-origin
 * calls, their default).
 *
 * - A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an allowed origin is
 *   answered 204 with the allowed methods and headers and a max-age, before authentication (a
 *   browser never sends credentials on a preflight).
 * - A preflight from any other origin is answered 403 `cors-refused` (problem+json) without CORS
 *   headers, so the browser refuses the call and the reason is readable in its network panel.
 * - Other requests from an allowed origin get Access-Control-Allow-Origin and the exposed headers;
 *   from any other origin they are served without CORS headers (CORS is the browser's protection,
 *   not access control: API keys are).
 * - Every response says `Vary: Origin`, so caches keep the answers of different origins apart.
 */
import type { NextFunction, Request, Response } from "express";
import { InputError } from "../util/errors.js";
import { sendProblem } from "./error-mapper.js";

export const CORS_METHODS = "GET, POST, OPTIONS";
export const CORS_ALLOW_HEADERS = "Authorization, Content-Type, Content-Encoding, X-Request-Id";
export const CORS_EXPOSE_HEADERS = "X-Model-Version, X-Request-Id, Retry-After";
/** Seconds a browser may cache a preflight's answer. */
export const CORS_MAX_AGE = 600;

/** Checks the configured origins: `*`, or scheme://host[:port] without a path (lower-cased). */
export function parseOrigins(list: string[]): string[] {
  const out: string[] = [];
  for (const raw of list) {
    const o = raw.trim();
    if (o === "") continue;
    if (o !== "*" && !/^https?:\/\/[^/?#\s]+$/i.test(o))
      throw new InputError(
        `--cors-origin ($EQUIVAE_CORS_ORIGINS) '${o}' must be * or scheme://host[:port] with no path or trailing slash`,
      );
    out.push(o.toLowerCase());
  }
  return out;
}

function appendVary(res: Response, field: string): void {
  const v = res.getHeader("Vary");
  if (v === undefined) res.setHeader("Vary", field);
  else if (
    !String(v)
      .split(/\s*,\s*/)
      .includes(field)
  )
    res.setHeader("Vary", `${String(v)}, ${field}`);
}

/** The CORS middleware; a no-op without origins. */
export function cors(origins: string[]) {
  const any = origins.includes("*");
  const allowed = new Set(origins);
  return (req: Request, res: Response, next: NextFunction): void => {
    if (origins.length === 0) return next();
    appendVary(res, "Origin");
    const origin = req.headers.origin;
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    const ok = typeof origin === "string" && (any || allowed.has(origin.toLowerCase()));
    if (preflight) {
      appendVary(res, "Access-Control-Request-Method");
      appendVary(res, "Access-Control-Request-Headers");
      if (!ok)
        return sendProblem(
          req,
          res,
          "cors-refused",
          `origin ${origin === undefined ? "(none)" : `'${origin}'`} is not allowed (see --cors-origin)`,
        );
      res.setHeader("Access-Control-Allow-Origin", any ? "*" : origin!);
      res.setHeader("Access-Control-Allow-Methods", CORS_METHODS);
      res.setHeader("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
      res.setHeader("Access-Control-Max-Age", String(CORS_MAX_AGE));
      res.status(204).end();
      return;
    }
    if (ok) {
      res.setHeader("Access-Control-Allow-Origin", any ? "*" : origin!);
      res.setHeader("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
    }
    next();
  };
}
