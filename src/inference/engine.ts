import {
  centroidDistances,
  centroidMatrix,
  type Centroids,
  type ExportManifest,
  type ModelConfig,
} from "../checkpoint/index.js";
import { InputError } from "../util/errors.js";

export type EngineKind = "onnx" | "tfjs";

export interface ClassScore {
  label: number;
  name: string;
  p: number;
}

/**
 * Inference over a checkpoint. Images are NHWC float32 in [0, 1], packed row-major
 * ([n, H, W, C]); every result is row-major too.
 */
export interface Engine {
  readonly kind: EngineKind;
  /**
   * Where inference runs: cpu, cuda (ONNX Runtime's CUDA execution provider) or gpu (the tfjs engine
   * on tfjs-node-gpu with a GPU). Absent: cpu.
   */
  readonly device?: string;
  /** What runs it: ONNX Runtime's execution provider (CPUExecutionProvider, ...) or tfjs-<backend>. */
  readonly executionProvider?: string;
  readonly manifest: ExportManifest;
  readonly config: ModelConfig;
  readonly classNames: string[];
  /** Class centroids of v, [K, dv] row-major (a class with no training rows is NaN). */
  readonly centroids: Float32Array;
  /** n = 1 invariant embeddings: [n, dv]. */
  embedInvariant(x: Float32Array, n: number): Promise<Float32Array>;
  /** Set embeddings of sets packed one after another (set i has sizes[i] >= 1 images): [sets, dv]. */
  embedSet(x: Float32Array, sizes: number[]): Promise<Float32Array>;
  /** q(z | x, v) for n images with their v ([n, dv]). */
  encodeEquivariant(
    x: Float32Array,
    n: number,
    v: Float32Array,
  ): Promise<{ mu: Float32Array; logvar: Float32Array }>;
  /** The decoder's mean image for n (v, z) pairs: [n, H, W, C]. */
  decode(v: Float32Array, z: Float32Array, n: number): Promise<Float32Array>;
  /** Nearest-centroid classes of n images: the topK by p, p = softmax over -||v - c||^2. */
  classify(x: Float32Array, n: number, topK?: number): Promise<ClassScore[][]>;
  /** Whether the model has the inference network q(y | x) (semi-supervised checkpoints). */
  readonly hasPosterior: boolean;
  /** q(y | x) class probabilities of n images (dropout off): [n, K]. Throws when !hasPosterior. */
  posteriorProbs(x: Float32Array, n: number): Promise<Float32Array>;
  /** Classes of n images by q(y | x): the topK by p = q(y | x). Throws when !hasPosterior. */
  classifyPosterior(x: Float32Array, n: number, topK?: number): Promise<ClassScore[][]>;
  dispose(): Promise<void>;
}

/** The message of the error for q(y | x) requests on a model without it. */
export const NO_POSTERIOR =
  "this model has no q(y|x) classifier (it was trained supervised); use the nearest-centroid method";

/** One group of consecutive sets (see chunkSets): their images, packed one after another, and sizes. */
export interface SetChunk {
  x: Float32Array;
  sizes: number[];
  /** Where each set's images start in x (counted in images). */
  starts: number[];
}

/** Input checks, classification and set chunking shared by the engines. */
export abstract class BaseEngine implements Engine {
  abstract readonly kind: EngineKind;
  readonly config: ModelConfig;
  readonly classNames: string[];
  readonly centroids: Float32Array;
  protected readonly pixels: number;

  constructor(
    readonly manifest: ExportManifest,
    centroids: Centroids,
  ) {
    this.config = manifest.model;
    const c = this.config;
    this.pixels = c.height * c.width * c.channels;
    if (centroids.dv !== c.dv || centroids.centroids.some((r) => r.length !== c.dv)) {
      throw new InputError(`centroids.json: centroids are not ${c.dv}-dimensional`);
    }
    this.classNames = centroids.classNames;
    this.centroids = centroidMatrix(centroids);
  }

  abstract dispose(): Promise<void>;
  /** The engine's own computations, called after the inputs were checked here. */
  protected abstract runInvariant(x: Float32Array, n: number): Promise<Float32Array>;
  protected abstract runSet(x: Float32Array, sizes: number[]): Promise<Float32Array>;
  protected abstract runEquivariant(
    x: Float32Array,
    n: number,
    v: Float32Array,
  ): Promise<{ mu: Float32Array; logvar: Float32Array }>;
  protected abstract runDecode(v: Float32Array, z: Float32Array, n: number): Promise<Float32Array>;
  /** q(y | x) probabilities; engines implement it for models with config.classifier. */
  protected abstract runPosterior(x: Float32Array, n: number): Promise<Float32Array>;

  async embedInvariant(x: Float32Array, n: number): Promise<Float32Array> {
    this.checkImages(x, n);
    return this.runInvariant(x, n);
  }

  async embedSet(x: Float32Array, sizes: number[]): Promise<Float32Array> {
    this.checkSets(x, sizes);
    return this.runSet(x, sizes);
  }

  async encodeEquivariant(
    x: Float32Array,
    n: number,
    v: Float32Array,
  ): Promise<{ mu: Float32Array; logvar: Float32Array }> {
    this.checkImages(x, n);
    this.checkRows(v, n, this.config.dv, "v");
    return this.runEquivariant(x, n, v);
  }

  async decode(v: Float32Array, z: Float32Array, n: number): Promise<Float32Array> {
    if (!Number.isInteger(n) || n < 1)
      throw new InputError(`decode: n must be a positive integer (got ${n})`);
    this.checkRows(v, n, this.config.dv, "v");
    this.checkRows(z, n, this.config.dz, "z");
    return this.runDecode(v, z, n);
  }

