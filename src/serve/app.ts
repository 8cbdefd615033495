import express, { type NextFunction, type Request, type Response } from "express";
import multer from "multer";
import type { Engine } from "../inference/index.js";
import { rankByCentroid, rankProbs } from "../inference/engine.js";
import { UserError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import { DEFAULT_LIMITS, MIN_IMAGE_SIDE, type Limits, type ServeOptions } from "./config.js";
import { renderDocs } from "./docs.js";
import { ApiError, ERROR_TABLE, problem, type ErrorKind } from "./errors.js";
import {
  decodeBase64,
  decodeImage,
  encodePng,
  fromPixels,
  tile,
  toModelInput,
  type ImageOptions,
  type Preprocessing,
} from "./images.js";
import { ServeMetrics } from "./metrics.js";
import { InferenceQueue, timeoutError } from "./queue.js";
import { deref, loadSpec, type Spec } from "./spec.js";
import type { components } from "../generated/openapi.js";

type Schemas = components["schemas"];

export interface ServeState {
  ready: boolean;
  draining: boolean;
  warmUpError?: string;
}

export type ServeApp = express.Express & {
  state: ServeState;
  metrics: ServeMetrics;
  queue: InferenceQueue;
  limits: Limits;
  /** Resolves once the warm-up inference finished (true: it succeeded). */
  ready: Promise<boolean>;
  /** Requests in flight (admitted to an inference route). */
  inflight: () => number;
};

const INFERENCE_ROUTES = ["/embed/invariant", "/embed/equivariant", "/classify", "/generate"] as const;

interface Ctx {
  signal: AbortSignal;
}

/** Sends an RFC 9457 problem (never a stack trace); a no-op once the response has started. */
function sendProblem(
  req: Request,
  res: Response,
  kind: ErrorKind,
  detail: string,
  extra: Record<string, unknown> = {},
) {
  if (res.headersSent) return;
  const p = problem(kind, detail, req.originalUrl.split("?")[0], extra);
  if (p.status === 429 || p.status === 503) res.setHeader("Retry-After", "1");
  res.status(p.status).type("application/problem+json").send(JSON.stringify(p));
}

/** Maps anything thrown while handling a request to a kind of the error table. */
function classify(err: unknown): { kind: ErrorKind; detail: string; extra?: Record<string, unknown> } | null {
  if (err instanceof ApiError) return { kind: err.kind, detail: err.message, extra: err.extra };
  if (err instanceof multer.MulterError) {
    switch (err.code) {
      case "LIMIT_FILE_SIZE":
        return { kind: "payload-too-large", detail: `an uploaded file is over the body-size limit` };
      case "LIMIT_FILE_COUNT":
        return { kind: "too-many-images", detail: `more uploaded files than the images-per-request limit` };
      case "LIMIT_UNEXPECTED_FILE":
        return {
          kind: "validation-failed",
          detail: `unexpected file field '${err.field ?? ""}' (send images as 'image')`,
        };
      default:
        return { kind: "payload-too-large", detail: `multipart limit: ${err.message}` };
    }
  }
  const e = err as { type?: string; status?: number; message?: string };
  if (e && typeof e === "object" && typeof e.type === "string") {
    if (e.type === "entity.too.large")
      return { kind: "payload-too-large", detail: "the body is over the body-size limit" };
    if (e.type === "entity.parse.failed")
      return { kind: "malformed-request", detail: `invalid JSON: ${e.message ?? ""}` };
    if (e.type === "charset.unsupported" || e.type === "encoding.unsupported")
      return { kind: "unsupported-media-type", detail: e.message ?? "unsupported encoding" };
    if (typeof e.status === "number" && e.status >= 400 && e.status < 500)
      return { kind: "malformed-request", detail: e.message ?? "malformed body" };
  }
  // busboy / multer parse errors on malformed multipart bodies.
  if (err instanceof Error && /multipart|boundary|unexpected end of form|malformed part/i.test(err.message))
    return { kind: "malformed-request", detail: `malformed multipart body: ${err.message}` };
  return null;
}

/** Coerces multipart text fields by the JSON request schema's property types. */
function coerceFields(
  spec: Spec,
  operationId: string,
  fields: Record<string, unknown>,
): Record<string, unknown> {
  const schema = spec.requestSchema(operationId);
  const out: Record<string, unknown> = {};
  for (const [k, raw] of Object.entries(fields)) {
    const prop = deref(spec.doc, schema?.properties?.[k]);
    const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (typeof value !== "string" || prop?.type === "string") {
      out[k] = value;
      continue;
    }
    try {
      out[k] = JSON.parse(value);
    } catch {
      out[k] = value;
    }
  }
  return out;
}

export function createApp(engine: Engine, options: ServeOptions = {}): ServeApp {
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const log = options.log ?? ((m: string) => console.error(m));
  const spec = loadSpec();
  const docsHtml = renderDocs(spec, limits);
  const metrics = new ServeMetrics();
  const queue = new InferenceQueue(engine, {
    concurrency: options.engineConcurrency ?? 1,
    maxBatchImages: options.maxBatchImages ?? 256,
    metrics,
  });
  const c = engine.config;
  const px = c.height * c.width * c.channels;
  const K = engine.classNames.length;
  const state: ServeState = { ready: false, draining: false };
  let inflight = 0;

  const ready =
    options.warmUp === false
      ? Promise.resolve((state.ready = true))
      : (async () => {
          try {
            await engine.classify(new Float32Array(px), 1, 1);
            state.ready = true;
            return true;
          } catch (e) {
            state.warmUpError = e instanceof Error ? e.message : String(e);
            log(`warm-up inference failed: ${state.warmUpError}`);
            return false;
          }
        })();

  const app = express() as unknown as ServeApp;
  app.disable("x-powered-by");
  app.set("etag", false);

  // Metrics for every request, labelled by the canonical route (the /v1 alias shares the label).
  app.use((req, res, next) => {
    const t0 = performance.now();
    res.on("finish", () => {
      const route = req.route ? String(req.route.path) : "unmatched";
      const labels = { route, method: req.method, status: String(res.statusCode) };
      metrics.requests.inc(labels);
      metrics.latency.observe(labels, (performance.now() - t0) / 1000);
    });
    next();
  });

  const router = express.Router();
  router.get("/healthz", (_req, res) => void res.json({ status: "ok" }));
  router.get("/readyz", (req, res) => {
    if (state.draining) return sendProblem(req, res, "shutting-down", "the server is draining");
    if (!state.ready)
      return sendProblem(
        req,
        res,
        "not-ready",
        state.warmUpError ? `warm-up failed: ${state.warmUpError}` : "warming up",
      );
    res.json({ status: "ready" });
  });
  router.get("/metrics", async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  router.get("/models", (_req, res) => {
    const m = engine.manifest;
    const info: Schemas["ModelInfo"] = {
      id: options.modelId ?? m.dataset?.name ?? "model",
      dir: options.modelDir,
      engine: engine.kind,
      dataset: m.dataset?.name,
      created_at: m.createdAt,
      parameter_count: m.parameterCount,
      input: { height: c.height, width: c.width, channels: c.channels },
      dv: c.dv,
      dz: c.dz,
      classes: engine.classNames,
      likelihood: c.likelihood,
      standardised: c.standardise === true,
      classify_methods: engine.hasPosterior ? ["centroid", "posterior"] : ["centroid"],
      metrics: (m.metrics ?? null) as Record<string, unknown> | null,
      evaluation: (m.evaluation ?? null) as Record<string, unknown> | null,
      limits: {
        max_body_bytes: limits.maxBodyBytes,
        max_images: limits.maxImages,
        max_pixels: limits.maxPixels,
        max_concurrent: limits.maxConcurrent,
        timeout_ms: limits.timeoutMs,
        min_image_side: MIN_IMAGE_SIDE,
      },
    };
    res.json({ models: [info] } satisfies Schemas["ModelsResponse"]);
  });
  router.get("/openapi.yaml", (_req, res) => void res.type("application/yaml").send(spec.text));
  router.get("/docs", (_req, res) => void res.type("text/html").send(docsHtml));

  // ---- the inference routes: ready -> admit (429) -> timeout -> content type (415) -> parse -> handle
  const jsonParser = express.json({ limit: limits.maxBodyBytes, type: "application/json" });
  const upload = multer({
    storage: multer.memoryStorage(),
    limits: {
      fileSize: limits.maxBodyBytes,
      files: limits.maxImages,
      fields: 64,
      fieldSize: limits.maxBodyBytes,
      parts: limits.maxImages + 64,
    },
  }).array("image");

  const gate = (req: Request, res: Response, next: NextFunction) => {
    if (state.draining) {
      res.setHeader("Connection", "close");
      return sendProblem(req, res, "shutting-down", "the server is draining");
    }
    if (!state.ready) return sendProblem(req, res, "not-ready", "the model is warming up");
    if (inflight >= limits.maxConcurrent)
      return sendProblem(
        req,
        res,
        "too-many-requests",
        `${limits.maxConcurrent} requests are in flight (the limit)`,
      );
    inflight++;
    metrics.inflight.set(inflight);
    let done = false;
    const ac = new AbortController();
    const timer = setTimeout(() => {
      ac.abort(timeoutError(limits.timeoutMs));
      sendProblem(req, res, "timeout", `the request did not finish within ${limits.timeoutMs} ms`);
    }, limits.timeoutMs);
    res.on("close", () => {
      clearTimeout(timer);
      if (!done) {
        done = true;
        inflight--;
        metrics.inflight.set(inflight);
      }
      if (!ac.signal.aborted) ac.abort(new ApiError("timeout", "the client went away"));
    });
    res.locals.ctx = { signal: ac.signal } satisfies Ctx;
    const len = Number(req.headers["content-length"] ?? 0);
    if (len > limits.maxBodyBytes)
      return sendProblem(
        req,
        res,
        "payload-too-large",
        `the body (${len} bytes) is over the limit of ${limits.maxBodyBytes}`,
      );
    if (req.is("application/json")) return jsonParser(req, res, next);
    if (req.is("multipart/form-data")) return upload(req, res, next);
    sendProblem(
      req,
      res,
      "unsupported-media-type",
      `send application/json or multipart/form-data (got ${req.headers["content-type"] ?? "no content type"})`,
    );
  };

  type Body = Record<string, any>;
  interface Parsed {
    body: Body;
    files: Express.Multer.File[];
  }

  const parse = (req: Request, operationId: string): Parsed => {
    const files = (req.files as Express.Multer.File[] | undefined) ?? [];
    const multipart = req.is("multipart/form-data") !== false && req.is("multipart/form-data") !== null;
    let body: unknown = req.body;
    if (multipart) body = coerceFields(spec, operationId, (req.body ?? {}) as Record<string, unknown>);
    if (body === null || typeof body !== "object" || Array.isArray(body))
      throw new ApiError("validation-failed", "the body must be a JSON object");
    spec.validate(operationId, body);
    return { body: body as Body, files };
  };

  const imageCount = (p: Parsed) =>
    p.files.length + (p.body.images?.length ?? 0) + (p.body.pixels?.length ?? 0);

  /** Decodes and converts every image of a request into one [n, H, W, C] batch. */
  const images = (p: Parsed, required: boolean): { x: Float32Array; n: number; pre: Preprocessing[] } => {
    const n = imageCount(p);
    if (n === 0) {
      if (required)
        throw new ApiError(
          "validation-failed",
          "no images: upload 'image' files or send 'images' or 'pixels'",
        );
      return { x: new Float32Array(0), n: 0, pre: [] };
    }
    if (n > limits.maxImages)
      throw new ApiError("too-many-images", `${n} images; the limit is ${limits.maxImages} per request`);
    const opts: ImageOptions = {
      invert: p.body.invert === true,
      background: p.body.background,
      pixelsRange: p.body.pixels_range,
    };
    const x = new Float32Array(n * px);
    const pre: Preprocessing[] = [];
    let i = 0;
    const add = (r: Parameters<typeof toModelInput>[0]) => {
      pre.push(toModelInput(r, c, opts, x.subarray(i * px, (i + 1) * px)));
      i++;
    };
    p.files.forEach((f, k) =>
      add(decodeImage(f.buffer, limits.maxPixels, `image[${k}] (${f.originalname})`)),
    );
    (p.body.images ?? []).forEach((s: string, k: number) =>
      add(decodeImage(decodeBase64(s, `images[${k}]`), limits.maxPixels, `images[${k}]`)),
    );
    (p.body.pixels ?? []).forEach((a: unknown, k: number) =>
      add(fromPixels(a, c, opts, limits.maxPixels, `pixels[${k}]`)),
    );
    return { x, n, pre };
  };

  const classIndex = (ref: number | string): number => {
    const y = typeof ref === "number" ? ref : engine.classNames.indexOf(ref);
    if (!Number.isInteger(y) || y < 0 || y >= K) {
      const names = engine.classNames.slice(0, 20).join(", ") + (K > 20 ? ", ..." : "");
      throw new ApiError(
        "unknown-class",
        typeof ref === "number"
          ? `class label ${ref} is out of range (the model has ${K} classes, 0..${K - 1})`
          : `unknown class name '${ref}' (classes: ${names})`,
      );
    }
    return y;
  };

  const centroid = (ref: number | string): Float32Array => {
    const y = classIndex(ref);
    const v = engine.centroids.slice(y * c.dv, (y + 1) * c.dv);
    if (v.some((t) => Number.isNaN(t)))
      throw new ApiError(
        "unknown-class",
        `class '${engine.classNames[y]}' has no centroid (no training images)`,
      );
    return v;
  };

  const vector = (a: number[], d: number, what: string): Float32Array => {
    if (a.length !== d)
      throw new ApiError("invalid-dimensions", `${what} has ${a.length} values; the model needs ${d}`);
    return Float32Array.from(a);
  };

  const repeat = (row: Float32Array, n: number) => {
    const out = new Float32Array(n * row.length);
    for (let i = 0; i < n; i++) out.set(row, i * row.length);
    return out;
  };

  const rows = (a: Float32Array, d: number): number[][] => {
    const out: number[][] = [];
    for (let i = 0; i < a.length; i += d) out.push(Array.from(a.subarray(i, i + d)));
    return out;
  };

  const handle =
    (operationId: string, fn: (p: Parsed, ctx: Ctx, req: Request, res: Response) => Promise<void>) =>
    async (req: Request, res: Response, next: NextFunction) => {
      try {
        const p = parse(req, operationId);
        await fn(p, res.locals.ctx as Ctx, req, res);
      } catch (e) {
        next(e);
      }
    };

  const embedInvariant = handle("embedInvariant", async (p, ctx, _req, res) => {
    const { x, n, pre } = images(p, true);
    const set = p.body.set === true;
    const v = set
      ? await queue.run("invariant_set", n, () => engine.embedSet(x, [n]), ctx.signal)
      : await queue.embedInvariant(x, n, ctx.signal);
    if (res.headersSent) return;
    res.json({ v: rows(v, c.dv), set, preprocessing: pre } satisfies Schemas["EmbedInvariantResponse"]);
  });

  const embedEquivariant = handle("embedEquivariant", async (p, ctx, _req, res) => {
    if (p.body.v !== undefined && p.body.class !== undefined)
      throw new ApiError("validation-failed", "give 'class' or 'v', not both");
    const { x, n, pre } = images(p, true);
    let v: Float32Array;
    let from: "image" | "class" | "given";
    if (p.body.v !== undefined) {
      v = repeat(vector(p.body.v, c.dv, "v"), n);
      from = "given";
    } else if (p.body.class !== undefined) {
      v = repeat(centroid(p.body.class), n);
      from = "class";
    } else {
      v = await queue.embedInvariant(x, n, ctx.signal);
      from = "image";
    }
    const r = await queue.run("equivariant", n, () => engine.encodeEquivariant(x, n, v), ctx.signal);
    if (res.headersSent) return;
    res.json({
      mu: rows(r.mu, c.dz),
      logvar: rows(r.logvar, c.dz),
      v: rows(v, c.dv),
      v_from: from,
      preprocessing: pre,
    } satisfies Schemas["EmbedEquivariantResponse"]);
  });

  const classifyRoute = handle("classify", async (p, ctx, _req, res) => {
    const { x, n, pre } = images(p, true);
    const topK = Math.min(p.body.top_k ?? 3, K);
    const method = p.body.method ?? "centroid";
    let ranked;
    if (method === "posterior") {
      if (!engine.hasPosterior)
        throw new ApiError(
          "method-unavailable",
          "method 'posterior' needs q(y|x), which this model does not have (it was trained supervised); use method 'centroid'",
        );
      const probs = await queue.run("classifier", n, () => engine.posteriorProbs(x, n), ctx.signal);
      ranked = rankProbs(probs, K, engine.classNames, topK);
    } else {
      const v = await queue.embedInvariant(x, n, ctx.signal);
      ranked = rankByCentroid(v, c.dv, engine.centroids, engine.classNames, topK);
    }
    if (res.headersSent) return;
    res.json({
      method,
      predictions: ranked.map((r) => ({ label: r[0].label, name: r[0].name, p: r[0].p, top_k: r })),
      preprocessing: pre,
    } satisfies Schemas["ClassifyResponse"]);
  });

  const generate = handle("generate", async (p, ctx, req, res) => {
    const b = p.body;
    if ((b.v === undefined) === (b.class === undefined))
      throw new ApiError(
        "validation-failed",
        "give exactly one of 'class' (label or name) and 'v' (dv numbers)",
      );
    const v = b.v !== undefined ? vector(b.v, c.dv, "v") : centroid(b.class);
    const fromImages = imageCount(p) > 0;
    const sources = [b.z !== undefined, b.interpolate !== undefined, fromImages].filter(Boolean).length;
    if (sources > 1)
      throw new ApiError("validation-failed", "give at most one source of z: 'z', 'interpolate' or images");
    let z: Float32Array;
    let n: number;
    let zFrom: Schemas["GenerateResponse"]["z_from"];
    let pre: Preprocessing[] | undefined;
    let cols: number | undefined;
    if (b.z !== undefined) {
      const list: number[][] = Array.isArray(b.z[0]) ? b.z : [b.z];
      n = list.length;
      if (n > limits.maxImages)
        throw new ApiError("too-many-images", `${n} z vectors; the limit is ${limits.maxImages}`);
      if (b.count !== undefined && b.count !== n)
        throw new ApiError("invalid-dimensions", `count ${b.count} does not match the ${n} z vectors given`);
      z = new Float32Array(n * c.dz);
      list.forEach((r, i) => z.set(vector(r, c.dz, n === 1 ? "z" : `z[${i}]`), i * c.dz));
      zFrom = "given";
    } else if (b.interpolate !== undefined) {
      const from = vector(b.interpolate.from, c.dz, "interpolate.from");
      const to = vector(b.interpolate.to, c.dz, "interpolate.to");
      n = b.interpolate.steps ?? 8;
      if (n > limits.maxImages)
        throw new ApiError("too-many-images", `${n} steps; the limit is ${limits.maxImages}`);
      z = new Float32Array(n * c.dz);
      for (let i = 0; i < n; i++) {
        const t = i / (n - 1);
        for (let j = 0; j < c.dz; j++) z[i * c.dz + j] = from[j] + t * (to[j] - from[j]);
      }
      zFrom = "interpolate";
      cols = n;
    } else if (fromImages) {
      const im = images(p, true);
      n = im.n;
      pre = im.pre;
      const vx = await queue.embedInvariant(im.x, n, ctx.signal);
      z = (await queue.run("equivariant", n, () => engine.encodeEquivariant(im.x, n, vx), ctx.signal)).mu;
      zFrom = "images";
    } else {
      n = b.count ?? 1;
      if (n > limits.maxImages)
        throw new ApiError("too-many-images", `count ${n}; the limit is ${limits.maxImages}`);
      const rng = new Rng(b.seed ?? 0);
      z = Float32Array.from({ length: n * c.dz }, () => {
        const u = Math.max(rng.next(), 1e-12);
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
      });
      zFrom = "prior";
    }
    const vs = repeat(v, n);
    const out = await queue.run("decode", n, () => engine.decode(vs, z, n), ctx.signal);
    if (res.headersSent) return;
    const format =
      b.format ?? (req.accepts(["application/json", "image/png"]) === "image/png" ? "png" : "json");
    if (format === "json") {
      res.json({
        shape: [c.height, c.width, c.channels],
        images: rows(out, px),
        v: Array.from(v),
        z: rows(z, c.dz),
        z_from: zFrom,
        ...(pre ? { preprocessing: pre } : {}),
      } satisfies Schemas["GenerateResponse"]);
      return;
    }
    let png: Buffer;
    if (format === "png" && n === 1) png = encodePng(out, c.height, c.width, c.channels);
    else {
      const g = tile(out, n, c.height, c.width, c.channels, cols ?? Math.ceil(Math.sqrt(n)));
      png = encodePng(g.data, g.height, g.width, c.channels);
    }
    res.type("image/png").send(png);
  });

  router.post("/embed/invariant", gate, embedInvariant);
  router.post("/embed/equivariant", gate, embedEquivariant);
  router.post("/classify", gate, classifyRoute);
  router.post("/generate", gate, generate);

  app.use("/v1", router);
  app.use("/", router);

  app.use((req: Request, res: Response) => {
    const known = (INFERENCE_ROUTES as readonly string[]).includes(req.path.replace(/^\/v1/, ""));
    sendProblem(
      req,
      res,
      "not-found",
      known ? `use POST for ${req.path}` : `no route ${req.method} ${req.path}`,
    );
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const k = classify(err);
    if (k) return sendProblem(req, res, k.kind, k.detail, k.extra);
    if (err instanceof UserError) log(`engine refused a request: ${err.message}`);
    else
      log(
        `internal error on ${req.method} ${req.originalUrl}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
    sendProblem(req, res, "internal", "an unexpected error occurred; it has been logged");
  });

  return Object.assign(app, {
    state,
    metrics,
    queue,
    limits,
    ready,
    inflight: () => inflight,
  });
}

/** The error kinds and statuses, for tests and docs. */
export const ERROR_STATUSES = Object.fromEntries(Object.entries(ERROR_TABLE).map(([k, v]) => [k, v.status]));
