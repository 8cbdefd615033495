import * as tf from "@tensorflow/tfjs";
import type { ExportManifest } from "../checkpoint/index.js";
import type { EquiVAE } from "../model/equivae.js";
import { loadCheckpoint } from "../train/checkpoint.js";
import { BaseEngine } from "./engine.js";

export interface TfjsEngineOptions {
  /** A TF.js backend to initialise first (tensorflow | wasm | cpu); default: keep the current one. */
  backend?: string;
}

/** Reads a tensor kept out of a tidy, then disposes it. */
async function take(t: tf.Tensor): Promise<Float32Array> {
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}

/**
 * Inference with TF.js over the checkpoint's own weights: the fallback for checkpoints without
 * ONNX graphs. Every call runs inside tf.tidy and leaves tf.memory().numTensors unchanged.
 */
export class TfjsEngine extends BaseEngine {
  readonly kind = "tfjs" as const;

  private constructor(
    manifest: ExportManifest,
    centroids: ConstructorParameters<typeof BaseEngine>[1],
    private readonly model: EquiVAE,
  ) {
    super(manifest, centroids);
  }

  get executionProvider(): string {
    return `tfjs-${tf.getBackend()}`;
  }

  /** gpu when the backend is tfjs-node-gpu's and TensorFlow found a GPU. */
  get device(): string {
    return (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true ? "gpu" : "cpu";
  }

  static async load(dir: string, opts: TfjsEngineOptions = {}): Promise<TfjsEngine> {
    if (opts.backend !== undefined) {
      const { initBackend } = await import("../backend/index.js");
      await initBackend(opts.backend);
    }
    await tf.ready();
    const ck = await loadCheckpoint(dir);
    try {
      return new TfjsEngine(ck.manifest, ck.centroids, ck.model);
    } catch (e) {
      ck.model.dispose();
      throw e;
    }
  }

  private images(x: Float32Array, n: number): tf.Tensor4D {
    const c = this.config;
    return tf.tensor4d(x, [n, c.height, c.width, c.channels]);
  }

  protected async runInvariant(x: Float32Array, n: number): Promise<Float32Array> {
    return take(tf.tidy(() => this.model.invariant(this.images(x, n))));
  }

  protected async runSet(x: Float32Array, sizes: number[]): Promise<Float32Array> {
    return this.embedSetChunks(x, sizes, (chunk) => {
      // setInvariant averages the chunk's images with a [sets, images] matrix of 1/size weights.
      const n = chunk.x.length / this.pixels;
      const avg = new Float32Array(chunk.sizes.length * n);
      chunk.sizes.forEach((size, i) =>
        avg.fill(1 / size, i * n + chunk.starts[i], i * n + chunk.starts[i] + size),
      );
      return take(
        tf.tidy(() =>
          this.model.setInvariant(this.images(chunk.x, n), tf.tensor2d(avg, [chunk.sizes.length, n])),
        ),
      );
    });
  }

  protected async runEquivariant(
    x: Float32Array,
    n: number,
    v: Float32Array,
  ): Promise<{ mu: Float32Array; logvar: Float32Array }> {
    const r = tf.tidy(() => {
      const { mu, logvar } = this.model.encode(this.images(x, n), tf.tensor2d(v, [n, this.config.dv]));
      return [mu, logvar];
    });
    const [mu, logvar] = await Promise.all(r.map(take));
    return { mu, logvar };
  }

  protected async runDecode(v: Float32Array, z: Float32Array, n: number): Promise<Float32Array> {
    const c = this.config;
    return take(
      tf.tidy(() =>
        this.model.likelihood.mean(this.model.decode(tf.tensor2d(v, [n, c.dv]), tf.tensor2d(z, [n, c.dz]))),
      ),
    );
  }

  protected async runPosterior(x: Float32Array, n: number): Promise<Float32Array> {
    return take(tf.tidy(() => this.model.classifierProbs(this.images(x, n))));
  }

  async dispose(): Promise<void> {
    this.model.dispose();
  }
}
