/**
 * The HTTP application: probes and model info (answered at once on this thread), the four
 * inference routes (src/serve/routes, through src/serve/pipeline), and the error mapper. Decoding
 * and inference run on the decoder's and the engine's threads (worker threads with the pooled ONNX
 * engine); this thread parses, admits, batches and replies.
 */
import express, { type NextFunction, type Request, type Response } from "express";
import { inlineDecoder, type ImageDecoder } from "../imaging/index.js";
import type { Engine } from "../inference/index.js";
import { BatchQueue, engineRunner } from "../inference/queue.js";
import { Admission } from "./admission.js";
import { DEFAULT_LIMITS, type Limits, type ServeOptions } from "./config.js";
import { renderDocs } from "./docs.js";
import { answerError, sendProblem } from "./error-mapper.js";
import { ERROR_TABLE } from "./errors.js";
import { ServeMetrics } from "./metrics.js";
import type { ServeDeps } from "./pipeline.js";
import { classifyRoutes } from "./routes/classify.js";
import { embedRoutes } from "./routes/embed.js";
import { generateRoutes } from "./routes/generate.js";
import { infoRoutes, probeRoutes, type ServeState } from "./routes/probes.js";
import { loadSpec } from "./spec.js";

export type { ServeState } from "./routes/probes.js";

export interface AppOptions extends ServeOptions {
  /** Where images are decoded (default: the engine's own decoder if it has one — the worker pool —, else this thread). */
  decoder?: ImageDecoder;
}

export type ServeApp = express.Express & {
  state: ServeState;
  metrics: ServeMetrics;
  queue: BatchQueue;
  limits: Limits;
  /** Resolves once the warm-up inference finished (true: it succeeded). */
  ready: Promise<boolean>;
  /** Requests admitted and not yet answered. */
  inflight: () => number;
  /** The probe routes alone (/healthz, /readyz, /metrics), for an admin port. */
  probes: express.Router;
};

const INFERENCE_ROUTES = ["/embed/invariant", "/embed/equivariant", "/classify", "/generate"] as const;

/** Runs one classify on a blank image; /readyz turns 200 when it succeeded. */
function warmUp(engine: Engine, state: ServeState, log: (m: string) => void): Promise<boolean> {
  const c = engine.config;
  return (async () => {
    try {
      await engine.classify(new Float32Array(c.height * c.width * c.channels), 1, 1);
      state.ready = true;
      return true;
    } catch (e) {
      state.warmUpError = e instanceof Error ? e.message : String(e);
      log(`warm-up inference failed: ${state.warmUpError}`);
      return false;
    }
  })();
}

/** Counts every request by its canonical route (the /v1 alias shares the label). */
function requestMetrics(metrics: ServeMetrics) {
  return (req: Request, res: Response, next: NextFunction) => {
    const t0 = performance.now();
    res.on("finish", () => {
      const route = req.route ? String(req.route.path) : "unmatched";
      const labels = { route, method: req.method, status: String(res.statusCode) };
      metrics.requests.inc(labels);
      metrics.latency.observe(labels, (performance.now() - t0) / 1000);
    });
    next();
  };
}

export function createApp(engine: Engine, options: AppOptions = {}): ServeApp {
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const log = options.log ?? ((m: string) => console.error(m));
  const spec = loadSpec();
  const metrics = new ServeMetrics();
  const queue = new BatchQueue(engineRunner(engine), {
    concurrency: options.engineConcurrency ?? 1,
    maxBatchSize: options.maxBatchSize ?? 64,
    maxBatchDelayUs: options.maxBatchDelayUs ?? 0,
    observer: metrics.queueObserver(),
  });
  const state: ServeState = { ready: false, draining: false };
  const ready = options.warmUp === false ? Promise.resolve((state.ready = true)) : warmUp(engine, state, log);
  const admission = new Admission(limits, metrics);
  const c = engine.config;
  const deps: ServeDeps = {
    engine,
    queue,
    decoder: options.decoder ?? (engine as { decoder?: ImageDecoder }).decoder ?? inlineDecoder,
    admission,
    limits,
    spec,
    metrics,
    model: { height: c.height, width: c.width, channels: c.channels },
    log,
    isReady: () => state.ready,
  };

  const app = express() as unknown as ServeApp;
  app.disable("x-powered-by");
  app.set("etag", false);
  app.use(requestMetrics(metrics));
  // During the drain every answer closes its connection, so keep-alive clients move elsewhere.
  app.use((_req, res, next) => {
    if (state.draining) res.setHeader("Connection", "close");
    next();
  });

  const probes = probeRoutes(state, metrics);
  const router = express.Router();
  router.use(probes);
  router.use(infoRoutes(engine, limits, options, spec, renderDocs(spec, limits)));
  embedRoutes(router, deps);
  classifyRoutes(router, deps);
  generateRoutes(router, deps);
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
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) =>
    answerError(err, req, res, log),
  );

  return Object.assign(app, {
    state,
    metrics,
    queue,
    limits,
    ready,
    inflight: () => admission.inflight,
    probes,
  });
}

/** The error kinds and statuses, for tests and docs. */
export const ERROR_STATUSES = Object.fromEntries(Object.entries(ERROR_TABLE).map(([k, v]) => [k, v.status]));
