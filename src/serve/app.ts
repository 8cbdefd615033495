/**
 * The HTTP application: probes and model info (answered at once on this thread), the four
 * inference routes for the default model and under /v1/models/{id}/ (src/serve/routes, through
 * src/serve/pipeline), model load/unload, and the error mapper. Decoding and inference run on each
 * model's decoder and engine threads (worker threads with the pooled ONNX engine); this thread
 * parses, admits, batches and replies.
 */
import { createHash } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import { inlineDecoder, type ImageDecoder } from "../imaging/index.js";
import type { Engine } from "../inference/index.js";
import { BatchQueue, engineRunner } from "../inference/queue.js";
import { Admission } from "./admission.js";
import { DEFAULT_LIMITS, type Limits, type ServeOptions } from "./config.js";
import { demoRoutes } from "./demo.js";
import { renderDocs } from "./docs.js";
import { answerError, sendProblem } from "./error-mapper.js";
import { ERROR_TABLE } from "./errors.js";
import { ServeMetrics } from "./metrics.js";
import { ModelRepository, type ModelSource, type ServedModel } from "./models.js";
import type { ServeDeps } from "./pipeline.js";
import { installProduction, type ProductionOptions } from "./production.js";
import { jobTimed } from "./request-log.js";
import { classifyRoutes } from "./routes/classify.js";
import { embedRoutes } from "./routes/embed.js";
import { generateRoutes } from "./routes/generate.js";
import { infoRoutes, modelAdminRoutes, probeRoutes, type ServeState } from "./routes/probes.js";
import { loadSpec } from "./spec.js";

export type { ServeState } from "./routes/probes.js";

export interface AppOptions extends ServeOptions, ProductionOptions {
  /** Where images are decoded (default: the engine's own decoder if it has one — the worker pool —, else this thread). */
  decoder?: ImageDecoder;
  /** The served model's version when createApp is given an engine (default: a hash of its manifest). */
  modelVersion?: string;
}

export type ServeApp = express.Express & {
  state: ServeState;
  metrics: ServeMetrics;
  models: ModelRepository;
  /** The default model's batching queue (undefined while it is not serving). */
  readonly queue: BatchQueue | undefined;
  limits: Limits;
  /** Resolves once every model has loaded or failed (true: the default model serves). */
  ready: Promise<boolean>;
  /** Requests admitted and not yet answered. */
  inflight: () => number;
  /** The probe routes alone (/healthz, /readyz, /metrics), for an admin port. */
  probes: express.Router;
  /** Re-reads --api-key-file (SIGHUP); the number of keys now in force. Throws, keeping the old keys, on a bad file. */
  reloadKeys: () => number;
  /** API keys in force (0: every route is open). */
  apiKeyCount: () => number;
};

const INFERENCE_ROUTES = ["/embed/invariant", "/embed/equivariant", "/classify", "/generate"] as const;

/** Counts every request by its canonical route and model (the /v1 alias shares the label). */
function requestMetrics(metrics: ServeMetrics) {
  return (req: Request, res: Response, next: NextFunction) => {
    const t0 = performance.now();
    res.on("finish", () => {
      const route = req.route ? String(req.baseUrl.replace(/^\/v1/, "") + req.route.path) : "unmatched";
      const labels = {
        route: route.replace(/^\/models\/[^/]+/, "/models/:id"),
        method: req.method,
        status: String(res.statusCode),
        model: String(res.locals.model ?? ""),
        version: String(res.locals.version ?? ""),
      };
      metrics.requests.inc(labels);
      metrics.latency.observe(labels, (performance.now() - t0) / 1000);
    });
    next();
  };
}

/** The version of an engine's checkpoint: a hash of its manifest. */
function engineVersion(engine: Engine): string {
  return createHash("sha256").update(JSON.stringify(engine.manifest)).digest("hex").slice(0, 12);
}

/** One model, already loaded (tests, tools and the TF.js engine). */
export function createApp(engine: Engine, options: AppOptions = {}): ServeApp {
  const id = options.modelId ?? engine.manifest.dataset?.name ?? "model";
  const version = options.modelVersion ?? engineVersion(engine);
  return createRepositoryApp({ kind: "engine", engine, id, version }, options);
}

