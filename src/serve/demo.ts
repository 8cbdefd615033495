/**
 * The demo page at `/` (issue #17): draw or drop a digit, see it classified, its style decoded with
 * every class, and a generator over the model's active z dimensions. Three static files in
 * src/serve/demo (no build step, no CDN), read once from the package at start and served from
 * memory: `/` (index.html), `/demo/demo.js` and `/demo/demo.css`. The page calls the API with
 * relative URLs, so it also works behind a path prefix. Its Content-Security-Policy allows only its
 * own script and style, images it makes itself (blob: and data: URLs) and requests to this origin.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Router } from "express";
import { DEMO_DIR } from "./config.js";

export const DEMO_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The page's asset paths (open without an API key, like `/`). */
export const DEMO_ASSETS = ["/demo/demo.js", "/demo/demo.css"] as const;

const FILES: Array<[path: string, file: string, type: string]> = [
  ["/", "index.html", "text/html; charset=utf-8"],
  ["/demo/demo.js", "demo.js", "text/javascript; charset=utf-8"],
  ["/demo/demo.css", "demo.css", "text/css; charset=utf-8"],
];

/**
 * GET `/` and the page's assets. When the files are missing (a package built without them) the
 * routes are left out and `/` stays a 404 problem; `log` says why.
 */
export function demoRoutes(log: (m: string) => void, dir = DEMO_DIR): Router {
  const router = Router();
  let files: Array<[string, Buffer, string]>;
  try {
    files = FILES.map(([path, file, type]) => [path, readFileSync(join(dir, file)), type]);
  } catch (e) {
    log(`demo page not served: ${(e as Error).message}`);
    return router;
  }
  for (const [path, body, type] of files) router.get(path, (_req, res) => void res.type(type).send(body));
  return router;
}
