import * as ort from "onnxruntime-node";
import { promises as fsp } from "node:fs";
import { join, resolve } from "node:path";
import {
  FILES,
  readCentroids,
  readManifest,
  type Centroids,
  type ExportManifest,
} from "../checkpoint/index.js";
import { InputError, errorMessage } from "../util/errors.js";
import {
  EXECUTION_PROVIDERS,
  cudaFailure,
  cudaInstallProblem,
  isCudaError,
  type CudaEnv,
  type Device,
} from "./device.js";
import { BaseEngine } from "./engine.js";

/** The graphs the engine needs, by their manifest names. */
export const ONNX_GRAPHS = ["invariant", "invariant_set", "equivariant", "decoder"] as const;
type GraphName = (typeof ONNX_GRAPHS)[number] | "classifier";

/** The graphs a checkpoint's ONNX engine needs: also classifier.onnx for semi-supervised models. */
function neededGraphs(m: ExportManifest): GraphName[] {
  return m.model.classifier ? [...ONNX_GRAPHS, "classifier"] : [...ONNX_GRAPHS];
}

export interface OnnxEngineOptions {
  /** ONNX Runtime intra-op threads per session (default: ONNX Runtime's choice, the physical cores). */
  threads?: number;
  /**
   * Let ONNX Runtime's intra-op threads spin-wait for work (its default). Off for the serving
   * workers: a spinning thread burns a core that the HTTP thread and the other workers need.
   */
  spinning?: boolean;
  /** cpu (default), or cuda: ONNX Runtime's CUDA execution provider (see device.ts). */
  device?: Device;
  /** Tests: a stand-in for ort.InferenceSession.create, and for what the CUDA checks look at. */
  createSession?: SessionFactory;
  cudaEnv?: CudaEnv;
}

export type SessionFactory = (
  model: Uint8Array,
  options: ort.InferenceSession.SessionOptions,
) => Promise<ort.InferenceSession>;

/** Whether a manifest lists every graph the ONNX engine needs. */
export function hasOnnxGraphs(m: ExportManifest): boolean {
  return neededGraphs(m).every((g) => m.onnx?.graphs?.[g]?.file !== undefined);
}

/** Inference with onnxruntime-node over the checkpoint's exported graphs (see src/export). */
export class OnnxEngine extends BaseEngine {
  readonly kind = "onnx" as const;

  private constructor(
    manifest: ExportManifest,
    centroids: Centroids,
    private readonly sessions: Record<GraphName, ort.InferenceSession>,
    readonly device: Device,
  ) {
    super(manifest, centroids);
  }

  get executionProvider(): string {
    return EXECUTION_PROVIDERS[this.device];
  }

