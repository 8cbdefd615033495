/**
 * The dynamic batching queue: the serving core apart from HTTP (after TEI's core/src/queue.rs).
 *
 * Callers submit row-wise work ("invariant" on n images, "decode" on n (v, z) pairs, ...). Jobs of
 * the same operation that wait together are concatenated into one engine call of at most
 * `maxBatchSize` rows, and each caller gets its own rows of every output back. At most
 * `concurrency` engine calls run at once (one per inference worker). A job whose signal aborts while
 * it waits (its client went away, or it timed out) is dropped before it costs any inference.
 *
 * With `maxBatchDelayUs` > 0 a batch that is not full waits up to that long after its oldest job
 * was queued for more work to join it: a little latency traded for larger batches under load.
 */

import type { Engine } from "./engine.js";

/** Runs one engine call over `rows` rows; every input and output is row-major [rows, d]. */
export type BatchRunner = (op: string, inputs: Float32Array[], rows: number) => Promise<Float32Array[]>;

/** What the queue reports (the serving layer turns it into Prometheus metrics). */
export interface QueueObserver {
  depth(waiting: number): void;
  waited(op: string, seconds: number): void;
  ran(op: string, rows: number, seconds: number): void;
  /** One job's wait and the run of the engine call that served it, by the signal it was submitted with. */
  timed?(signal: AbortSignal | undefined, waitedSeconds: number, ranSeconds: number): void;
}

export interface BatchQueueOptions {
  /** Engine calls running at once (default 1). */
  concurrency?: number;
  /** Most rows (images or vectors) in one coalesced engine call (default 64). */
  maxBatchSize?: number;
  /** Longest wait for a batch to fill, in microseconds (default 0: run what is there). */
  maxBatchDelayUs?: number;
  observer?: QueueObserver;
}

interface Job {
  op: string;
  rows: number;
  enqueued: number;
  /** Row-wise inputs (batchable work); undefined for work that runs alone. */
  inputs?: Float32Array[];
  alone?: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class BatchQueue {
  private readonly pending: Job[] = [];
  private active = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly concurrency: number;
  private readonly maxBatchSize: number;
  private readonly delayMs: number;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly runner: BatchRunner,
    private readonly opts: BatchQueueOptions = {},
  ) {
    this.concurrency = positive(opts.concurrency ?? 1, "concurrency");
    this.maxBatchSize = positive(opts.maxBatchSize ?? 64, "maxBatchSize");
    if (!(opts.maxBatchDelayUs === undefined || opts.maxBatchDelayUs >= 0))
      throw new RangeError(`maxBatchDelayUs must be >= 0 (got ${opts.maxBatchDelayUs})`);
    this.delayMs = (opts.maxBatchDelayUs ?? 0) / 1000;
  }

  /** Jobs waiting for an engine call. */
  get waiting(): number {
    return this.pending.length;
  }

  /** Engine calls running now. */
  get running(): number {
    return this.active;
  }

  /** Row-wise work, coalesced with other waiting work of the same op; resolves to this job's rows of each output. */
  submit(op: string, rows: number, inputs: Float32Array[], signal?: AbortSignal): Promise<Float32Array[]> {
    if (!Number.isInteger(rows) || rows < 1)
      throw new RangeError(`rows must be a positive integer (got ${rows})`);
    return this.enqueue({ op, rows, inputs }, signal) as Promise<Float32Array[]>;
  }

  /** Work that cannot be coalesced (a set embedding), run as an engine call of its own. */
  alone<T>(op: string, rows: number, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.enqueue({ op, rows, alone: fn }, signal) as Promise<T>;
  }

  /** Resolves when nothing waits or runs (before the engine is released at shutdown). */
  idle(): Promise<void> {
    if (this.active === 0 && this.pending.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private enqueue(j: Pick<Job, "op" | "rows" | "inputs" | "alone">, signal?: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const job: Job = { ...j, enqueued: performance.now(), resolve, reject, signal };
      if (signal) {
        job.onAbort = () => {
          const i = this.pending.indexOf(job);
          if (i < 0) return; // already running: its result is simply not used
          this.pending.splice(i, 1);
          this.opts.observer?.depth(this.pending.length);
          reject(signal.reason);
          this.settleIdle();
        };
        signal.addEventListener("abort", job.onAbort, { once: true });
      }
      this.pending.push(job);
      this.opts.observer?.depth(this.pending.length);
      this.pump();
    });
  }

