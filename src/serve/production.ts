/**
 * What a service facing a network needs in front of every route (issue #15), installed by
 * createApp in this order: the request id, the request log (when a logger is given), the security
 * headers, CORS (preflights are answered before authentication), then API keys. See auth.ts,
 * cors.ts, request-log.ts and headers.ts.
 */
import type express from "express";
import { KeyStore, authenticate, type MetricsAuth } from "./auth.js";
import type { BodyLimits } from "./body.js";
import { cors, parseOrigins } from "./cors.js";
import { securityHeaders } from "./headers.js";
import { requestId, requestLog, type Logger } from "./request-log.js";

export interface ProductionOptions {
  /** `--api-key-file`: one key a line (`#` comments); re-read by `app.reloadKeys()`. */
  apiKeyFile?: string;
  /** More keys (`EQUIVAE_API_KEYS`, split at commas). No key at all: every route is open. */
  apiKeys?: string[];
  /** `--metrics-auth`: whether /metrics needs a key when keys are configured (default open). */
  metricsAuth?: MetricsAuth;
  /** `--cors-origin`: origins allowed to call from a browser, or `*` (default none: no CORS headers). */
  corsOrigins?: string[];
  /**
   * The request logger: one line per request, and 500s with their stack (instead of `log`).
   * Default none: no request lines (tests and tools); `equivae serve` always passes one.
   */
  logger?: Logger;
}

/** Installs the middlewares; returns the key store (its `reload()` re-reads the key file). */
export function installProduction(
  app: express.Express,
  opts: ProductionOptions,
  limits: BodyLimits,
): KeyStore {
  const keys = new KeyStore({ file: opts.apiKeyFile, keys: opts.apiKeys });
  app.use(requestId());
  if (opts.logger) app.use(requestLog(opts.logger));
  app.use(securityHeaders());
  app.use(cors(parseOrigins(opts.corsOrigins ?? [])));
  app.use(authenticate(keys, opts.metricsAuth ?? "open", limits));
  return keys;
}
