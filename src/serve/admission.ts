/**
 * Admission by cost, after the body has arrived and before any decoding or inference: a request
 * takes one of `maxConcurrent` slots and its pixels (from the image headers) out of the in-flight
 * pixel budget, or gets 429 at once. An admitted request holds a deadline (`timeoutMs`) and an
 * abort signal that fires on the deadline or when the client goes away, so that its waiting work
 * is dropped before it costs inference.
 */
import type { Response } from "express";
import type { Limits } from "./config.js";
import { ApiError } from "./errors.js";
import type { ServeMetrics } from "./metrics.js";

/** Requests of at most this many pixels (a few 128x128 images) are admitted whatever the pixel budget. */
export const SMALL_REQUEST_PIXELS = 65_536;

/** The abort reason of a request that was answered or whose client went away (one object: no stack per request). */
const DONE = new ApiError("timeout", "the request was answered or its client went away");

export interface Ticket {
  signal: AbortSignal;
  /** Gives the slot and pixels back (idempotent; also done when the response closes). */
  release(): void;
}

export class Admission {
  private requests = 0;
  private pixels = 0;

  constructor(
    private readonly limits: Limits,
    private readonly metrics: ServeMetrics,
  ) {}

  /** Requests admitted and not yet answered. */
  get inflight(): number {
    return this.requests;
  }

  /** Pixels of admitted requests not yet answered. */
  get inflightPixels(): number {
    return this.pixels;
  }

  /** Admits a request of `pixels` pixels, or throws 429. `onTimeout` answers the request when its deadline passes. */
  admit(res: Response, pixels: number, onTimeout: (e: ApiError) => void): Ticket {
    const { maxConcurrent, maxInflightPixels, timeoutMs } = this.limits;
    if (this.requests >= maxConcurrent)
      throw new ApiError("too-many-requests", `${maxConcurrent} requests are in flight (the limit)`);
    // Small requests (a digit or two) are not held to the budget: large ones cannot starve them.
    // A large request over the whole budget still runs alone (the per-request limit bounds it).
    const counted = pixels > SMALL_REQUEST_PIXELS ? pixels : 0;
    if (counted > 0 && this.pixels > 0 && this.pixels + counted > maxInflightPixels)
      throw new ApiError(
        "too-many-requests",
        `${this.pixels} pixels are being decoded or inferred; ${pixels} more would pass the in-flight budget of ${maxInflightPixels}`,
      );
    this.requests++;
    this.pixels += counted;
    this.metrics.inflight.set(this.requests);
    const ac = new AbortController();
    const timer = setTimeout(() => {
      const e = new ApiError("timeout", `the request did not finish within ${timeoutMs} ms`);
      ac.abort(e);
      onTimeout(e);
    }, timeoutMs);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      this.requests--;
      this.pixels -= counted;
      this.metrics.inflight.set(this.requests);
      if (!ac.signal.aborted) ac.abort(DONE);
    };
    res.once("close", release);
    return { signal: ac.signal, release };
  }
}
