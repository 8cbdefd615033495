import { readManifest, type ExportManifest } from "../checkpoint/index.js";
import { ENGINES, type EngineChoice } from "../util/defaults.js";
import { InputError, errorMessage } from "../util/errors.js";
import type { Device } from "./device.js";
import type { Engine } from "./engine.js";

export type { ClassScore, Engine, EngineKind } from "./engine.js";

export interface LoadEngineOptions {
  /** onnx: ONNX Runtime (needs 'equivae export'); tfjs: TF.js; auto (default): onnx when the graphs exist. */
  engine?: EngineChoice;
  /** ONNX Runtime intra-op threads (per worker with `workers`). */
  threads?: number;
  /**
   * onnx only: run inference (and image decoding, through the engine's `decoder`) on this many
   * worker threads instead of the calling thread. Servers use it so that inference never blocks
   * the thread that answers HTTP.
   */
  workers?: number;
  /** TF.js backend for the tfjs engine (default: the current one). */
  backend?: string;
  /** onnx only: cpu (default), or cuda: ONNX Runtime's CUDA execution provider. */
  device?: Device;
}

/** Loads an inference engine over a checkpoint directory (every file's sha256 is verified). */
export async function loadEngine(dir: string, opts: LoadEngineOptions = {}): Promise<Engine> {
  const choice = opts.engine ?? "auto";
  // The CLI's flag tables check the same list; this is for callers of the library.
  if (!ENGINES.includes(choice)) {
    throw new InputError(`unknown engine '${String(choice)}' (choose ${ENGINES.join(", ")})`);
  }
  let kind = choice;
  if (kind === "auto") {
    const { hasOnnxGraphs } = await import("./onnx-engine.js");
    kind = hasOnnxGraphs((await readManifest(dir, false)) as ExportManifest) ? "onnx" : "tfjs";
  }
  const device = opts.device ?? "cpu";
  if (kind === "onnx" && opts.workers !== undefined) {
    const { PooledEngine } = await import("./workers/pool.js");
    return PooledEngine.load(dir, { workers: opts.workers, threads: opts.threads, device });
  }
  if (kind === "onnx") {
    const { OnnxEngine } = await import("./onnx-engine.js");
    return OnnxEngine.load(dir, { threads: opts.threads, device });
  }
  if (device !== "cpu")
    throw new InputError(
      `--device ${device} needs the onnx engine (${choice === "tfjs" ? "--engine tfjs was given" : `${dir} has no ONNX graphs: run 'equivae export ${dir}'`})`,
    );
  const { TfjsEngine } = await import("./tfjs-engine.js").catch((e: unknown) => {
    // The serving image leaves TF.js out (scripts/prune-serving.mjs).
    if (/Cannot find (package|module) '@tensorflow\//.test(errorMessage(e)))
      throw new InputError(
        `${dir}: the tfjs engine needs TF.js, which is not installed here (the serving image leaves it out); ` +
          `export the checkpoint's ONNX graphs: equivae export ${dir}`,
      );
    throw e;
  });
  return TfjsEngine.load(dir, { backend: opts.backend });
}
