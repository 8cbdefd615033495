/**
 * The routes that never touch inference: probes, metrics, model info, the spec and the docs. They
 * answer from the HTTP thread at once whatever the load (decoding and inference run on workers),
 * and are also served on the admin port when there is one.
 */
import { Router, type Request } from "express";
import type { components } from "../../generated/openapi.js";
import { errorMessage } from "../../util/errors.js";
import { MIN_IMAGE_SIDE, type Limits } from "../config.js";
import { sendProblem } from "../error-mapper.js";
import { ApiError } from "../errors.js";
import type { ServeMetrics } from "../metrics.js";
import type { ModelEntry, ModelRepository } from "../models.js";

type Schemas = components["schemas"];

export interface ServeState {
  ready: boolean;
  /** Set on SIGTERM: /readyz answers 503 while requests are still served. */
  draining: boolean;
  warmUpError?: string;
}

/** GET /healthz, /readyz (the default model serves, and no drain) and /metrics. */
export function probeRoutes(state: ServeState, metrics: ServeMetrics, models: ModelRepository): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => void res.json({ status: "ok" }));
  router.get("/readyz", (req, res) => {
    if (state.draining) return sendProblem(req, res, "shutting-down", "the server is draining");
    const entry = state.ready ? models.get(models.defaultModel) : undefined;
    if (entry?.state !== "ready")
      return sendProblem(
        req,
        res,
        "not-ready",
        state.warmUpError
          ? `warm-up failed: ${state.warmUpError}`
          : entry
            ? `the default model is ${entry.state}`
            : "warming up",
      );
    res.json({ status: "ready" });
  });
  router.get("/metrics", async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}

/** What /v1/models says of one model: its state and, while a version serves, what it is (no host paths). */
function modelInfo(entry: ModelEntry, limits: Limits, isDefault: boolean): Schemas["ModelInfo"] {
  const base = {
    id: entry.id,
    state: entry.state,
    default: isDefault,
    ...(entry.failure ? { failure: entry.failure } : {}),
  };
  const m = entry.current;
  if (!m) return base as Schemas["ModelInfo"];
  const { engine } = m;
  const c = engine.config;
  const man = engine.manifest;
  return {
    ...base,
    version: m.version,
    engine: engine.kind,
    device: (engine.device ?? "cpu") as Schemas["ModelInfo"]["device"],
    execution_provider: engine.executionProvider ?? "CPUExecutionProvider",
    dataset: man.dataset?.name,
    created_at: man.createdAt,
    parameter_count: man.parameterCount,
    input: { height: c.height, width: c.width, channels: c.channels },
    dv: c.dv,
    dz: c.dz,
    classes: engine.classNames,
    likelihood: c.likelihood,
    standardised: c.standardise === true,
    classify_methods: engine.hasPosterior ? ["centroid", "posterior"] : ["centroid"],
    metrics: (man.metrics ?? null) as Record<string, unknown> | null,
    evaluation: (man.evaluation ?? null) as Record<string, unknown> | null,
    z_activity: man.zActivity
      ? {
          split: man.zActivity.split,
          n: man.zActivity.n,
          kl_per_dim: man.zActivity.klPerDim,
          threshold_nats: man.zActivity.thresholdNats,
          active_dims: man.zActivity.activeDims,
        }
      : null,
    limits: {
      max_body_bytes: limits.maxBodyBytes,
      max_images: limits.maxImages,
      max_pixels: limits.maxPixels,
      max_request_pixels: limits.maxRequestPixels,
      max_inflight_pixels: limits.maxInflightPixels,
      max_concurrent: limits.maxConcurrent,
      body_timeout_ms: limits.bodyTimeoutMs,
      timeout_ms: limits.timeoutMs,
      min_image_side: MIN_IMAGE_SIDE,
    },
  };
}

/** GET /models, /models/{id}, /models/{id}/ready, /openapi.yaml and /docs. */
export function infoRoutes(
  models: ModelRepository,
  limits: Limits,
  spec: { text: string },
  docsHtml: string,
): Router {
  const router = Router();
  const entryOf = (req: Request) => {
    const entry = models.get(req.params.id);
    if (!entry)
      throw new ApiError("unknown-model", `no model '${req.params.id}' (GET /v1/models lists them)`);
    return entry;
  };
  router.get("/models", (_req, res) => {
    const list = models.list().map((e) => modelInfo(e, limits, e.id === models.defaultModel));
    res.json({ models: list, default_model: models.defaultModel } satisfies Schemas["ModelsResponse"]);
  });
  router.get("/models/:id", (req, res) => {
    const e = entryOf(req);
    res.json(modelInfo(e, limits, e.id === models.defaultModel));
  });
  router.get("/models/:id/ready", (req, res) => {
    const e = entryOf(req);
    if (e.state !== "ready")
      return sendProblem(
        req,
        res,
        "not-ready",
        `model '${e.id}' is ${e.state}${e.failure ? `: ${e.failure.reason}` : ""}`,
      );
    res.setHeader("X-Model-Version", e.current!.version);
    res.json({ status: "ready", version: e.current!.version });
  });
  router.get("/openapi.yaml", (_req, res) => void res.type("application/yaml").send(spec.text));
  router.get("/docs", (_req, res) => void res.type("text/html").send(docsHtml));
  return router;
}

/** POST /models/{id}/load (load it, or its new version) and /models/{id}/unload (Triton's explicit mode). */
export function modelAdminRoutes(models: ModelRepository, log: (m: string) => void): Router {
  const router = Router();
  router.post("/models/:id/load", async (req, res, next) => {
    try {
      const id = req.params.id;
      if (models.source.kind === "engine")
        throw new ApiError(
          "method-unavailable",
          "this server was given its model in memory: there is nothing to load from",
        );
      if (!models.get(id) && !models.canLoad(id))
        throw new ApiError("unknown-model", `no model '${id}' in the repository`);
      try {
        await models.load(id);
      } catch (e) {
        throw new ApiError("model-load-failed", `model '${id}': ${errorMessage(e)}`);
      }
      const e = models.get(id)!;
      log(`model ${id}: load requested over HTTP; serving version ${e.current?.version}`);
      res.setHeader("X-Model-Version", e.current!.version);
      res.locals.model = id;
      res.locals.version = e.current!.version;
      res.json({ id, state: e.state, version: e.current!.version });
    } catch (e) {
      next(e);
    }
  });
  router.post("/models/:id/unload", async (req, res, next) => {
    try {
      const id = req.params.id;
      if (!models.get(id)) throw new ApiError("unknown-model", `no model '${id}'`);
      await models.unload(id);
      res.json({ id, state: "unloaded" });
    } catch (e) {
      next(e);
    }
  });
  return router;
}
