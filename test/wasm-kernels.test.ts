import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { registerWasmTrainingKernels } from "../src/backend/wasm-kernels.js";

const TOL = 1e-4;

/** Deterministic uniform(-1, 1) values (mulberry32). */
function randomValues(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** max |a - b| / max |ref|. */
function relErr(got: Float32Array, ref: Float32Array): number {
  assert.equal(got.length, ref.length, "length mismatch");
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
    const d = Math.abs(got[i] - ref[i]);
    maxDiff = Number.isNaN(d) ? Infinity : Math.max(maxDiff, d);
  }
  return maxDiff / Math.max(maxRef, 1e-30);
}

type Pad =
  "same" | "valid" | number | [[number, number], [number, number], [number, number], [number, number]];

/** Runs `fn` on `backend` with fresh tensors built from `inputs`, returning copies of the outputs. */
async function runOn(
  backend: string,
  inputs: Array<{ values: Float32Array; shape: number[] }>,
  fn: (xs: tf.Tensor[]) => tf.Tensor[],
): Promise<Float32Array[]> {
  assert.ok(await tf.setBackend(backend));
  let out: Float32Array[] = [];
  // Results are copied out inside the tidy but not returned from it (tidy walks returned containers).
  tf.tidy(() => {
    const xs = inputs.map((i) => tf.tensor(i.values, i.shape, "float32"));
    out = fn(xs).map((t) => Float32Array.from(t.dataSync()));
  });
  return out;
}

const worst = { forward: 0, dx: 0, dw: 0 };

async function compare(
  label: string,
  inputs: Array<{ values: Float32Array; shape: number[] }>,
  fn: (xs: tf.Tensor[]) => tf.Tensor[],
  names: Array<keyof typeof worst>,
): Promise<void> {
  const ref = await runOn("cpu", inputs, fn);
  const got = await runOn("wasm", inputs, fn);
  ref.forEach((r, i) => {
    const e = relErr(got[i], r);
    worst[names[i]] = Math.max(worst[names[i]], e);
    assert.ok(e < TOL, `${label}: ${names[i]} relative error ${e.toExponential(2)} >= ${TOL}`);
  });
}

interface ConvCase {
  n: number;
  h: number;
  w: number;
  c: number;
  f: number;
  k: number;
  s: number | [number, number];
  pad: Pad;
}

function convOutSize(cse: ConvCase): [number, number] {
  const [sh, sw] = typeof cse.s === "number" ? [cse.s, cse.s] : cse.s;
  if (cse.pad === "same") return [Math.ceil(cse.h / sh), Math.ceil(cse.w / sw)];
  if (cse.pad === "valid") return [Math.ceil((cse.h - cse.k + 1) / sh), Math.ceil((cse.w - cse.k + 1) / sw)];
  const [pt, pb, pl, pr] =
    typeof cse.pad === "number"
      ? [cse.pad, cse.pad, cse.pad, cse.pad]
      : [cse.pad[1][0], cse.pad[1][1], cse.pad[2][0], cse.pad[2][1]];
  return [Math.floor((cse.h + pt + pb - cse.k) / sh) + 1, Math.floor((cse.w + pl + pr - cse.k) / sw) + 1];
}

