/**
 * The routes that never touch inference: probes, metrics, model info, the spec and the docs. They
 * answer from the HTTP thread at once whatever the load (decoding and inference run on workers),
 * and are also served on the admin port when there is one.
 */
import { Router } from "express";
import type { components } from "../../generated/openapi.js";
import type { Engine } from "../../inference/index.js";
import { MIN_IMAGE_SIDE, type Limits } from "../config.js";
import { sendProblem } from "../error-mapper.js";
import type { ServeMetrics } from "../metrics.js";

type Schemas = components["schemas"];

export interface ServeState {
  ready: boolean;
  /** Set on SIGTERM: /readyz answers 503 while requests are still served. */
  draining: boolean;
  warmUpError?: string;
}

/** GET /healthz, /readyz and /metrics. */
export function probeRoutes(state: ServeState, metrics: ServeMetrics): Router {
  const router = Router();
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
  return router;
}

export interface InfoOptions {
  modelId?: string;
  modelDir?: string;
}

/** GET /models, /openapi.yaml and /docs. */
export function infoRoutes(
  engine: Engine,
  limits: Limits,
  opts: InfoOptions,
  spec: { text: string },
  docsHtml: string,
): Router {
  const router = Router();
  const c = engine.config;
  router.get("/models", (_req, res) => {
    const m = engine.manifest;
    const info: Schemas["ModelInfo"] = {
      id: opts.modelId ?? m.dataset?.name ?? "model",
      dir: opts.modelDir,
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
        max_request_pixels: limits.maxRequestPixels,
        max_inflight_pixels: limits.maxInflightPixels,
        max_concurrent: limits.maxConcurrent,
        body_timeout_ms: limits.bodyTimeoutMs,
        timeout_ms: limits.timeoutMs,
        min_image_side: MIN_IMAGE_SIDE,
      },
    };
    res.json({ models: [info] } satisfies Schemas["ModelsResponse"]);
  });
  router.get("/openapi.yaml", (_req, res) => void res.type("application/yaml").send(spec.text));
  router.get("/docs", (_req, res) => void res.type("text/html").send(docsHtml));
  return router;
}