  /** Rows of waiting work that could join a batch led by `op`. */
  private rowsWaiting(op: string): number {
    let n = 0;
    for (const j of this.pending) if (j.inputs && j.op === op) n += j.rows;
    return n;
  }

  private pump(): void {
    while (this.active < this.concurrency && this.pending.length > 0) {
      const first = this.pending[0];
      if (first.inputs && this.delayMs > 0 && this.rowsWaiting(first.op) < this.maxBatchSize) {
        const wait = first.enqueued + this.delayMs - performance.now();
        if (wait > 0) {
          this.timer ??= setTimeout(() => {
            this.timer = undefined;
            this.pump();
          }, wait);
          return;
        }
      }
      const batch = this.take();
      this.active++;
      void this.execute(batch).finally(() => {
        this.active--;
        this.pump();
        this.settleIdle();
      });
    }
  }

  /** The oldest job, and for row-wise work every later job of its op that still fits. */
  private take(): Job[] {
    const first = this.pending.shift()!;
    const batch = [first];
    if (first.inputs) {
      let rows = first.rows;
      for (let i = 0; i < this.pending.length && rows < this.maxBatchSize;) {
        const j = this.pending[i];
        if (j.inputs && j.op === first.op && rows + j.rows <= this.maxBatchSize) {
          batch.push(j);
          rows += j.rows;
          this.pending.splice(i, 1);
        } else i++;
      }
    }
    this.opts.observer?.depth(this.pending.length);
    return batch;
  }

  private async execute(batch: Job[]): Promise<void> {
    const obs = this.opts.observer;
    const now = performance.now();
    for (const j of batch) {
      if (j.signal && j.onAbort) j.signal.removeEventListener("abort", j.onAbort);
      obs?.waited(j.op, (now - j.enqueued) / 1000);
    }
    const op = batch[0].op;
    const rows = batch.reduce((a, j) => a + j.rows, 0);
    const t0 = performance.now();
    try {
      if (batch[0].alone) batch[0].resolve(await batch[0].alone());
      else {
        const outputs = await this.runner(op, concatInputs(batch), rows);
        splitOutputs(batch, outputs, rows);
      }
    } catch (e) {
      for (const j of batch) j.reject(e);
    } finally {
      const ran = (performance.now() - t0) / 1000;
      obs?.ran(op, rows, ran);
      if (obs?.timed) for (const j of batch) obs.timed(j.signal, (t0 - j.enqueued) / 1000, ran);
    }
  }

  private settleIdle(): void {
    if (this.active > 0 || this.pending.length > 0) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }
}

function positive(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${what} must be a positive integer (got ${n})`);
  return n;
}

/** Input k of the batch: the jobs' input k one after another (no copy for a batch of one). */
function concatInputs(batch: Job[]): Float32Array[] {
  if (batch.length === 1) return batch[0].inputs!;
  return batch[0].inputs!.map((_, k) => {
    const out = new Float32Array(batch.reduce((a, j) => a + j.inputs![k].length, 0));
    let o = 0;
    for (const j of batch) {
      out.set(j.inputs![k], o);
      o += j.inputs![k].length;
    }
    return out;
  });
}

/** Gives each job its rows of every output (row width = output length / total rows). */
function splitOutputs(batch: Job[], outputs: Float32Array[], rows: number): void {
  if (batch.length === 1) return batch[0].resolve(outputs);
  const widths = outputs.map((o) => o.length / rows);
  let row = 0;
  for (const j of batch) {
    j.resolve(outputs.map((o, k) => o.slice(row * widths[k], (row + j.rows) * widths[k])));
    row += j.rows;
  }
}

/** The engine operations the queue coalesces, as a BatchRunner over an Engine. */
export function engineRunner(engine: Engine): BatchRunner {
  return async (op, inputs, rows) => {
    switch (op) {
      case "invariant":
        return [await engine.embedInvariant(inputs[0], rows)];
      case "classifier":
        return [await engine.posteriorProbs(inputs[0], rows)];
      case "equivariant": {
        const r = await engine.encodeEquivariant(inputs[0], rows, inputs[1]);
        return [r.mu, r.logvar];
      }
      case "decode":
        return [await engine.decode(inputs[0], inputs[1], rows)];
      default:
        throw new Error(`unknown batch operation '${op}'`);
    }
  };
}