const CONV_CASES: ConvCase[] = [
  // Encoder of the 28x28 model (filters 16,16,32,32,64; strides 1,2,2,2,2; 5x5 'same') and its output conv.
  { n: 1, h: 28, w: 28, c: 1, f: 16, k: 5, s: 1, pad: "same" },
  { n: 3, h: 28, w: 28, c: 1, f: 16, k: 5, s: 1, pad: "same" },
  { n: 1, h: 28, w: 28, c: 16, f: 16, k: 5, s: 2, pad: "same" },
  { n: 3, h: 28, w: 28, c: 16, f: 16, k: 5, s: 2, pad: "same" },
  { n: 3, h: 14, w: 14, c: 16, f: 32, k: 5, s: 2, pad: "same" },
  { n: 3, h: 7, w: 7, c: 32, f: 32, k: 5, s: 2, pad: "same" },
  { n: 1, h: 7, w: 7, c: 32, f: 32, k: 5, s: 2, pad: "same" },
  { n: 3, h: 4, w: 4, c: 32, f: 64, k: 5, s: 2, pad: "same" },
  { n: 3, h: 28, w: 28, c: 16, f: 1, k: 5, s: 1, pad: "same" },
  { n: 1, h: 28, w: 28, c: 1, f: 16, k: 5, s: 2, pad: "same" },
  // 32x32 RGB model.
  { n: 3, h: 32, w: 32, c: 3, f: 16, k: 5, s: 1, pad: "same" },
  { n: 3, h: 32, w: 32, c: 16, f: 16, k: 5, s: 2, pad: "same" },
  { n: 3, h: 32, w: 32, c: 3, f: 16, k: 5, s: 2, pad: "same" },
  { n: 3, h: 16, w: 16, c: 16, f: 32, k: 5, s: 2, pad: "same" },
  { n: 3, h: 8, w: 8, c: 32, f: 32, k: 5, s: 2, pad: "same" },
  { n: 1, h: 4, w: 4, c: 32, f: 64, k: 5, s: 2, pad: "same" },
  { n: 3, h: 32, w: 32, c: 16, f: 3, k: 5, s: 1, pad: "same" },
  // 3x3 kernels, odd / non-square sizes, 'valid', explicit pads, unequal strides.
  { n: 3, h: 7, w: 7, c: 4, f: 8, k: 3, s: 1, pad: "same" },
  { n: 3, h: 9, w: 11, c: 4, f: 8, k: 3, s: 2, pad: "same" },
  { n: 2, h: 28, w: 28, c: 3, f: 8, k: 5, s: 2, pad: "valid" },
  { n: 2, h: 9, w: 10, c: 3, f: 5, k: 3, s: 2, pad: "valid" },
  { n: 2, h: 8, w: 8, c: 3, f: 4, k: 3, s: 1, pad: "valid" },
  { n: 2, h: 9, w: 9, c: 2, f: 4, k: 3, s: 3, pad: "same" },
  { n: 2, h: 8, w: 9, c: 3, f: 4, k: 3, s: 2, pad: 1 },
  { n: 2, h: 10, w: 9, c: 3, f: 4, k: 5, s: 2, pad: 2 },
  {
    n: 2,
    h: 9,
    w: 8,
    c: 3,
    f: 4,
    k: 3,
    s: 2,
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  },
  { n: 2, h: 9, w: 10, c: 3, f: 4, k: 5, s: [2, 1], pad: "same" },
  { n: 2, h: 10, w: 9, c: 3, f: 4, k: 3, s: [1, 2], pad: "same" },
];

interface TransposeCase {
  n: number;
  inHW: number;
  outHW: number;
  inC: number;
  outC: number;
  k: number;
  s: number;
}

const TRANSPOSE_CASES: TransposeCase[] = [
  // Decoder of the 28x28 model: 2 -> 4 -> 7 -> 14 -> 28 (5x5, stride 2, 'same'); stride-1 5x5 'same'.
  { n: 1, inHW: 2, outHW: 4, inC: 64, outC: 32, k: 5, s: 2 },
  { n: 3, inHW: 2, outHW: 4, inC: 64, outC: 32, k: 5, s: 2 },
  { n: 3, inHW: 4, outHW: 7, inC: 32, outC: 32, k: 5, s: 2 },
  { n: 1, inHW: 4, outHW: 7, inC: 32, outC: 32, k: 5, s: 2 },
  { n: 3, inHW: 7, outHW: 14, inC: 32, outC: 16, k: 5, s: 2 },
  { n: 3, inHW: 14, outHW: 28, inC: 16, outC: 16, k: 5, s: 2 },
  { n: 1, inHW: 14, outHW: 28, inC: 16, outC: 1, k: 5, s: 2 },
  { n: 3, inHW: 28, outHW: 28, inC: 16, outC: 16, k: 5, s: 1 },
  // 32x32 model: 2 -> 4 -> 8 -> 16 -> 32.
  { n: 3, inHW: 4, outHW: 8, inC: 32, outC: 32, k: 5, s: 2 },
  { n: 3, inHW: 8, outHW: 16, inC: 32, outC: 16, k: 5, s: 2 },
  { n: 3, inHW: 16, outHW: 32, inC: 16, outC: 16, k: 5, s: 2 },
  { n: 1, inHW: 16, outHW: 32, inC: 16, outC: 3, k: 5, s: 2 },
  // 3x3.
  { n: 2, inHW: 4, outHW: 7, inC: 8, outC: 4, k: 3, s: 2 },
  { n: 2, inHW: 7, outHW: 7, inC: 8, outC: 4, k: 3, s: 1 },
];

before(async () => {
  assert.ok(await tf.setBackend("wasm"));
  registerWasmTrainingKernels();
});

