/**
 * Prints ms per call of the wasm conv training kernels on model-sized shapes (batch 64 by default):
 *   - Conv2DBackpropInput (conv input gradient, and tf.conv2dTranspose forward): the shipped wasm kernel vs
 *     the kernel from src/backend/wasm-kernels.ts;
 *   - Conv2DBackpropFilter: ours (the shipped wasm backend has none), with the wasm forward Conv2D of the
 *     same layer as a yardstick and, for reference, the tfjs cpu backend.
 *   - with --tensorflow (when tfjs-node is installed), the same three kernels on `tensorflow` (oneDNN,
 *     one thread) and the ratio of one layer's training work (fwd + dx + dW), wasm / tensorflow: how far
 *     wasm's XNNPACK convolutions (128-bit SIMD) are from native ones on this CPU, whatever else a step does.
 * Usage: node dist/scripts/bench-conv-kernels.js [batch] [--cpu] [--tensorflow]
 *   (--cpu adds the slow cpu reference)
 * Nothing is asserted.
 */
process.env.TF_NUM_INTRAOP_THREADS ??= "1";
process.env.TF_NUM_INTEROP_THREADS ??= "1";

import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { loadTensorflowPackage } from "../src/backend/index.js";
import { registerWasmTrainingKernels, unregisterWasmTrainingKernels } from "../src/backend/wasm-kernels.js";
import { errorMessage } from "../src/util/errors.js";

interface Layer {
  name: string;
  /** Forward conv: x [n, h, w, c] -> [n, ceil(h/s), ceil(w/s), f]; 'same' padding. */
  h: number;
  w: number;
  c: number;
  f: number;
  k: number;
  s: number;
}

const args = process.argv.slice(2);
const BATCH = Number(args.find((a) => /^\d+$/.test(a)) ?? 64);
const WITH_CPU = args.includes("--cpu");
/** Set by main() when --tensorflow is given and tfjs-node loads. */
let withTensorflow = false;

// The 28x28 model: filters 16,16,32,32,64, strides 1,2,2,2,2, 5x5 'same'; the decoder mirrors it.
const LAYERS: Layer[] = [
  { name: "enc0 28x28x1->16 s1", h: 28, w: 28, c: 1, f: 16, k: 5, s: 1 },
  { name: "enc1 28x28x16->16 s2", h: 28, w: 28, c: 16, f: 16, k: 5, s: 2 },
  { name: "enc2 14x14x16->32 s2", h: 14, w: 14, c: 16, f: 32, k: 5, s: 2 },
  { name: "enc3 7x7x32->32 s2", h: 7, w: 7, c: 32, f: 32, k: 5, s: 2 },
  { name: "enc4 4x4x32->64 s2", h: 4, w: 4, c: 32, f: 64, k: 5, s: 2 },
  { name: "out  28x28x16->1 s1", h: 28, w: 28, c: 16, f: 1, k: 5, s: 1 },
  { name: "rgb0 32x32x3->16 s1", h: 32, w: 32, c: 3, f: 16, k: 5, s: 1 },
  { name: "rgb1 32x32x16->16 s2", h: 32, w: 32, c: 16, f: 16, k: 5, s: 2 },
];

/** ms per call: warm up, then repeat for at least `budgetMs` (and at least 3 calls). */
function time(fn: () => void, budgetMs = 400, warmup = 2): number {
  for (let i = 0; i < warmup; i++) fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (n < Math.min(3, warmup + 1) || t - t0 < budgetMs) {
    fn();
    n++;
    t = performance.now();
    if (n >= 200) break;
  }
  return (t - t0) / n;
}

function kernelCall(
  name: string,
  inputs: Record<string, tf.Tensor>,
  attrs: Record<string, unknown>,
): () => void {
  return () => {
    const out = tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
    out.dataSync();
    out.dispose();
  };
}

/** Multiply-adds per second of a call, in billions. */
function gmacs(macs: number, ms: number): string {
  return (macs / ms / 1e6).toFixed(1).padStart(10);
}

