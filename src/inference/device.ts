/**
 * Where ONNX Runtime runs a model (`--device`, $EQUIVAE_DEVICE): cpu (its default CPU execution
 * provider) or cuda (its CUDA execution provider, which onnxruntime-node has on linux x64 only, and
 * only once its provider libraries were installed: CUDA_INSTALL). A missing piece is reported as one
 * line naming it. This file loads no onnxruntime-node, so flag parsing and the checks stay cheap.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { InputError } from "../util/errors.js";

export const DEVICES = ["cpu", "cuda"] as const;
export type Device = (typeof DEVICES)[number];

/** ONNX Runtime's name of each device's execution provider (reported by /v1/models and at start). */
export const EXECUTION_PROVIDERS: Record<Device, string> = {
  cpu: "CPUExecutionProvider",
  cuda: "CUDAExecutionProvider",
};

/**
 * Installs onnxruntime-node's CUDA 12 provider libraries (downloaded from NuGet by its install
 * script: needs internet access). The environment variable beats the project's .npmrc `skip`.
 */
export const CUDA_INSTALL = "ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node";

/** The libraries onnxruntime-node's CUDA provider needs next to its binding (CUDA_INSTALL puts them there). */
export const CUDA_PROVIDER_LIBS = ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"];

/** Checks a --device value (undefined: cpu). */
export function parseDevice(value: string | undefined, what = "--device"): Device {
  if (value === undefined) return "cpu";
  if (!(DEVICES as readonly string[]).includes(value))
    throw new InputError(`${what} must be ${DEVICES.join(" or ")} (got '${value}')`);
  return value as Device;
}

/** What the CUDA checks look at; tests pass stand-ins. */
export interface CudaEnv {
  platform: string;
  arch: string;
  /** onnxruntime-node's binary folder for this platform (where its binding and provider libraries are). */
  binDir: string;
  exists(path: string): boolean;
  /** dlopen()s a shared library: undefined when it loads, else the loader's message. */
  dlopen(path: string): string | undefined;
}

/** The folder onnxruntime-node loads its binding from: <package>/bin/napi-v6/<platform>/<arch>. */
function ortBinDir(platform: string, arch: string): string {
  const main = createRequire(import.meta.url).resolve("onnxruntime-node");
  return join(dirname(main), "..", "bin", "napi-v6", platform, arch);
}

function dlopen(path: string): string | undefined {
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, path, constants.dlopen.RTLD_LAZY);
    return undefined;
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    // It loaded, but is no Node addon: what we wanted to know.
    return /did not self-register|Module did not/.test(msg) ? undefined : msg;
  }
}

export function defaultCudaEnv(): CudaEnv {
  return {
    platform: process.platform,
    arch: process.arch,
    binDir: ortBinDir(process.platform, process.arch),
    exists: existsSync,
    dlopen,
  };
}

const oneLine = (s: string) =>
  s
    .replace(/\x1b\[[0-9;]*m/g, "")
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, 300);

/**
 * What keeps the CUDA provider from loading, seen before any session: a platform without it, or
 * its libraries not installed. Undefined when nothing is seen missing (CUDA itself is checked by
 * ONNX Runtime when a session starts: cudaFailure).
 */
export function cudaInstallProblem(env: CudaEnv = defaultCudaEnv()): string | undefined {
  if (env.platform !== "linux" || env.arch !== "x64")
    return `--device cuda: onnxruntime-node has a CUDA execution provider on linux x64 only (this is ${env.platform} ${env.arch})`;
  const missing = CUDA_PROVIDER_LIBS.filter((f) => !env.exists(join(env.binDir, f)));
  if (missing.length > 0)
    return (
      `--device cuda: ONNX Runtime's CUDA execution provider is not installed (no ${missing.join(", ")} in ` +
      `${env.binDir}); install it, with internet access: ${CUDA_INSTALL}`
    );
  return undefined;
}

/** Which install a missing library belongs to. */
function pieceOf(lib: string): string {
  if (/^libcudnn/.test(lib)) return "cuDNN 9 for CUDA 12";
  if (/^libcuda\.so/.test(lib)) return "the NVIDIA driver";
  if (/^lib(cudart|cublas|cublasLt|cufft|curand|cusparse|nvrtc|nvJitLink)/.test(lib)) return "CUDA 12";
  if (/^libonnxruntime_providers/.test(lib)) return `ONNX Runtime's CUDA provider (${CUDA_INSTALL})`;
  return "a library of the CUDA provider";
}

/** Whether an ONNX Runtime session error is about the CUDA provider (rather than the model). */
export function isCudaError(message: string): boolean {
  return /cuda|cudnn|cublas|shared library|no CUDA-capable|ExecutionProvider/i.test(message);
}

/**
 * ONNX Runtime failed to start a session with the CUDA provider: its message (often just "Failed to
 * load shared library") turned into one line naming the missing piece. The provider library is
 * dlopen()ed to learn which library it could not find (ONNX Runtime logs that natively only).
 */
export function cudaFailure(ortMessage: string, env: CudaEnv = defaultCudaEnv()): string {
  const install = cudaInstallProblem(env);
  if (install) return install;
  const msg = oneLine(ortMessage);
  const loadError = env.dlopen(join(env.binDir, "libonnxruntime_providers_cuda.so"));
  const missingLib = /(lib[\w.+-]*\.so[\w.]*): cannot open shared object file/.exec(
    `${loadError ?? ""} ${msg}`,
  )?.[1];
  if (missingLib)
    return `--device cuda: ${missingLib} not found (${pieceOf(missingLib)} is missing or not on the library path)`;
  if (loadError) return `--device cuda: the CUDA provider library does not load (${oneLine(loadError)})`;
  if (/no CUDA-capable device|cudaErrorNoDevice|CUDA failure 100\b/i.test(msg))
    return `--device cuda: no NVIDIA GPU is visible (nvidia-smi; CUDA_VISIBLE_DEVICES) [${msg}]`;
  if (/driver version is insufficient|CUDA failure 35\b/i.test(msg))
    return `--device cuda: the NVIDIA driver is too old for CUDA 12 [${msg}]`;
  return `--device cuda: ONNX Runtime could not start its CUDA execution provider (${msg})`;
}
