/**
 * Headers on every answer: `X-Content-Type-Options: nosniff`, `Cache-Control: no-store` (answers
 * depend on the model loaded and carry request ids; nothing is meant to be cached),
 * `Referrer-Policy: no-referrer`, and a Content-Security-Policy: the docs page's (its one inline
 * style by hash, nothing else) on /docs, the demo page's (its own script, style and images only) on
 * /, and one that allows nothing on every other answer (JSON,
 * problems, PNG, YAML, metrics are never meant to run as a page).
 */
import type { NextFunction, Request, Response } from "express";
import { DEMO_CSP } from "./demo.js";
import { DOCS_CSP } from "./docs.js";

export const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export { DEMO_CSP, DOCS_CSP };

const isDocs = (path: string) => /^(\/v1)?\/docs\/?$/i.test(path);

export function securityHeaders() {
  return (req: Request, res: Response, next: NextFunction): void => {
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Cache-Control", "no-store");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.setHeader(
      "Content-Security-Policy",
      isDocs(req.path) ? DOCS_CSP : req.path === "/" ? DEMO_CSP : API_CSP,
    );
    next();
  };
}