function fmt(ms: number | undefined): string {
  return ms === undefined ? "-".padStart(9) : ms.toFixed(2).padStart(9);
}

async function benchLayer(layer: Layer): Promise<string> {
  const { h, w, c, f, k, s } = layer;
  const oh = Math.ceil(h / s);
  const ow = Math.ceil(w / s);
  const xShape: [number, number, number, number] = [BATCH, h, w, c];
  const filterShape: [number, number, number, number] = [k, k, c, f];
  const attrs = { strides: [s, s], pad: "same", dataFormat: "NHWC" };
  const inputAttrs = { ...attrs, inputShape: xShape };
  const filterAttrs = { ...attrs, filterShape };

  const run = async <T>(
    backend: string,
    fn: (x: tf.Tensor, dy: tf.Tensor, filter: tf.Tensor) => T,
  ): Promise<T> => {
    await tf.setBackend(backend);
    const x = tf.randomUniform(xShape, -1, 1);
    const dy = tf.randomUniform([BATCH, oh, ow, f], -1, 1);
    const filter = tf.randomUniform(filterShape, -1, 1);
    try {
      return fn(x, dy, filter);
    } finally {
      tf.dispose([x, dy, filter]);
    }
  };

  unregisterWasmTrainingKernels();
  const shippedDx = await run("wasm", (_x, dy, filter) =>
    time(kernelCall("Conv2DBackpropInput", { dy, filter }, inputAttrs)),
  );
  registerWasmTrainingKernels();
  const [forward, oursDx, oursDw] = await run("wasm", (x, dy, filter) => [
    time(kernelCall("Conv2D", { x, filter }, { ...attrs, dilations: [1, 1] })),
    time(kernelCall("Conv2DBackpropInput", { dy, filter }, inputAttrs)),
    time(kernelCall("Conv2DBackpropFilter", { x, dy }, filterAttrs)),
  ]);
  let cpuDx: number | undefined;
  let cpuDw: number | undefined;
  if (WITH_CPU) {
    [cpuDx, cpuDw] = await run("cpu", (x, dy, filter) => [
      time(kernelCall("Conv2DBackpropInput", { dy, filter }, inputAttrs), 0, 0),
      time(kernelCall("Conv2DBackpropFilter", { x, dy }, filterAttrs), 0, 0),
    ]);
  }
  let native = "";
  if (withTensorflow) {
    const [tfFwd, tfDx, tfDw] = await run("tensorflow", (x, dy, filter) => [
      time(kernelCall("Conv2D", { x, filter }, { ...attrs, dilations: [1, 1] })),
      time(kernelCall("Conv2DBackpropInput", { dy, filter }, inputAttrs)),
      time(kernelCall("Conv2DBackpropFilter", { x, dy }, filterAttrs)),
    ]);
    const ratio = (forward + oursDx + oursDw) / (tfFwd + tfDx + tfDw);
    native = `${fmt(tfFwd)}${fmt(tfDx)}${fmt(tfDw)}${ratio.toFixed(1).padStart(7)}x`;
    const macs = BATCH * oh * ow * f * k * k * c;
    native += `${gmacs(macs, forward)}${gmacs(macs, tfFwd)}`;
  }
  return (
    `${layer.name.padEnd(22)}${fmt(forward)}${fmt(shippedDx)}${fmt(oursDx)}` +
    `${(shippedDx / oursDx).toFixed(1).padStart(7)}x${fmt(oursDw)}${WITH_CPU ? fmt(cpuDx) + fmt(cpuDw) : ""}${native}`
  );
}

interface Deconv {
  name: string;
  inHW: number;
  outHW: number;
  inC: number;
  outC: number;
  k: number;
  s: number;
}

