/**
 * Inference and image decoding on worker threads (piscina): a PooledEngine is the Engine interface
 * over N inference workers, each with its own ONNX Runtime sessions (one intra-op thread each, no
 * spinning), and its `decoder` decodes images on a second pool of up to N decoding workers. Two
 * pools, so that inference never waits in line behind a large decode (the OS shares the cores
 * between them); decoding workers exit after a few idle seconds, which returns the memory a burst
 * of large images took. A request of tiny images (at most INLINE_DECODE_PIXELS in all, such as a
 * 28x28 digit) is decoded where it is asked: a trip to a worker costs more than its decoding.
 */
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { Piscina } from "piscina";
import { readCentroids, readManifest, type ExportManifest } from "../../checkpoint/index.js";
import {
  decodeBatch,
  fromFailure,
  type DecodeRequest,
  type DecodedBatch,
  type ImageDecoder,
} from "../../imaging/batch.js";
import { InputError } from "../../util/errors.js";
import { BaseEngine } from "../engine.js";
import { hasOnnxGraphs } from "../onnx-engine.js";
import { EXECUTION_PROVIDERS, cudaInstallProblem, type Device } from "../device.js";
import { loadDecoder } from "../../imaging/decode.js";
import type { DecodeTask, InferenceTask, Reply, WorkerConfig } from "./protocol.js";

export interface PoolOptions {
  /** Worker threads (default: the machine's available parallelism). */
  workers?: number;
  /** ONNX Runtime intra-op threads per worker (default 1). */
  threads?: number;
  /** cpu (default), or cuda: ONNX Runtime's CUDA execution provider in every worker. */
  device?: Device;
}

/**
 * Requests whose images add up to at most this many pixels (from their headers) are decoded on the
 * calling thread: a 28x28 PNG decodes in about 20 µs, far less than a round trip to a worker.
 */
export const INLINE_DECODE_PIXELS = 128 * 128;

/** Idle decoding workers exit after this long (their heaps go with them). */
const DECODE_IDLE_MS = 5000;

/** The default worker count: one per core the process may use. */
export function defaultWorkers(): number {
  return Math.max(1, availableParallelism());
}

class WorkerPool<T> {
  private readonly piscina: Piscina;

  /** `minSize` workers are kept; up to `size` run, the others exit after `idleMs` idle. */
  constructor(
    file: string,
    readonly size: number,
    config: WorkerConfig | undefined,
    minSize = size,
    idleMs = Infinity,
  ) {
    this.piscina = new Piscina({
      filename: new URL(file, import.meta.url).href,
      workerData: config,
      minThreads: minSize,
      maxThreads: size,
      // Tasks wait in piscina's queue, not in a worker: the batching queue above keeps it short.
      concurrentTasksPerWorker: 1,
      idleTimeout: idleMs,
    });
  }

  async run(task: T): Promise<Reply & { ok: true }> {
    const reply = (await this.piscina.run(task)) as Reply;
    if (reply.ok) return reply;
    if (reply.imaging) throw fromFailure(reply.imaging);
    throw new InputError(reply.message);
  }

  /** Every worker answers once (so each has opened its sessions); returns the distinct thread ids. */
  async hello(): Promise<number> {
    const hello = { kind: "hello" } as T;
    const ids = await Promise.all(Array.from({ length: this.size }, () => this.run(hello)));
    return new Set(ids.map((r) => r.threadId)).size;
  }

  destroy(): Promise<void> {
    return this.piscina.destroy();
  }
}

/** The Engine interface over inference worker threads. */
export class PooledEngine extends BaseEngine {
  readonly kind = "onnx" as const;
  /** Image decoding on the same worker threads. */
  readonly decoder: ImageDecoder;

  private constructor(
    manifest: ExportManifest,
    centroids: Awaited<ReturnType<typeof readCentroids>>,
    private readonly pool: WorkerPool<InferenceTask>,
    private readonly decodePool: WorkerPool<DecodeTask>,
    readonly device: Device,
  ) {
    super(manifest, centroids);
    this.decoder = {
      decode: async (req: DecodeRequest): Promise<DecodedBatch> => {
        if (req.pixels !== undefined && req.pixels <= INLINE_DECODE_PIXELS) return decodeBatch(req);
        return (await this.decodePool.run({ kind: "decode", request: req })).decoded!;
      },
    };
  }

  get executionProvider(): string {
    return EXECUTION_PROVIDERS[this.device];
  }

  /** Number of worker threads. */
  get workers(): number {
    return this.pool.size;
  }

  /** Checks the checkpoint here (sha256 of every file), then starts the workers and waits until each has loaded and warmed up its sessions. */
  static async load(dir: string, opts: PoolOptions = {}): Promise<PooledEngine> {
    dir = resolve(dir);
    const workers = opts.workers ?? defaultWorkers();
    const threads = opts.threads ?? 1;
    for (const [name, n] of [
      ["workers", workers],
      ["threads", threads],
    ] as const)
      if (!Number.isInteger(n) || n < 1)
        throw new InputError(`${name} must be a positive integer (got ${n})`);
    const manifest = (await readManifest(dir)) as ExportManifest;
    if (!hasOnnxGraphs(manifest))
      throw new InputError(`${dir} has no ONNX graphs (run 'equivae export ${dir}' first)`);
    const device = opts.device ?? "cpu";
    // What is seen missing fails here, before any worker starts (CUDA itself: when they open sessions).
    const cudaProblem = device === "cuda" ? cudaInstallProblem() : undefined;
    if (cudaProblem) throw new InputError(cudaProblem);
    const centroids = await readCentroids(dir);
    const pool = new WorkerPool<InferenceTask>("./worker.js", workers, { modelDir: dir, threads, device });
    try {
      await pool.hello();
    } catch (e) {
      await pool.destroy();
      throw e;
    }
    // sharp must be loaded by the main thread before any thread that uses it starts (glibc Linux).
    await loadDecoder();
    const decodePool = new WorkerPool<DecodeTask>(
      "./decode-worker.js",
      workers,
      undefined,
      0,
      DECODE_IDLE_MS,
    );
    return new PooledEngine(manifest, centroids, pool, decodePool, device);
  }

  private async batch(op: string, inputs: Float32Array[], rows: number): Promise<Float32Array[]> {
    return (await this.pool.run({ kind: "batch", op, inputs, rows })).outputs!;
  }

  protected async runInvariant(x: Float32Array, n: number): Promise<Float32Array> {
    return (await this.batch("invariant", [x], n))[0];
  }

  protected async runSet(x: Float32Array, sizes: number[]): Promise<Float32Array> {
    return (await this.pool.run({ kind: "set", x, sizes })).outputs![0];
  }

  protected async runEquivariant(
    x: Float32Array,
    n: number,
    v: Float32Array,
  ): Promise<{ mu: Float32Array; logvar: Float32Array }> {
    const [mu, logvar] = await this.batch("equivariant", [x, v], n);
    return { mu, logvar };
  }

  protected async runDecode(v: Float32Array, z: Float32Array, n: number): Promise<Float32Array> {
    return (await this.batch("decode", [v, z], n))[0];
  }

  protected async runPosterior(x: Float32Array, n: number): Promise<Float32Array> {
    return (await this.batch("classifier", [x], n))[0];
  }

  async dispose(): Promise<void> {
    await Promise.all([this.pool.destroy(), this.decodePool.destroy()]);
  }
}
