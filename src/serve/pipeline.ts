/**
 * The path every inference request takes: read the body (no slot held) -> validate and check the
 * images' declared sizes -> admit by cost (429) -> decode on the worker threads -> the route's
 * inference through the batching queue -> reply. Probes never pass through here.
 */
import type { NextFunction, Request, Response } from "express";
import type { Engine } from "../inference/index.js";
import type { BatchQueue } from "../inference/queue.js";
import type { ImageDecoder, ModelInput, Preprocessing } from "../imaging/index.js";
import type { Admission } from "./admission.js";
import { discardRest, readRequestBody, refusedBodyDone } from "./body.js";
import type { Limits } from "./config.js";
import { answerError, sendProblem } from "./error-mapper.js";
import { ApiError } from "./errors.js";
import { decodeInputs, prepareInputs, type RequestInputs } from "./inputs.js";
import type { ServeMetrics } from "./metrics.js";
import type { Spec } from "./spec.js";

/** What the routes share. */
export interface ServeDeps {
  engine: Engine;
  queue: BatchQueue;
  decoder: ImageDecoder;
  admission: Admission;
  limits: Limits;
  spec: Spec;
  metrics: ServeMetrics;
  model: ModelInput;
  log: (m: string) => void;
  /** Whether the model warmed up (inference routes answer 503 not-ready before). */
  isReady: () => boolean;
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
      if (!deps.isReady()) throw new ApiError("not-ready", "the model is warming up");
      const parsed = await readRequestBody(req, deps.limits);
      const inputs = prepareInputs(parsed, operationId, deps.spec, deps.model, deps.limits);
      const ticket = deps.admission.admit(res, inputs.pixels, (e) =>
        sendProblem(req, res, e.kind, e.message),
      );
      let decoded: Promise<DecodedImages> | undefined;
      const images = () =>
        (decoded ??= (async () => {
          if (inputs.count === 0)
            throw new ApiError(
              "validation-failed",
              "no images: upload 'image' files or send 'images' or 'pixels'",
            );
          if (inputs.encoded.length > 0) deps.metrics.imagesDecoded.inc(inputs.encoded.length);
          return decodeInputs(inputs, deps.decoder, deps.model, deps.limits);
        })());
      try {
        await handler({ req, res, body: inputs.body, inputs, signal: ticket.signal, images });
      } finally {
        ticket.release();
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

/** Splits a row-major [n, d] array into rows of plain numbers (for JSON). */
export function rows(a: Float32Array, d: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < a.length; i += d) out.push(Array.from(a.subarray(i, i + d)));
  return out;
}