/** [a shape, b shape, transposeA, transposeB]: rank 2 (dense layers) and batched, broadcast rank 3. */
const MATMUL_CASES: Array<[number[], number[], boolean, boolean]> = [
  [[7, 5], [7, 3], true, false],
  [[5, 7], [3, 7], false, true],
  [[7, 5], [3, 7], true, true],
  [[5, 7], [7, 3], false, false],
  [[2, 6, 4], [2, 6, 3], true, false],
  [[2, 4, 6], [1, 3, 6], false, true],
  [[1, 6, 4], [3, 5, 6], true, true],
];

after(async () => {
  await tf.setBackend("cpu");
});

describe("wasm training kernels", () => {
  test("registration is idempotent and replaces the shipped Conv2DBackpropInput and BatchMatMul", () => {
    const ours = tf.getKernel("Conv2DBackpropInput", "wasm");
    assert.ok(ours);
    // The shipped kernel cwraps a C++ function in its setupFunc; ours needs no setup.
    assert.equal(ours.setupFunc, undefined);
    registerWasmTrainingKernels();
    registerWasmTrainingKernels();
    assert.equal(tf.getKernel("Conv2DBackpropInput", "wasm"), ours);
    assert.ok(tf.getKernel("Conv2DBackpropFilter", "wasm"));
    // Ours keeps the shipped BatchMatMul for plain products and calls it after transposing otherwise.
    assert.equal(tf.getKernel("BatchMatMul", "wasm")?.setupFunc, undefined);
  });

  for (const cse of CONV_CASES) {
    const label = `conv2d n=${cse.n} ${cse.h}x${cse.w}x${cse.c}->${cse.f} k=${cse.k} s=${cse.s} pad=${JSON.stringify(cse.pad)}`;
    test(`gradients of ${label}`, async () => {
      const [oh, ow] = convOutSize(cse);
      const xShape = [cse.n, cse.h, cse.w, cse.c];
      const wShape = [cse.k, cse.k, cse.c, cse.f];
      const dyShape = [cse.n, oh, ow, cse.f];
      const inputs = [
        { values: randomValues(size(xShape), 1), shape: xShape },
        { values: randomValues(size(wShape), 2), shape: wShape },
        { values: randomValues(size(dyShape), 3), shape: dyShape },
      ];
      await compare(
        label,
        inputs,
        ([x, w, dy]) => {
          const f = (a: tf.Tensor, b: tf.Tensor) =>
            tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, cse.s, cse.pad);
          const y = f(x, w);
          assert.deepEqual(y.shape, dyShape);
          return [y, ...tf.grads(f)([x, w], dy)];
        },
        ["forward", "dx", "dw"],
      );
    });
  }

  for (const cse of TRANSPOSE_CASES) {
    const label = `conv2dTranspose n=${cse.n} ${cse.inHW}->${cse.outHW} ${cse.inC}->${cse.outC} k=${cse.k} s=${cse.s}`;
    test(`forward and gradients of ${label}`, async () => {
      const hShape = [cse.n, cse.inHW, cse.inHW, cse.inC];
      const wShape = [cse.k, cse.k, cse.outC, cse.inC];
      const outShape: [number, number, number, number] = [cse.n, cse.outHW, cse.outHW, cse.outC];
      const inputs = [
        { values: randomValues(size(hShape), 4), shape: hShape },
        { values: randomValues(size(wShape), 5), shape: wShape },
        { values: randomValues(size(outShape), 6), shape: outShape },
      ];
      await compare(
        label,
        inputs,
        ([h, w, dy]) => {
          const f = (a: tf.Tensor, b: tf.Tensor) =>
            tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, outShape, cse.s, "same");
          return [f(h, w), ...tf.grads(f)([h, w], dy)];
        },
        ["forward", "dx", "dw"],
      );
    });
  }

  for (const [aShape, bShape, transposeA, transposeB] of MATMUL_CASES) {
    const label = `matMul [${aShape}] x [${bShape}] transposeA=${transposeA} transposeB=${transposeB}`;
    test(label, async () => {
      const inputs = [
        { values: randomValues(size(aShape), 17), shape: aShape },
        { values: randomValues(size(bShape), 18), shape: bShape },
      ];
      await compare(label, inputs, ([a, b]) => [tf.matMul(a, b, transposeA, transposeB)], ["forward"]);
    });
  }

  test("gradients of a dense layer (both transposed products)", async () => {
    const inputs = [
      { values: randomValues(160 * 256, 19), shape: [160, 256] },
      { values: randomValues(256 * 128, 20), shape: [256, 128] },
      { values: randomValues(160 * 128, 21), shape: [160, 128] },
    ];
    await compare(
      "dense",
      inputs,
      ([x, w, dy]) => {
        const f = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
        return [f(x, w), ...tf.grads(f)([x, w], dy)];
      },
      ["forward", "dx", "dw"],
    );
  });

  test("NCHW kernels (filter gradient natively, input gradient via the shipped fallback)", async () => {
    const xShape = [2, 3, 9, 8];
    const dyShape = [2, 4, 5, 4];
    const filterShape: [number, number, number, number] = [5, 5, 3, 4];
    const attrs = { strides: [2, 2], pad: "same", dataFormat: "NCHW" };
    const inputs = [
      { values: randomValues(size(xShape), 7), shape: xShape },
      { values: randomValues(size(dyShape), 8), shape: dyShape },
      { values: randomValues(size(filterShape), 9), shape: filterShape },
    ];
    await compare(
      "NCHW",
      inputs,
      ([x, dy, w]) => [
        tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape }) as tf.Tensor,
        tf
          .engine()
          .runKernel("Conv2DBackpropInput", { dy, filter: w }, { ...attrs, inputShape: xShape }) as tf.Tensor,
      ],
      ["dw", "dx"],
    );
  });

  test("numeric pad with dimRoundingMode 'ceil' (kernels called directly)", async () => {
    // 8x8, k=3, s=2, pad=1: (8 - 3 + 2) / 2 + 1 = 4.5 -> 5 rows with 'ceil' (the last one reads padding).
    const xShape = [2, 8, 8, 3];
    const dyShape = [2, 5, 5, 4];
    const filterShape: [number, number, number, number] = [3, 3, 3, 4];
    const attrs = { strides: [2, 2], pad: 1, dataFormat: "NHWC", dimRoundingMode: "ceil" };
    const inputs = [
      { values: randomValues(size(xShape), 14), shape: xShape },
      { values: randomValues(size(dyShape), 15), shape: dyShape },
      { values: randomValues(size(filterShape), 16), shape: filterShape },
    ];
    await compare(
      "ceil",
      inputs,
      ([x, dy, w]) => [
        tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape }) as tf.Tensor,
        tf
          .engine()
          .runKernel("Conv2DBackpropInput", { dy, filter: w }, { ...attrs, inputShape: xShape }) as tf.Tensor,
      ],
      ["dw", "dx"],
    );
  });

  test("no tensors or wasm buffers leak across repeated gradient calls", async () => {
    assert.ok(await tf.setBackend("wasm"));
    const x = tf.tensor(randomValues(3 * 28 * 28 * 16, 10), [3, 28, 28, 16]) as tf.Tensor4D;
    const w = tf.tensor(randomValues(5 * 5 * 16 * 32, 11), [5, 5, 16, 32]) as tf.Tensor4D;
    const h = tf.tensor(randomValues(3 * 4 * 4 * 32, 12), [3, 4, 4, 32]) as tf.Tensor4D;
    const wt = tf.tensor(randomValues(5 * 5 * 16 * 32, 13), [5, 5, 16, 32]) as tf.Tensor4D;
    const step = () =>
      tf.tidy(() => {
        const conv = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf
            .conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same")
            .square()
            .sum(),
        );
        const deconv = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf
            .conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, [3, 7, 7, 16], 2, "same")
            .square()
            .sum(),
        );
        const s1 = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf
            .conv2d(a as tf.Tensor4D, b.slice([0, 0, 0, 0], [5, 5, 16, 16]) as tf.Tensor4D, 1, "same")
            .square()
            .sum(),
        );
        const dense = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf
            .matMul(a.reshape([-1, 16]), b.reshape([16, -1]))
            .square()
            .sum(),
        );
        const gs = [...conv([x, w]), ...deconv([h, wt]), ...s1([x, w]), ...dense([x, w])];
        gs.forEach((g) => g.dataSync());
      });
    step();
    const backend = tf.backend();
    const tensorsBefore = tf.memory().numTensors;
    const idsBefore = backend.numDataIds();
    for (let i = 0; i < 5; i++) step();
    assert.equal(tf.memory().numTensors, tensorsBefore, "engine tensors leaked");
    assert.equal(backend.numDataIds(), idsBefore, "wasm data ids leaked");
    tf.dispose([x, w, h, wt]);
  });

  test("reports worst relative errors", (t) => {
    t.diagnostic(
      `max relative error: forward ${worst.forward.toExponential(2)}, dx ${worst.dx.toExponential(2)}, ` +
        `dw ${worst.dw.toExponential(2)}`,
    );
  });
});