const DECONVS: Deconv[] = [
  { name: "dec4 2->4 64->32", inHW: 2, outHW: 4, inC: 64, outC: 32, k: 5, s: 2 },
  { name: "dec3 4->7 32->32", inHW: 4, outHW: 7, inC: 32, outC: 32, k: 5, s: 2 },
  { name: "dec2 7->14 32->16", inHW: 7, outHW: 14, inC: 32, outC: 16, k: 5, s: 2 },
  { name: "dec1 14->28 16->16", inHW: 14, outHW: 28, inC: 16, outC: 16, k: 5, s: 2 },
  { name: "rgb 16->32 16->16", inHW: 16, outHW: 32, inC: 16, outC: 16, k: 5, s: 2 },
];

/** conv2dTranspose forward + gradients w.r.t. input and filter (one decoder layer's training work). */
async function benchDeconv(d: Deconv): Promise<string> {
  await tf.setBackend("wasm");
  const hIn = tf.randomUniform([BATCH, d.inHW, d.inHW, d.inC], -1, 1) as tf.Tensor4D;
  const filter = tf.randomUniform([d.k, d.k, d.outC, d.inC], -1, 1) as tf.Tensor4D;
  const outShape: [number, number, number, number] = [BATCH, d.outHW, d.outHW, d.outC];
  // (Nothing is returned from tidy: it would walk a returned typed array element by element.)
  const fwd = () =>
    tf.tidy(() => {
      tf.conv2dTranspose(hIn, filter, outShape, d.s, "same").dataSync();
    });
  const step = () =>
    tf.tidy(() => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf
          .conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, outShape, d.s, "same")
          .square()
          .sum(),
      )([hIn, filter]);
      g.forEach((t) => t.dataSync());
    });
  try {
    unregisterWasmTrainingKernels();
    const shippedFwd = time(fwd);
    registerWasmTrainingKernels();
    const oursFwd = time(fwd);
    const oursStep = time(step);
    return (
      `${d.name.padEnd(22)}${fmt(shippedFwd)}${fmt(oursFwd)}` +
      `${(shippedFwd / oursFwd).toFixed(1).padStart(7)}x${fmt(oursStep)}`
    );
  } finally {
    registerWasmTrainingKernels();
    tf.dispose([hIn, filter]);
  }
}

async function main(): Promise<void> {
  if (args.includes("--tensorflow")) {
    try {
      await loadTensorflowPackage("tensorflow-cpu");
      withTensorflow = true;
    } catch (e) {
      console.log(`--tensorflow: skipped (${errorMessage(e)})`);
    }
  }
  await tf.setBackend("wasm");
  console.log(`wasm conv training kernels, batch ${BATCH}, ms per call (5x5 'same'), one thread`);
  const head = (names: string[]) => names.map((n) => n.padStart(9)).join("");
  console.log(
    `${"conv layer".padEnd(22)}${head(["fwd", "dx ship", "dx ours"])}${"speedup".padStart(8)}${head(["dW ours"])}` +
      (WITH_CPU ? head(["dx cpu", "dW cpu"]) : "") +
      (withTensorflow
        ? head(["fwd tf", "dx tf", "dW tf"]) +
          "wasm/tf".padStart(8) +
          ["GMAC/s", "GMAC/s tf"].map((n) => n.padStart(10)).join("")
        : ""),
  );
  for (const layer of LAYERS) console.log(await benchLayer(layer));
  console.log("");
  console.log(
    `${"conv2dTranspose".padEnd(22)}${"fwd ship".padStart(9)}${"fwd ours".padStart(9)}` +
      `${"speedup".padStart(8)}${"fwd+grads".padStart(9)}`,
  );
  for (const d of DECONVS) console.log(await benchDeconv(d));
  console.log("");
  console.log(
    "fwd = wasm Conv2D; dx = Conv2DBackpropInput; dW = Conv2DBackpropFilter (none shipped for wasm);",
  );
  if (WITH_CPU) console.log("cpu columns are the tfjs cpu backend (one call), for reference.");
  if (withTensorflow) {
    console.log(
      "tf columns: tfjs-node (TensorFlow's oneDNN kernels, one thread); wasm/tf = (fwd + dx ours + dW ours) / " +
        "(fwd + dx + dW) on tf; GMAC/s of the forward conv.",
    );
  }
}

await main();
