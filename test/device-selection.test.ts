/**
 * The GPU routes without a GPU: which TensorFlow package training loads (stand-in modules), what
 * the checkpoint records, and ONNX Runtime's --device cuda (a stand-in session factory, and the
 * real one-line failure of `serve`/`embed --device cuda` on a machine without the CUDA provider).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import request from "supertest";
import {
  TFJS_NODE,
  TFJS_NODE_GPU,
  describeBackend,
  initBackend,
  loadTensorflowPackage,
  tensorflowDevice,
  type ModuleLoader,
} from "../src/backend/index.js";
import {
  CUDA_INSTALL,
  CUDA_PROVIDER_LIBS,
  cudaFailure,
  cudaInstallProblem,
  defaultCudaEnv,
  parseDevice,
  type CudaEnv,
} from "../src/inference/device.js";
import { OnnxEngine } from "../src/inference/onnx-engine.js";
import { loadEngine } from "../src/inference/index.js";
import { createApp } from "../src/serve/app.js";
import { DEFAULT_MODEL_DIR } from "../src/serve/config.js";
import { parseServeConfig } from "../src/serve/command.js";
import { InputError } from "../src/util/errors.js";
import { assertOneLineError, runCli } from "./helpers/cli.js";
import { pngImage } from "./helpers/embed.js";
import { tempDir } from "./helpers/paths.js";

/** A loader with these packages installed; records what was asked for. */
function standIn(installed: Record<string, () => unknown>): ModuleLoader & { asked: string[] } {
  const asked: string[] = [];
  const load = async (name: string) => {
    asked.push(name);
    const m = installed[name];
    if (!m) {
      const e = new Error(`Cannot find package '${name}' imported from /app/dist/src/backend/index.js`);
      (e as NodeJS.ErrnoException).code = "ERR_MODULE_NOT_FOUND";
      throw e;
    }
    return m();
  };
  return Object.assign(load, { asked });
}

const oneLine = (s: string) => assert.doesNotMatch(s, /\n/, `not one line: ${s}`);

test("training: tfjs-node-gpu is preferred when installed; else tfjs-node; neither: an install line", async () => {
  const both = standIn({ [TFJS_NODE_GPU]: () => ({}), [TFJS_NODE]: () => ({}) });
  assert.equal(await loadTensorflowPackage("tensorflow", both), TFJS_NODE_GPU);
  assert.deepEqual(both.asked, [TFJS_NODE_GPU], "the CPU package is never loaded beside the GPU one");

  const cpuOnly = standIn({ [TFJS_NODE]: () => ({}) });
  assert.equal(await loadTensorflowPackage("tensorflow", cpuOnly), TFJS_NODE);
  assert.deepEqual(cpuOnly.asked, [TFJS_NODE_GPU, TFJS_NODE]);

  // tensorflow-cpu takes tfjs-node even when the GPU package is there.
  const cpuChosen = standIn({ [TFJS_NODE_GPU]: () => ({}), [TFJS_NODE]: () => ({}) });
  assert.equal(await loadTensorflowPackage("tensorflow-cpu", cpuChosen), TFJS_NODE);
  assert.deepEqual(cpuChosen.asked, [TFJS_NODE]);

  const none = standIn({});
  await assert.rejects(loadTensorflowPackage("tensorflow", none), (e: Error) => {
    assert.ok(e instanceof InputError);
    oneLine(e.message);
    assert.match(e.message, /npm install @tensorflow\/tfjs-node /);
    assert.match(e.message, /npm install @tensorflow\/tfjs-node-gpu .*CUDA 11\.2 and cuDNN 8\.1/);
    return true;
  });
  await assert.rejects(loadTensorflowPackage("tensorflow-gpu", cpuOnly), (e: Error) => {
    oneLine(e.message);
    assert.match(e.message, /'tensorflow-gpu' is unavailable: @tensorflow\/tfjs-node-gpu is not installed/);
    assert.match(e.message, /npm install @tensorflow\/tfjs-node-gpu/);
    return true;
  });
  await assert.rejects(
    loadTensorflowPackage("tensorflow-cpu", standIn({})),
    /npm install @tensorflow\/tfjs-node /,
  );
});