/** The models of a source (a repository folder, one checkpoint folder, or an engine), loaded in the background. */
export function createRepositoryApp(
  source: ModelSource,
  options: AppOptions & { defaultModel?: string } = {},
): ServeApp {
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const log = options.log ?? ((m: string) => console.error(m));
  const spec = loadSpec();
  const metrics = new ServeMetrics();
  const state: ServeState = { ready: false, draining: false };
  const models = new ModelRepository(source, options.defaultModel);
  const serve = (mid: string, mversion: string, engine: Engine): ServedModel => ({
    id: mid,
    version: mversion,
    engine,
    queue: new BatchQueue(engineRunner(engine), {
      concurrency: (engine as { workers?: number }).workers ?? options.engineConcurrency ?? 1,
      maxBatchSize: options.maxBatchSize ?? 64,
      maxBatchDelayUs: options.maxBatchDelayUs ?? 0,
      observer: { ...metrics.queueObserver(mid, mversion), timed: jobTimed },
    }),
    decoder: options.decoder ?? (engine as { decoder?: ImageDecoder }).decoder ?? inlineDecoder,
  });
  const ready = models
    .start({
      serve,
      warmUp: async (engine) => {
        if (options.warmUp === false) return;
        const c = engine.config;
        await engine.classify(new Float32Array(c.height * c.width * c.channels), 1, 1);
      },
      log,
      loaded: (mid, _v, ok) => metrics.modelLoads.inc({ model: mid, result: ok ? "ok" : "failed" }),
    })
    .then(() => {
      const entry = models.get(models.defaultModel);
      if (entry?.state !== "ready") state.warmUpError = entry?.failure?.reason ?? "not loaded";
      return (state.ready = entry?.state === "ready");
    })
    .catch((e: unknown) => {
      state.warmUpError = e instanceof Error ? e.message : String(e);
      log(`models: ${state.warmUpError}`);
      return false;
    });
  const admission = new Admission(limits, metrics);
  const deps: ServeDeps = { models, admission, limits, spec, metrics, log };

  const app = express() as unknown as ServeApp;
  app.disable("x-powered-by");
  app.set("etag", false);
  app.use(requestMetrics(metrics));
  // During the drain every answer closes its connection, so keep-alive clients move elsewhere.
  app.use((_req, res, next) => {
    if (state.draining) res.setHeader("Connection", "close");
    next();
  });
  // Request id and log, security headers, CORS, then API keys (src/serve/production.ts).
  const keys = installProduction(app, options, limits);
  Object.assign(app, { reloadKeys: () => keys.reload(), apiKeyCount: () => keys.size });

  const probes = probeRoutes(state, metrics, models);
  const inference = express.Router({ mergeParams: true });
  embedRoutes(inference, deps);
  classifyRoutes(inference, deps);
  generateRoutes(inference, deps);
  const router = express.Router();
  router.use(probes);
  router.use(infoRoutes(models, limits, spec, renderDocs(spec, limits)));
  router.use(modelAdminRoutes(models, log));
  router.use("/models/:id", inference);
  router.use(inference);
  app.use("/v1", router);
  app.use("/", router);
  // The demo page at / and its assets (not under /v1: it is no API).
  app.use(demoRoutes(log));

  app.use((req: Request, res: Response) => {
    const path = req.path.replace(/^\/v1/, "").replace(/^\/models\/[^/]+/, "");
    const known = (INFERENCE_ROUTES as readonly string[]).includes(path);
    sendProblem(
      req,
      res,
      "not-found",
      known ? `use POST for ${req.path}` : `no route ${req.method} ${req.path}`,
    );
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) =>
    answerError(err, req, res, log),
  );

  return Object.defineProperties(
    Object.assign(app, { state, metrics, models, limits, ready, inflight: () => admission.inflight, probes }),
    { queue: { get: () => models.get(models.defaultModel)?.current?.queue } },
  ) as ServeApp;
}

/** The error kinds and statuses, for tests and docs. */
export const ERROR_STATUSES = Object.fromEntries(Object.entries(ERROR_TABLE).map(([k, v]) => [k, v.status]));
