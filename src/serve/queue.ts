import type { Engine } from "../inference/index.js";
import { ApiError } from "./errors.js";
import type { ServeMetrics } from "./metrics.js";

interface Job {
  op: string;
  /** Images (or rows) in this job, for batch metrics and coalescing. */
  size: number;
  enqueued: number;
  /** For coalescable invariant embeddings: the job's images. */
  x?: Float32Array;
  run?: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * The inference queue, apart from HTTP: at most `concurrency` engine calls run at once; work waits
 * in FIFO order. Invariant embeddings that wait together are coalesced into one engine call of up
 * to `maxBatchImages` images (micro-batching), and each caller gets its own rows back.
 * A job whose signal aborts while it waits is dropped (its promise rejects with the abort reason).
 */
export class InferenceQueue {
  private readonly pending: Job[] = [];
  private active = 0;

  constructor(
    private readonly engine: Engine,
    private readonly opts: { concurrency: number; maxBatchImages: number; metrics?: ServeMetrics },
  ) {}

  get waiting(): number {
    return this.pending.length;
  }

  get running(): number {
    return this.active;
  }

  /** Resolves when nothing waits or runs (used before the engine is released at shutdown). */
  async idle(): Promise<void> {
    while (this.active > 0 || this.pending.length > 0) await new Promise((r) => setTimeout(r, 5));
  }

  /** n = 1 invariant embeddings of n images (coalesced with other waiting embeddings). */
  embedInvariant(x: Float32Array, n: number, signal?: AbortSignal): Promise<Float32Array> {
    return this.enqueue({ op: "invariant", size: n, x }, signal) as Promise<Float32Array>;
  }

  /** Any other engine work, run alone. */
  run<T>(op: string, size: number, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.enqueue({ op, size, run: fn }, signal) as Promise<T>;
  }

  private enqueue(j: Pick<Job, "op" | "size" | "x" | "run">, signal?: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const job: Job = { ...j, enqueued: performance.now(), resolve, reject, signal };
      if (signal) {
        job.onAbort = () => {
          const i = this.pending.indexOf(job);
          if (i >= 0) {
            this.pending.splice(i, 1);
            this.opts.metrics?.queueDepth.set(this.pending.length);
            reject(signal.reason);
          }
        };
        signal.addEventListener("abort", job.onAbort, { once: true });
      }
      this.pending.push(job);
      this.opts.metrics?.queueDepth.set(this.pending.length);
      this.pump();
    });
  }

  private take(): Job[] {
    const first = this.pending.shift()!;
    const batch = [first];
    if (first.x) {
      let images = first.size;
      for (let i = 0; i < this.pending.length;) {
        const j = this.pending[i];
        if (j.x && images + j.size <= this.opts.maxBatchImages) {
          batch.push(j);
          images += j.size;
          this.pending.splice(i, 1);
        } else i++;
      }
    }
    this.opts.metrics?.queueDepth.set(this.pending.length);
    return batch;
  }

  private pump(): void {
    while (this.active < this.opts.concurrency && this.pending.length > 0) {
      const batch = this.take();
      this.active++;
      void this.execute(batch).finally(() => {
        this.active--;
        this.pump();
      });
    }
  }

  private async execute(batch: Job[]): Promise<void> {
    const m = this.opts.metrics;
    const now = performance.now();
    for (const j of batch) {
      if (j.signal && j.onAbort) j.signal.removeEventListener("abort", j.onAbort);
      m?.queueWait.labels(batch[0].op).observe((now - j.enqueued) / 1000);
    }
    const op = batch[0].op;
    const total = batch.reduce((a, j) => a + j.size, 0);
    m?.batchSize.labels(op).observe(total);
    const t0 = performance.now();
    try {
      if (batch[0].x) {
        let x: Float32Array;
        if (batch.length === 1) x = batch[0].x;
        else {
          x = new Float32Array(batch.reduce((a, j) => a + j.x!.length, 0));
          let o = 0;
          for (const j of batch) {
            x.set(j.x!, o);
            o += j.x!.length;
          }
        }
        const v = await this.engine.embedInvariant(x, total);
        const dv = v.length / total;
        let row = 0;
        for (const j of batch) {
          j.resolve(v.slice(row * dv, (row + j.size) * dv));
          row += j.size;
        }
      } else {
        batch[0].resolve(await batch[0].run!());
      }
    } catch (e) {
      for (const j of batch) j.reject(e);
    } finally {
      m?.inference.labels(op).observe((performance.now() - t0) / 1000);
    }
  }
}

/** The reason given to aborted work when a request times out. */
export function timeoutError(ms: number): ApiError {
  return new ApiError("timeout", `the request did not finish within ${ms} ms`);
}