test("training: an installed GPU package that does not load is an error naming CUDA, not a silent switch", async () => {
  const broken = standIn({
    [TFJS_NODE_GPU]: () => {
      throw new Error(
        "libcudart.so.11.0: cannot open shared object file: No such file or directory\n    at x",
      );
    },
    [TFJS_NODE]: () => ({}),
  });
  await assert.rejects(loadTensorflowPackage("tensorflow", broken), (e: Error) => {
    oneLine(e.message);
    assert.match(
      e.message,
      /tfjs-node-gpu is installed but does not load \(libcudart\.so\.11\.0: cannot open/,
    );
    assert.match(e.message, /CUDA 11\.2 and cuDNN 8\.1.*--backend tensorflow-cpu/);
    return true;
  });
  assert.deepEqual(broken.asked, [TFJS_NODE_GPU]);
  // A package whose own dependency is missing is installed (broken), not absent.
  const missingDep = standIn({
    [TFJS_NODE_GPU]: () => {
      throw new Error("Cannot find module '@mapbox/node-pre-gyp'");
    },
  });
  await assert.rejects(loadTensorflowPackage("tensorflow", missingDep), /installed but does not load/);
});

test("training: the device is the backend's own GPU check; tensorflow-gpu without a GPU is an error", () => {
  assert.equal(tensorflowDevice("tensorflow", TFJS_NODE_GPU, { isUsingGpuDevice: true }), "gpu");
  assert.equal(tensorflowDevice("tensorflow", TFJS_NODE_GPU, { isUsingGpuDevice: false }), "cpu");
  assert.equal(tensorflowDevice("tensorflow", TFJS_NODE, {}), "cpu");
  assert.throws(
    () => tensorflowDevice("tensorflow-gpu", TFJS_NODE_GPU, { isUsingGpuDevice: false }),
    /TensorFlow found no GPU \(check nvidia-smi/,
  );
});

test("training: initBackend with a stand-in tfjs-node-gpu that registers a GPU tensorflow backend", async () => {
  // The stand-in does what the real package does on import: register the 'tensorflow' backend
  // (here the CPU backend's class, flagged as on a GPU like tfjs-node-gpu's NodeJSKernelBackend).
  const Cpu = tf.findBackend("cpu")!.constructor as new () => tf.KernelBackend;
  const fakeGpu = standIn({
    [TFJS_NODE_GPU]: () =>
      tf.registerBackend("tensorflow", () => Object.assign(new Cpu(), { isUsingGpuDevice: true })),
  });
  try {
    const info = await initBackend("tensorflow", { load: fakeGpu });
    assert.equal(info.name, "tensorflow");
    assert.equal(info.device, "gpu");
    assert.equal(info.package, TFJS_NODE_GPU);
    assert.match(
      describeBackend(info),
      /^backend: tensorflow on GPU \(@tensorflow\/tfjs-node-gpu\) \[requested\]$/,
    );
  } finally {
    await tf.setBackend("cpu");
    tf.removeBackend("tensorflow");
  }
  // No native package at all: the default falls back to wasm and says why; asked for, it is an error.
  const none = standIn({});
  const info = await initBackend(undefined, { load: none });
  assert.equal(info.name, "wasm");
  assert.equal(info.device, "cpu");
  assert.match(info.reason, /tfjs-node-gpu nor @tensorflow\/tfjs-node is installed/);
  await assert.rejects(initBackend("tensorflow", { load: none }), /npm install @tensorflow\/tfjs-node/);
});

test("training: the checkpoint's manifest records the device and the backend's package", () => {
  const out = join(tempDir(), "ck");
  const r = runCli(
    ["train", "--backend", "wasm", "--train-size", "200", "--val-size", "20", "--epochs", "1", "--out", out],
    {},
    300_000,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^backend: wasm \[requested\]$/m);
  const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
  assert.equal(m.training.backend, "wasm");
  assert.equal(m.training.device, "cpu");
  assert.equal(m.training.backendPackage, "@tensorflow/tfjs-backend-wasm");
});

/** A linux-x64 machine whose provider libraries are installed; dlopen answers `loadError`. */
function cudaEnv(over: Partial<CudaEnv> = {}, loadError?: string): CudaEnv {
  return {
    platform: "linux",
    arch: "x64",
    binDir: "/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64",
    exists: () => true,
    dlopen: () => loadError,
    ...over,
  };
}

test("device: parsing, and what is seen missing before any session", () => {
  assert.equal(parseDevice(undefined), "cpu");
  assert.equal(parseDevice("cuda"), "cuda");
  assert.throws(() => parseDevice("gpu"), /--device must be cpu or cuda \(got 'gpu'\)/);
  assert.equal(cudaInstallProblem(cudaEnv()), undefined);
  const mac = cudaInstallProblem(cudaEnv({ platform: "darwin", arch: "arm64" }))!;
  assert.match(mac, /on linux x64 only \(this is darwin arm64\)/);
  const noLibs = cudaInstallProblem(cudaEnv({ exists: () => false }))!;
  oneLine(noLibs);
  assert.match(noLibs, /CUDA execution provider is not installed/);
  for (const lib of CUDA_PROVIDER_LIBS) assert.ok(noLibs.includes(lib), lib);
  assert.ok(noLibs.includes(CUDA_INSTALL));
});

test("device: ONNX Runtime's CUDA failures become one line naming the missing piece", () => {
  const ortMsg = "OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library";
  const cases: Array<[string | undefined, string, RegExp]> = [
    [
      "libcudnn.so.9: cannot open shared object file: No such file or directory",
      ortMsg,
      /libcudnn\.so\.9 not found \(cuDNN 9 for CUDA 12/,
    ],
    [
      "libcublasLt.so.12: cannot open shared object file: No such file",
      ortMsg,
      /libcublasLt\.so\.12 .*\(CUDA 12/,
    ],
    ["libcuda.so.1: cannot open shared object file: No such file", ortMsg, /\(the NVIDIA driver/],
    [
      undefined,
      "[ONNXRuntimeError] : 1 : FAIL : CUDA failure 100: no CUDA-capable device is detected ; GPU=0",
      /no NVIDIA GPU is visible/,
    ],
    [undefined, "CUDA failure 35: CUDA driver version is insufficient", /driver is too old for CUDA 12/],
    [
      undefined,
      "something else\nwith a second line",
      /could not start its CUDA execution provider \(something else with/,
    ],
  ];
  for (const [loadError, msg, want] of cases) {
    const line = cudaFailure(msg, cudaEnv({}, loadError));
    oneLine(line);
    assert.match(line, /^--device cuda: /);
    assert.match(line, want);
  }
});

/** Stand-in session factory: records the options, then opens the real session on the CPU. */
function recordingFactory() {
  const seen: ort.InferenceSession.SessionOptions[] = [];
  const create = async (model: Uint8Array, o: ort.InferenceSession.SessionOptions) => {
    seen.push(o);
    const { executionProviders: _ep, ...cpu } = o;
    return ort.InferenceSession.create(model, cpu);
  };
  return { seen, create };
}

test("device: --device cuda asks ONNX Runtime for its CUDA provider, and /v1/models reports it", async () => {
  const cpu = recordingFactory();
  const e1 = await OnnxEngine.load(DEFAULT_MODEL_DIR, { threads: 1, createSession: cpu.create });
  assert.ok(cpu.seen.length >= 4);
  for (const o of cpu.seen) assert.equal(o.executionProviders, undefined);
  assert.equal(e1.device, "cpu");
  assert.equal(e1.executionProvider, "CPUExecutionProvider");
  await e1.dispose();

  const cuda = recordingFactory();
  const engine = await OnnxEngine.load(DEFAULT_MODEL_DIR, {
    threads: 1,
    device: "cuda",
    createSession: cuda.create,
    cudaEnv: cudaEnv(),
  });
  try {
    assert.ok(cuda.seen.length >= 4);
    for (const o of cuda.seen) assert.deepEqual(o.executionProviders, ["cuda"]);
    assert.equal(engine.device, "cuda");
    assert.equal(engine.executionProvider, "CUDAExecutionProvider");
    const app = createApp(engine, { log: () => {} });
    assert.equal(await app.ready, true);
    const r = await request(app).get("/v1/models");
    assert.equal(r.status, 200);
    assert.equal(r.body.models[0].device, "cuda");
    assert.equal(r.body.models[0].execution_provider, "CUDAExecutionProvider");
  } finally {
    await engine.dispose();
  }
});

test("device: a CUDA session that fails to start is a one-line InputError", async () => {
  const failing = async () => {
    throw new Error("OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library");
  };
  await assert.rejects(
    OnnxEngine.load(DEFAULT_MODEL_DIR, {
      device: "cuda",
      createSession: failing,
      cudaEnv: cudaEnv({}, "libcudnn.so.9: cannot open shared object file: No such file or directory"),
    }),
    (e: Error) => {
      assert.ok(e instanceof InputError);
      oneLine(e.message);
      assert.match(e.message, /^--device cuda: libcudnn\.so\.9 not found \(cuDNN 9/);
      return true;
    },
  );
});

// The rest is real behaviour on a machine without onnxruntime-node's CUDA provider (this one, CI).
const cudaInstalled = cudaInstallProblem() === undefined;

test(
  "device: here, --device cuda fails at start with one line (serve, embed, the engines)",
  { skip: cudaInstalled },
  async () => {
    const notInstalled =
      /--device cuda: ONNX Runtime's CUDA execution provider is not installed .*npm rebuild onnxruntime-node/;
    assertOneLineError(runCli(["serve", "--device", "cuda", "--port", "0"], {}, 60_000), notInstalled);
    assertOneLineError(runCli(["serve", "--port", "0"], { EQUIVAE_DEVICE: "cuda" }, 60_000), notInstalled);
    assertOneLineError(
      runCli(["serve", "--device", "tpu"]),
      /--device \(\$EQUIVAE_DEVICE\) must be cpu or cuda/,
    );
    assertOneLineError(runCli(["serve", "--device", "cuda", "--engine", "tfjs"]), /needs the onnx engine/);
    const dir = tempDir();
    mkdirSync(join(dir, "in"));
    writeFileSync(join(dir, "in", "a.png"), pngImage(1));
    assertOneLineError(
      runCli(["embed", "--input", join(dir, "in"), "--output", join(dir, "e.npy"), "--device", "cuda"]),
      notInstalled,
    );
    assertOneLineError(
      runCli(["embed", "--input", join(dir, "in"), "--output", join(dir, "e.npy"), "--device", "gpu"]),
      /--device \(\$EQUIVAE_DEVICE\) must be cpu or cuda/,
    );
    await assert.rejects(loadEngine(DEFAULT_MODEL_DIR, { engine: "onnx", device: "cuda" }), notInstalled);
    await assert.rejects(
      loadEngine(DEFAULT_MODEL_DIR, { engine: "onnx", device: "cuda", workers: 1 }),
      notInstalled,
    );
    // ONNX Runtime's own failure (as if the provider files were there): the real message, mapped.
    await assert.rejects(
      OnnxEngine.load(DEFAULT_MODEL_DIR, {
        device: "cuda",
        cudaEnv: { ...defaultCudaEnv(), exists: () => true },
      }),
      (e: Error) => {
        assert.ok(e instanceof InputError);
        oneLine(e.message);
        assert.match(
          e.message,
          /^--device cuda: libonnxruntime_providers_cuda\.so not found \(ONNX Runtime's CUDA provider/,
        );
        return true;
      },
    );
    const cfg = parseServeConfig(["--device", "cuda"], {});
    assert.ok(cfg !== "help" && cfg.device === "cuda");
    assert.equal((parseServeConfig([], {}) as { device: string }).device, "cpu");
  },
);
