import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { UserError } from "../util/errors.js";
import { registerWasmTrainingKernels } from "./wasm-kernels.js";

import { checkBackendName, type BackendName } from "./names.js";

export { BACKENDS, type BackendName } from "./names.js";

export interface BackendInfo {
  name: BackendName;
  /** Why this one was chosen (for the log line). */
  reason: string;
  /** e.g. the TensorFlow C library version behind tfjs-node. */
  detail?: string;
}

/**
 * Loads tfjs-node if it is installed. It is not a dependency (its install script downloads
 * libtensorflow, which cannot work offline): scripts/build-tfjs-node.sh builds it from the
 * tensorflow-cpu wheel. Returns an error message when it cannot be loaded.
 */
async function tryTfjsNode(): Promise<string | undefined> {
  const name = "@tensorflow/tfjs-node";
  // TensorFlow's C++ logging is chatty on start; keep warnings and errors only unless asked.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= "1";
  try {
    await import(name);
    return undefined;
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    return /Cannot find (package|module)/.test(msg) ? "not installed" : msg.split("\n")[0];
  }
}

/**
 * Picks the TF.js backend: `requested` if given, else the fastest available of
 * tensorflow (tfjs-node) > wasm > cpu. The wasm backend gets the project's
 * Conv2DBackpropFilter/Input kernels so that it can train.
 */
export async function initBackend(requested?: string): Promise<BackendInfo> {
  checkBackendName(requested);
  let nodeProblem: string | undefined;
  if (requested === undefined || requested === "tensorflow") {
    nodeProblem = await tryTfjsNode();
    if (nodeProblem === undefined && tf.findBackend("tensorflow")) {
      await tf.setBackend("tensorflow");
      await tf.ready();
      const detail = (tf.backend() as unknown as { binding?: { TF_Version?: string } }).binding?.TF_Version;
      return {
        name: "tensorflow",
        reason: requested ? "requested" : "fastest available",
        detail: detail ? `TensorFlow ${detail}` : undefined,
      };
    }
    if (requested === "tensorflow") {
      throw new UserError(
        `backend 'tensorflow' is unavailable: @tensorflow/tfjs-node ${nodeProblem ?? "did not register"} ` +
          `(see README: scripts/build-tfjs-node.sh)`,
      );
    }
  }
  const name: BackendName = (requested as BackendName | undefined) ?? "wasm";
  if (name === "wasm") registerWasmTrainingKernels();
  const ok = await tf.setBackend(name);
  if (!ok) throw new UserError(`backend '${name}' failed to initialise`);
  await tf.ready();
  return {
    name,
    reason: requested ? "requested" : `tfjs-node ${nodeProblem ?? "unavailable"}`,
  };
}

export function describeBackend(b: BackendInfo): string {
  return `backend: ${b.name}${b.detail ? ` (${b.detail})` : ""} [${b.reason}]`;
}