  get hasPosterior(): boolean {
    return this.config.classifier === true;
  }

  async posteriorProbs(x: Float32Array, n: number): Promise<Float32Array> {
    if (!this.hasPosterior) throw new InputError(NO_POSTERIOR);
    this.checkImages(x, n);
    return this.runPosterior(x, n);
  }

  async classifyPosterior(x: Float32Array, n: number, topK = 1): Promise<ClassScore[][]> {
    if (!Number.isInteger(topK) || topK < 1)
      throw new InputError(`topK must be a positive integer (got ${topK})`);
    return rankProbs(await this.posteriorProbs(x, n), this.config.numClasses, this.classNames, topK);
  }

  async classify(x: Float32Array, n: number, topK = 1): Promise<ClassScore[][]> {
    if (!Number.isInteger(topK) || topK < 1)
      throw new InputError(`topK must be a positive integer (got ${topK})`);
    const v = await this.embedInvariant(x, n);
    return rankByCentroid(v, this.config.dv, this.centroids, this.classNames, topK);
  }

  /**
   * Set embeddings chunk by chunk (chunkSets), so that no padded batch of sets grows too large;
   * `embedChunk` returns the chunk's [sets, dv].
   */
  protected async embedSetChunks(
    x: Float32Array,
    sizes: number[],
    embedChunk: (chunk: SetChunk) => Promise<Float32Array>,
  ): Promise<Float32Array> {
    const dv = this.config.dv;
    const out = new Float32Array(sizes.length * dv);
    const starts = setStarts(sizes);
    for (const [a, b] of chunkSets(sizes)) {
      const chunkSizes = sizes.slice(a, b);
      const end = starts[b - 1] + sizes[b - 1];
      const chunk = {
        x: x.subarray(starts[a] * this.pixels, end * this.pixels),
        sizes: chunkSizes,
        starts: setStarts(chunkSizes),
      };
      out.set(await embedChunk(chunk), a * dv);
    }
    return out;
  }

  protected checkImages(x: Float32Array, n: number, what = "x"): void {
    if (!Number.isInteger(n) || n < 1)
      throw new InputError(`${what}: n must be a positive integer (got ${n})`);
    const c = this.config;
    if (x.length !== n * this.pixels) {
      throw new InputError(
        `${what}: expected ${n} images of ${c.height}x${c.width}x${c.channels} (${n * this.pixels} values), got ${x.length}`,
      );
    }
  }

  protected checkRows(a: Float32Array, n: number, d: number, what: string): void {
    if (a.length !== n * d)
      throw new InputError(`${what}: expected [${n}, ${d}] (${n * d} values), got ${a.length}`);
  }

  protected checkSets(x: Float32Array, sizes: number[]): void {
    if (sizes.length === 0) throw new InputError("embedSet: no sets");
    for (const s of sizes) {
      if (!Number.isInteger(s) || s < 1)
        throw new InputError(`embedSet: every set needs >= 1 image (got ${s})`);
    }
    this.checkImages(
      x,
      sizes.reduce((a, b) => a + b, 0),
      "embedSet",
    );
  }
}

/**
 * Groups consecutive sets so that a padded [B, Smax] batch holds at most `maxImages` slots
 * (a set larger than that gets a group of its own). Returns [first set, end set) pairs.
 */
function chunkSets(sizes: number[], maxImages = 2048): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = 0;
  let smax = 0;
  for (let i = 0; i < sizes.length; i++) {
    const m = Math.max(smax, sizes[i]);
    if (i > start && (i - start + 1) * m > maxImages) {
      out.push([start, i]);
      start = i;
      smax = sizes[i];
    } else smax = m;
  }
  out.push([start, sizes.length]);
  return out;
}

/** Where each set starts in the images packed one set after another. */
function setStarts(sizes: number[]): number[] {
  const starts: number[] = [];
  sizes.reduce((start, size) => (starts.push(start), start + size), 0);
  return starts;
}

/** Top-k classes per row of a [n, K] probability matrix. */
export function rankProbs(probs: Float32Array, k: number, names: string[], topK: number): ClassScore[][] {
  const out: ClassScore[][] = [];
  for (let i = 0; i < probs.length / k; i++)
    out.push(topClasses(probs.subarray(i * k, (i + 1) * k), names, topK));
  return out;
}

/** Top-k classes per row by p proportional to exp(-||v - c||^2), computed stably; NaN centroids get p = 0. */
export function rankByCentroid(
  v: Float32Array,
  dv: number,
  centroids: Float32Array,
  names: string[],
  topK: number,
): ClassScore[][] {
  const out: ClassScore[][] = [];
  const d2 = new Float64Array(centroids.length / dv);
  for (let i = 0; i < v.length / dv; i++) {
    centroidDistances(v, i, centroids, dv, d2);
    let min = Infinity;
    for (const s of d2) if (s < min) min = s;
    const e = Array.from(d2, (s) => (Number.isNaN(s) ? 0 : Math.exp(-(s - min))));
    const z = e.reduce((a, b) => a + b, 0);
    const probs = e.map((x) => (z > 0 ? x / z : NaN));
    out.push(topClasses(probs, names, topK));
  }
  return out;
}

/** The topK classes of one row of probabilities, most probable first (ties: lower label first). */
function topClasses(probs: ArrayLike<number>, names: string[], topK: number): ClassScore[] {
  const scores = Array.from(probs, (p, y) => ({ label: y, name: names[y] ?? String(y), p }));
  scores.sort((a, b) => b.p - a.p || a.label - b.label);
  return scores.slice(0, Math.min(topK, scores.length));
}
