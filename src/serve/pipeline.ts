/**
 * The path every inference request takes: read the body (no slot held) -> validate and check the
 * images' declared sizes -> admit by cost (429) -> decode on the worker threads -> the route's
 * inference through the batching queue -> reply. Probes never pass through here.
 */
import type { NextFunction, Request, Response } from "express";
import type { Preprocessing } from "../imaging/index.js";
import type { Admission } from "./admission.js";
import { discardRest, readRequestBody, refusedBodyDone } from "./body.js";
import type { Limits } from "./config.js";
import { answerError, sendProblem } from "./error-mapper.js";
import { ApiError } from "./errors.js";
import { decodeInputs, prepareInputs, type RequestInputs } from "./inputs.js";
import type { ServeMetrics } from "./metrics.js";
import type { ModelRepository, ServedModel } from "./models.js";
import { addMs, startWork } from "./request-log.js";
import type { Spec } from "./spec.js";

/** What the routes share. */
export interface ServeDeps {
  models: ModelRepository;
  admission: Admission;
  limits: Limits;
  spec: Spec;
  metrics: ServeMetrics;
  log: (m: string) => void;
}

export interface DecodedImages {
  x: Float32Array;
  n: number;
  pre: Preprocessing[];
}

/** One admitted request, as a route handler sees it. */
export interface Call {
  req: Request;
  res: Response;
  /** The model version serving this request (held until it is answered, whatever reloads meanwhile). */
  model: ServedModel;
  body: Record<string, any>;
  inputs: RequestInputs;
  /** Aborts at the deadline or when the client goes away: pass it to every queued job. */
  signal: AbortSignal;
  /** The request's images as one model batch (decoded once, on the worker threads); throws when there are none. */
  images(): Promise<DecodedImages>;
}

/** An Express handler running one inference route through the pipeline. */
export function inferenceRoute(deps: ServeDeps, operationId: string, handler: (call: Call) => Promise<void>) {
  return async (req: Request, res: Response, _next: NextFunction): Promise<void> => {
    try {
      const model = acquireModel(deps.models, req, res);
      const c = model.engine.config;
      const shape = { height: c.height, width: c.width, channels: c.channels };
      const parsed = await readRequestBody(req, deps.limits);
      res.locals.bytesIn = parsed.bytes;
      const inputs = prepareInputs(parsed, operationId, deps.spec, shape, deps.limits);
      res.locals.images = inputs.count;
      const ticket = deps.admission.admit(res, inputs.pixels, (e) =>
        sendProblem(req, res, e.kind, e.message),
      );
      // The request log's work, decode, queue and inference times (src/serve/request-log.ts).
      const work = startWork(res, ticket.signal);
      let decoded: Promise<DecodedImages> | undefined;
      const images = () =>
        (decoded ??= (async () => {
          if (inputs.count === 0)
            throw new ApiError(
              "validation-failed",
              "no images: upload 'image' files or send 'images' or 'pixels'",
            );
          if (inputs.encoded.length > 0) deps.metrics.imagesDecoded.inc(inputs.encoded.length);
          const t0 = performance.now();
          try {
            return await decodeInputs(inputs, model.decoder, shape, deps.limits);
          } finally {
            addMs(work, "decodeMs", performance.now() - t0);
          }
        })());
      try {
        await handler({ req, res, model, body: inputs.body, inputs, signal: ticket.signal, images });
      } finally {
        ticket.release();
        work.workMs = performance.now() - work.admittedAt!;
      }
    } catch (e) {
      if (res.headersSent) return; // answered already (timeout); the late failure is moot
      // Refused before its body was read (not ready, 415, 413): drop the rest of the body first.
      if (!(e instanceof ApiError && e.kind === "body-timeout")) discardRest(req, deps.limits);
      await refusedBodyDone(req);
      answerError(e, req, res, deps.log);
    }
  };
}

/**
 * The version of the request's model (`/v1/models/{id}/...`, else the default model) that will
 * serve it, leased until the response closes; named in X-Model-Version. 404 for an unknown model,
 * 503 for one that is not serving.
 */
export function acquireModel(models: ModelRepository, req: Request, res: Response): ServedModel {
  const id = (req.params as { id?: string }).id ?? models.defaultModel;
  const entry = models.get(id);
  if (!entry) throw new ApiError("unknown-model", `no model '${id}' (GET /v1/models lists them)`);
  const model = models.acquire(id);
  if (!model)
    throw new ApiError(
      "not-ready",
      entry.state === "loading"
        ? `model '${id}' is loading`
        : `model '${id}' is ${entry.state}${entry.failure ? `: ${entry.failure.reason}` : ""}`,
    );
  res.once("close", () => models.release(model));
  res.setHeader("X-Model-Version", model.version);
  res.locals.model = model.id;
  res.locals.version = model.version;
  return model;
}

/** Splits a row-major [n, d] array into rows of plain numbers (for JSON). */
export function rows(a: Float32Array, d: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < a.length; i += d) out.push(Array.from(a.subarray(i, i + d)));
  return out;
}