  /** Verifies every file's sha256 (readManifest), opens one session per graph and warms each up. */
  static async load(dir: string, opts: OnnxEngineOptions = {}): Promise<OnnxEngine> {
    dir = resolve(dir);
    const manifest = (await readManifest(dir)) as ExportManifest;
    const onnx = manifest.onnx;
    if (!onnx || !hasOnnxGraphs(manifest)) {
      throw new InputError(`${dir} has no ONNX graphs (run 'equivae export ${dir}' first)`);
    }
    if (onnx.weightsSha256 !== manifest.files[FILES.weights]?.sha256) {
      throw new InputError(
        `${dir}: the ONNX graphs were exported from other weights than ${FILES.weights}; run 'equivae export ${dir}' again`,
      );
    }
    if (opts.threads !== undefined && (!Number.isInteger(opts.threads) || opts.threads < 1)) {
      throw new InputError(`threads must be a positive integer (got ${opts.threads})`);
    }
    const device = opts.device ?? "cpu";
    if (device === "cuda") {
      const problem = cudaInstallProblem(opts.cudaEnv);
      if (problem) throw new InputError(problem);
      // ONNX Runtime's own log of a provider that fails to load is a multi-line dump: the error says it in one.
      ort.env.logLevel = "fatal";
    }
    const centroids = await readCentroids(dir);
    const options: ort.InferenceSession.SessionOptions = {
      ...(device === "cuda" ? { executionProviders: ["cuda"] } : {}),
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      interOpNumThreads: 1,
      logSeverityLevel: 3,
      ...(opts.threads !== undefined ? { intraOpNumThreads: opts.threads } : {}),
      ...(opts.spinning === false
        ? { extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } } }
        : {}),
    };
    const sessions: Partial<Record<GraphName, ort.InferenceSession>> = {};
    try {
      for (const name of neededGraphs(manifest)) {
        const info = onnx.graphs[name];
        const path = join(dir, info.file);
        let s: ort.InferenceSession;
        try {
          const create = opts.createSession ?? ((m, o) => ort.InferenceSession.create(m, o));
          s = await create(await fsp.readFile(path), options);
        } catch (e) {
          if (device === "cuda" && isCudaError(errorMessage(e)))
            throw new InputError(cudaFailure(errorMessage(e), opts.cudaEnv));
          const msg = errorMessage(e).replace(/\s+/g, " ").slice(0, 300);
          throw new InputError(`${path}: ONNX Runtime cannot load this model (${msg})`);
        }
        sessions[name] = s;
        const want = (l: Array<{ name: string }>) => l.map((t) => t.name).join(",");
        if (s.inputNames.join(",") !== want(info.inputs) || s.outputNames.join(",") !== want(info.outputs)) {
          throw new InputError(
            `${path}: graph signature (${s.inputNames} -> ${s.outputNames}) does not match manifest.json`,
          );
        }
      }
    } catch (e) {
      await Promise.all(Object.values(sessions).map((s) => s.release()));
      throw e;
    }
    const engine = new OnnxEngine(
      manifest,
      centroids,
      sessions as Record<GraphName, ort.InferenceSession>,
      device,
    );
    await engine.warmUp();
    return engine;
  }

  private async warmUp(): Promise<void> {
    const c = this.config;
    const img = new Float32Array(this.pixels);
    const v = await this.embedInvariant(img, 1);
    await this.embedSet(img, [1]);
    await this.encodeEquivariant(img, 1, v);
    await this.decode(v, new Float32Array(c.dz), 1);
    if (this.hasPosterior) await this.posteriorProbs(img, 1);
  }

  protected async runPosterior(x: Float32Array, n: number): Promise<Float32Array> {
    const r = await this.run("classifier", { x: this.images(x, [n]) });
    return r.probs.data as Float32Array;
  }

  private async run(
    graph: GraphName,
    feeds: Record<string, ort.Tensor>,
  ): Promise<ort.InferenceSession.ReturnType> {
    return this.sessions[graph].run(feeds);
  }

  private images(x: Float32Array, lead: number[]): ort.Tensor {
    const c = this.config;
    return new ort.Tensor("float32", x, [...lead, c.height, c.width, c.channels]);
  }

  protected async runInvariant(x: Float32Array, n: number): Promise<Float32Array> {
    const r = await this.run("invariant", { x: this.images(x, [n]) });
    return r.v.data as Float32Array;
  }

  protected async runSet(x: Float32Array, sizes: number[]): Promise<Float32Array> {
    return this.embedSetChunks(x, sizes, async (chunk) => {
      // invariant_set takes the sets padded to the largest, [B, S] images, with a mask of the real ones.
      const px = this.pixels;
      const B = chunk.sizes.length;
      const S = Math.max(...chunk.sizes);
      const xs = new Float32Array(B * S * px);
      const mask = new Float32Array(B * S);
      chunk.sizes.forEach((size, i) => {
        xs.set(chunk.x.subarray(chunk.starts[i] * px, (chunk.starts[i] + size) * px), i * S * px);
        mask.fill(1, i * S, i * S + size);
      });
      const r = await this.run("invariant_set", {
        x: this.images(xs, [B, S]),
        mask: new ort.Tensor("float32", mask, [B, S]),
      });
      return r.v.data as Float32Array;
    });
  }

  protected async runEquivariant(
    x: Float32Array,
    n: number,
    v: Float32Array,
  ): Promise<{ mu: Float32Array; logvar: Float32Array }> {
    const r = await this.run("equivariant", {
      x: this.images(x, [n]),
      v: new ort.Tensor("float32", v, [n, this.config.dv]),
    });
    return { mu: r.mu.data as Float32Array, logvar: r.logvar.data as Float32Array };
  }

  protected async runDecode(v: Float32Array, z: Float32Array, n: number): Promise<Float32Array> {
    const c = this.config;
    const r = await this.run("decoder", {
      v: new ort.Tensor("float32", v, [n, c.dv]),
      z: new ort.Tensor("float32", z, [n, c.dz]),
    });
    return r.x_mean.data as Float32Array;
  }

  async dispose(): Promise<void> {
    await Promise.all(Object.values(this.sessions).map((s) => s.release()));
  }
}
