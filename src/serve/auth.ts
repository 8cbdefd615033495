/**
 * API keys: `Authorization: Bearer <key>`, checked against every configured key (several at once,
 * for rotation) in constant time over SHA-256 digests, so neither a key's content nor its length
 * leaks through timing. Keys come from `--api-key-file` (one a line, `#` comments and blank lines
 * ignored; re-read by `reload()`, on SIGHUP) and from `EQUIVAE_API_KEYS` (comma-separated). With no
 * key configured every route is open. Keys never reach a log: a request's key is logged by its
 * source alone (`file:3` = line 3 of the key file, `env:1` = the first of EQUIVAE_API_KEYS).
 *
 * The middleware guards every path except an explicit allow-list, so routes added later need a key
 * by default.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { NextFunction, Request, Response } from "express";
import { InputError, errorMessage } from "../util/errors.js";
import { discardRest, refusedBodyDone, type BodyLimits } from "./body.js";
import { DEMO_ASSETS } from "./demo.js";
import { sendProblem } from "./error-mapper.js";

/** Paths answered without a key (also under /v1); /metrics joins them unless --metrics-auth key. */
export const OPEN_PATHS: readonly string[] = [
  "/",
  "/healthz",
  "/readyz",
  "/docs",
  "/openapi.yaml",
  // The demo page's script and style (src/serve/demo.ts): the page asks for a key itself.
  ...DEMO_ASSETS,
];

export type MetricsAuth = "open" | "key";

export const REALM = "equivae";

interface Key {
  digest: Buffer;
  /** Where the key came from, for logs: `file:LINE` or `env:INDEX` (never the key). */
  source: string;
}

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** A bearer token is a token68 (RFC 6750): letters, digits and -._~+/ with trailing =. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Keys from lines (blank lines and `#` comments skipped); `where` names a line in errors, `source` in logs. */
function parseKeys(
  lines: string[],
  where: (line: number) => string,
  source: (line: number) => string,
): Key[] {
  const keys: Key[] = [];
  lines.forEach((line, i) => {
    const k = line.trim();
    if (k === "" || k.startsWith("#")) return;
    // The key itself is never part of a message.
    if (!TOKEN68.test(k))
      throw new InputError(
        `${where(i + 1)}: an API key may hold only letters, digits and -._~+/ (with = at the end)`,
      );
    keys.push({ digest: digest(k), source: source(i + 1) });
  });
  return keys;
}

export interface KeyOptions {
  /** `--api-key-file`: one key a line. */
  file?: string;
  /** Keys from the environment (`EQUIVAE_API_KEYS`, already split). */
  keys?: string[];
}

/** The configured keys; `reload()` re-reads the key file. */
export class KeyStore {
  private keys: Key[] = [];
  private readonly envKeys: Key[];

  constructor(private readonly opts: KeyOptions = {}) {
    this.envKeys = parseKeys(
      opts.keys ?? [],
      (i) => `EQUIVAE_API_KEYS entry ${i}`,
      (i) => `env:${i}`,
    );
    this.reload();
  }

  /** How many keys are in force (0: every route is open). */
  get size(): number {
    return this.keys.length;
  }

  /**
   * Re-reads the key file; returns the number of keys now in force. On an unreadable file, a bad
   * line, or a file that would leave no key at all, throws a InputError and keeps the keys it had
   * (a broken rotation never opens the server).
   */
  reload(): number {
    let fromFile: Key[] = [];
    const file = this.opts.file;
    if (file !== undefined) {
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch (e) {
        throw new InputError(`cannot read the API key file ${file}: ${errorMessage(e)}`);
      }
      fromFile = parseKeys(
        text.split(/\r?\n/),
        (i) => `${file} line ${i}`,
        (i) => `file:${i}`,
      );
      if (fromFile.length + this.envKeys.length === 0)
        throw new InputError(`the API key file ${file} holds no key (one a line; # starts a comment)`);
    }
    this.keys = [...fromFile, ...this.envKeys];
    return this.keys.length;
  }

  /** The matching key's source, or undefined; compares with every key, in constant time. */
  verify(token: string): string | undefined {
    const d = digest(token);
    let found: string | undefined;
    for (const k of this.keys) if (timingSafeEqual(d, k.digest) && found === undefined) found = k.source;
    return found;
  }
}

/** The path as the allow-list sees it: lower case (Express routes ignore case), no /v1, no trailing slash. */
function canonical(path: string): string {
  let p = path.toLowerCase();
  if (p === "/v1" || p.startsWith("/v1/")) p = p.slice(3);
  if (p.length > 1 && p.endsWith("/")) p = p.slice(0, -1);
  return p === "" ? "/" : p;
}

export function isOpenPath(path: string, metricsAuth: MetricsAuth): boolean {
  const p = canonical(path);
  // A model's readiness is a probe like /readyz (it says nothing a key protects).
  return (
    OPEN_PATHS.includes(p) ||
    /^\/models\/[^/]+\/ready$/.test(p) ||
    (metricsAuth === "open" && p === "/metrics")
  );
}

/** Whether a bind address is reachable only from this machine. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1";
}

/**
 * 401 unauthorized for a keyed path without a valid `Authorization: Bearer <key>` (when any key is
 * configured). `res.locals.apiKey` is set to the matching key's source.
 */
export function authenticate(keys: KeyStore, metricsAuth: MetricsAuth, limits: BodyLimits) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (keys.size === 0 || isOpenPath(req.path, metricsAuth)) return next();
    const h = req.headers.authorization;
    const m = typeof h === "string" ? /^Bearer +(\S+) *$/i.exec(h) : null;
    const source = m ? keys.verify(m[1]) : undefined;
    if (source !== undefined) {
      res.locals.apiKey = source;
      return next();
    }
    // Refused before its body was read: drop the rest of the body, then answer (as the pipeline does).
    discardRest(req, limits);
    await refusedBodyDone(req);
    if (m) {
      res.setHeader("WWW-Authenticate", `Bearer realm="${REALM}", error="invalid_token"`);
      sendProblem(req, res, "unauthorized", "the API key is not valid");
    } else {
      res.setHeader("WWW-Authenticate", `Bearer realm="${REALM}"`);
      sendProblem(
        req,
        res,
        "unauthorized",
        h === undefined
          ? "this route needs an API key: send 'Authorization: Bearer <key>'"
          : "the Authorization header must be 'Bearer <key>'",
      );
    }
  };
}
