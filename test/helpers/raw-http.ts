// Sends one request on a fresh connection (agent: false) and reports what came back, or the
// socket error that ended it. The body is written in 64 KiB slices with backpressure, and writing
// stops once a response has arrived (a server may answer 413 before the body is complete).
import { request } from "node:http";

export interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Transfer-Encoding: chunked, no Content-Length. */
  chunked?: boolean;
  /** Give up after this long (reported as error "timeout"). Default 30 s. */
  timeoutMs?: number;
}

export interface SendResult {
  status?: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** A socket error (code, e.g. ECONNRESET, or "socket hang up" / "timeout") that ended the exchange
   *  before a complete response; write errors after a complete response are not errors. */
  error?: string;
  ms: number;
}

const SLICE = 64 * 1024;

export function send(port: number, path: string, o: SendOptions = {}): Promise<SendResult> {
  const t0 = performance.now();
  const body = o.body ?? Buffer.alloc(0);
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  const lower = Object.fromEntries(Object.keys(headers).map((k) => [k.toLowerCase(), k]));
  if (o.chunked) {
    if (lower["content-length"]) delete headers[lower["content-length"]];
    headers["transfer-encoding"] = "chunked";
  } else if (!lower["content-length"] && !lower["transfer-encoding"]) {
    headers["content-length"] = String(body.length);
  }
  return new Promise((resolve) => {
    let settled = false;
    let responded = false;
    const finish = (r: Omit<SendResult, "ms">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, ms: performance.now() - t0 });
      req.destroy();
    };
    const req = request({
      host: "127.0.0.1",
      port,
      path,
      method: o.method ?? "POST",
      headers,
      agent: false,
    });
    const timer = setTimeout(
      () => finish({ headers: {}, body: Buffer.alloc(0), error: "timeout" }),
      o.timeoutMs ?? 30_000,
    );
    req.on("error", (e: NodeJS.ErrnoException) => {
      // EPIPE / ECONNRESET while still writing, after the server already answered: not an error.
      if (responded) return;
      finish({ headers: {}, body: Buffer.alloc(0), error: e.code ?? e.message });
    });
    req.on("response", (res) => {
      responded = true;
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () =>
        finish({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on("error", (e: NodeJS.ErrnoException) =>
        finish({
          status: res.statusCode,
          headers: res.headers,
          body: Buffer.concat(chunks),
          error: `response aborted: ${e.code ?? e.message}`,
        }),
      );
      res.on("aborted", () =>
        finish({
          status: res.statusCode,
          headers: res.headers,
          body: Buffer.concat(chunks),
          error: "response aborted",
        }),
      );
    });
    void (async () => {
      for (let i = 0; i < body.length && !responded && !settled; i += SLICE) {
        const ok = req.write(body.subarray(i, i + SLICE));
        if (!ok)
          await new Promise<void>((r) => {
            const done = () => {
              req.off("drain", done);
              req.off("close", done);
              r();
            };
            req.on("drain", done);
            req.on("close", done);
          });
      }
      if (!responded && !settled) req.end();
    })();
  });
}

/** Runs `fn` over `items` with at most `limit` at once, in order of the items. */
export async function pool<T, R>(
  items: T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** A problem+json answer's fields, or null when the answer is not one. */
export function problemOf(
  r: SendResult,
): { type: string; title: string; status: number; detail: string; instance: string } | null {
  const ct = String(r.headers["content-type"] ?? "");
  if (!ct.startsWith("application/problem+json")) return null;
  try {
    const p = JSON.parse(r.body.toString("utf8")) as Record<string, unknown>;
    if (
      typeof p.type !== "string" ||
      typeof p.title !== "string" ||
      typeof p.status !== "number" ||
      typeof p.detail !== "string" ||
      typeof p.instance !== "string"
    )
      return null;
    return p as { type: string; title: string; status: number; detail: string; instance: string };
  } catch {
    return null;
  }
}
