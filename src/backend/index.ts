import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { InputError, errorMessage } from "../util/errors.js";
import { registerTensorflowTrainingKernels } from "./tensorflow-kernels.js";
import { registerWasmTrainingKernels } from "./wasm-kernels.js";

import { checkBackendName, type BackendChoice, type BackendName } from "./names.js";

export { BACKENDS, BACKEND_CHOICES, type BackendChoice, type BackendName } from "./names.js";

/** The native TensorFlow packages (neither is a dependency: README, GPU; scripts/build-tfjs-node.sh). */
export const TFJS_NODE = "@tensorflow/tfjs-node";
export const TFJS_NODE_GPU = "@tensorflow/tfjs-node-gpu";
/** What tfjs-node-gpu 4.x needs: its libtensorflow 2.9.1 is built for these (plus an NVIDIA driver >= 450). */
export const TFJS_GPU_NEEDS = "CUDA 11.2 and cuDNN 8.1";

export interface BackendInfo {
  name: BackendName;
  /** Why this one was chosen (for the log line). */
  reason: string;
  /** e.g. the TensorFlow C library version behind tfjs-node. */
  detail?: string;
  /** gpu: the tensorflow backend of tfjs-node-gpu, on a GPU that TensorFlow found. */
  device: "cpu" | "gpu";
  /** The package that provides the backend. */
  package: string;
}

/** Resolves a package name to its module (import() by default; tests pass stand-ins). */
export type ModuleLoader = (name: string) => Promise<unknown>;
const importPackage: ModuleLoader = (name) => import(name);

type NativeChoice = Extract<BackendChoice, `tensorflow${string}`>;

/** Whether an import failed because the package itself is not installed (not one of its own files or libraries). */
function notInstalled(e: unknown, pkg: string): boolean {
  const msg = errorMessage(e);
  return /Cannot find (package|module)/.test(msg) && msg.includes(`'${pkg}'`);
}

/**
 * Imports the native TensorFlow package for a --backend choice: tensorflow-gpu takes tfjs-node-gpu,
 * tensorflow-cpu takes tfjs-node, tensorflow takes tfjs-node-gpu when it is installed, else
 * tfjs-node. Returns the package's name. A one-line InputError when none is installed, or when the
 * one installed does not load (an installed GPU package that fails is not passed over for the CPU
 * one: both register the same TF.js kernels).
 */
export async function loadTensorflowPackage(
  choice: NativeChoice,
  load: ModuleLoader = importPackage,
): Promise<string> {
  // TensorFlow's C++ logging is chatty on start; keep warnings and errors only unless asked.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= "1";
  const candidates =
    choice === "tensorflow-gpu"
      ? [TFJS_NODE_GPU]
      : choice === "tensorflow-cpu"
        ? [TFJS_NODE]
        : [TFJS_NODE_GPU, TFJS_NODE];
  for (const pkg of candidates) {
    try {
      await load(pkg);
      return pkg;
    } catch (e) {
      if (notInstalled(e, pkg)) continue;
      const why = errorMessage(e).split("\n")[0];
      throw new InputError(
        `backend '${choice}': ${pkg} is installed but does not load (${why}); ` +
          (pkg === TFJS_NODE_GPU
            ? `it needs ${TFJS_GPU_NEEDS} (README: GPU), or choose --backend tensorflow-cpu or wasm`
            : "see README: scripts/build-tfjs-node.sh"),
      );
    }
  }
  const cpu = `npm install ${TFJS_NODE} (offline: scripts/build-tfjs-node.sh)`;
  const gpu = `npm install ${TFJS_NODE_GPU} (with ${TFJS_GPU_NEEDS}; README: GPU)`;
  const install = choice === "tensorflow-gpu" ? gpu : choice === "tensorflow-cpu" ? cpu : `${cpu}, or ${gpu}`;
  throw new InputError(
    `backend '${choice}' is unavailable: ${candidates.join(" and ")} ${candidates.length > 1 ? "are" : "is"} not installed; ${install}`,
  );
}

/** Where the tensorflow backend runs (its isUsingGpuDevice); tensorflow-gpu without a GPU is an error. */
export function tensorflowDevice(
  choice: NativeChoice,
  pkg: string,
  backend: { isUsingGpuDevice?: boolean },
): "cpu" | "gpu" {
  const gpu = backend.isUsingGpuDevice === true;
  if (choice === "tensorflow-gpu" && !gpu)
    throw new InputError(
      `backend 'tensorflow-gpu': ${pkg} loaded but TensorFlow found no GPU ` +
        `(check nvidia-smi, ${TFJS_GPU_NEEDS} on the library path, CUDA_VISIBLE_DEVICES)`,
    );
  return gpu ? "gpu" : "cpu";
}

export interface InitOptions {
  /** Resolves the native packages (tests: stand-ins). */
  load?: ModuleLoader;
}

/**
 * Picks the TF.js backend: `requested` if given, else the fastest available of
 * tensorflow (tfjs-node-gpu, then tfjs-node) > wasm > cpu. The wasm backend gets the project's
 * Conv2DBackpropFilter/Input kernels so that it can train.
 */
export async function initBackend(requested?: string, opts: InitOptions = {}): Promise<BackendInfo> {
  const choice = checkBackendName(requested);
  let nativeProblem: string | undefined;
  if (choice === undefined || choice.startsWith("tensorflow")) {
    const native = (choice ?? "tensorflow") as NativeChoice;
    try {
      const pkg = await loadTensorflowPackage(native, opts.load);
      if (!tf.findBackend("tensorflow"))
        throw new InputError(`backend '${native}': ${pkg} did not register the tensorflow backend`);
      registerTensorflowTrainingKernels();
      await tf.setBackend("tensorflow");
      await tf.ready();
      const b = tf.backend() as unknown as { binding?: { TF_Version?: string }; isUsingGpuDevice?: boolean };
      const device = tensorflowDevice(native, pkg, b);
      const version = b.binding?.TF_Version;
      return {
        name: "tensorflow",
        reason: choice ? "requested" : "fastest available",
        detail: version ? `TensorFlow ${version}` : undefined,
        device,
        package: pkg,
      };
    } catch (e) {
      if (choice !== undefined || !(e instanceof InputError)) throw e;
      nativeProblem = /is unavailable/.test(e.message)
        ? `neither ${TFJS_NODE_GPU} nor ${TFJS_NODE} is installed`
        : e.message.replace(/^backend 'tensorflow': /, "");
    }
  }
  const name = (choice as BackendName | undefined) ?? "wasm";
  if (name === "wasm") registerWasmTrainingKernels();
  const ok = await tf.setBackend(name);
  if (!ok) throw new InputError(`backend '${name}' failed to initialise`);
  await tf.ready();
  return {
    name,
    reason: choice ? "requested" : (nativeProblem ?? "tfjs-node unavailable"),
    device: "cpu",
    package: name === "wasm" ? "@tensorflow/tfjs-backend-wasm" : "@tensorflow/tfjs-backend-cpu",
  };
}

export function describeBackend(b: BackendInfo): string {
  if (b.name !== "tensorflow") return `backend: ${b.name}${b.detail ? ` (${b.detail})` : ""} [${b.reason}]`;
  const noGpu = b.package === TFJS_NODE_GPU && b.device === "cpu" ? "; TensorFlow found no GPU" : "";
  const detail = b.detail ? `, ${b.detail}` : "";
  return `backend: tensorflow on ${b.device.toUpperCase()} (${b.package}${detail}${noGpu}) [${b.reason}]`;
}
