import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { QueueObserver } from "../inference/queue.js";

/** The service's Prometheus metrics, in a registry of its own (one per app). */
export class ServeMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"route" | "method" | "status" | "model" | "version">;
  readonly latency: Histogram<"route" | "method" | "status" | "model" | "version">;
  readonly queueWait: Histogram<"op" | "model" | "version">;
  readonly inference: Histogram<"op" | "model" | "version">;
  readonly batchSize: Histogram<"op" | "model" | "version">;
  readonly modelLoads: Counter<"model" | "result">;
  readonly inflight: Gauge;
  readonly queueDepth: Gauge;
  readonly imagesDecoded: Counter;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "equivae_" });
    this.requests = new Counter({
      name: "equivae_http_requests_total",
      help: "HTTP requests by route, method, status and the model version that served them",
      labelNames: ["route", "method", "status", "model", "version"],
      registers,
    });
    this.latency = new Histogram({
      name: "equivae_http_request_duration_seconds",
      help: "HTTP request latency by route, method, status and model version",
      labelNames: ["route", "method", "status", "model", "version"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.queueWait = new Histogram({
      name: "equivae_queue_wait_seconds",
      help: "Time inference work waited in the queue before an engine call",
      labelNames: ["op", "model", "version"],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    this.inference = new Histogram({
      name: "equivae_inference_duration_seconds",
      help: "Engine call duration by operation",
      labelNames: ["op", "model", "version"],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    this.batchSize = new Histogram({
      name: "equivae_inference_batch_size",
      help: "Images (or vectors) per engine call, after coalescing",
      labelNames: ["op", "model", "version"],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers,
    });
    this.inflight = new Gauge({
      name: "equivae_requests_in_flight",
      help: "Admitted requests in flight",
      registers,
    });
    this.queueDepth = new Gauge({ name: "equivae_queue_depth", help: "Inference jobs waiting", registers });
    this.modelLoads = new Counter({
      name: "equivae_model_loads_total",
      help: "Model version loads by model and result (ok, or failed: the previous version keeps serving)",
      labelNames: ["model", "result"],
      registers,
    });
    this.imagesDecoded = new Counter({
      name: "equivae_images_decoded_total",
      help: "Encoded images handed to the decoder (an image refused from its header never is)",
      registers,
    });
  }

  /** A model version's batching queue's reports as these metrics. */
  queueObserver(model: string, version: string): QueueObserver {
    return {
      depth: (n) => this.queueDepth.set(n),
      waited: (op, s) => this.queueWait.labels(op, model, version).observe(s),
      ran: (op, rows, s) => {
        this.batchSize.labels(op, model, version).observe(rows);
        this.inference.labels(op, model, version).observe(s);
      },
    };
  }
}
