/**
 * Training kernels for the TF.js `wasm` backend.
 *
 * The wasm backend (4.22) ships no `Conv2DBackpropFilter` kernel, so the filter gradient of a conv layer
 * cannot be computed at all, and its `Conv2DBackpropInput` kernel (also what `tf.conv2dTranspose` runs)
 * is a plain scalar loop. Both are rewritten here in terms of the backend's XNNPACK `Conv2D` kernel:
 *
 * - Filter gradient: with the batch as the contracted ("channel") axis, dW is a stride-1 convolution of
 *   x^T = [inC, H, W, N] with dy^T = [outH, outW, N, outC] used as the filter, dilated by the forward
 *   stride. The result [inC, kH', kW', outC] (kH' >= kH) is cropped and transposed to [kH, kW, inC, outC].
 * - Input gradient: split by output phase. For stride s, the rows h' = h + padTop of the padded input with
 *   h' = q*s + r only receive taps a = m*s + r of the filter, so dx is a stride-1 "full" convolution of dy
 *   with a filter holding all s*s phase sub-filters (flipped) as output channels, followed by
 *   depth-to-space and a crop. The filter rearrangement and the (fused) depth-to-space + crop are done in
 *   JS on the wasm heap; they are cheap next to the convolution.
 *
 * - Transposed matrix products (`BatchMatMul` with transposeA or transposeB: the two gradients of every
 *   dense layer): the shipped kernel hands them to a scalar loop, ~1 GMAC/s against ~12-15 for the plain
 *   product (measured, one thread: x^T dy for a [160,256] x [160,128] dense gradient 5.4 ms, against
 *   0.4 for an explicit transpose and the plain product). The operands are transposed by the backend's
 *   Transpose kernel and the plain product runs.
 *
 * Kernels call the backend's own kernels directly (not through the engine), so intermediate results are
 * never engine tensors; each one is released with `backend.disposeData` before returning, and the
 * returned TensorInfo is a fresh buffer with ref count 1, exactly like the shipped kernels.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

const BACKEND = "wasm";
const CONV2D_BACKPROP_FILTER = "Conv2DBackpropFilter";
const CONV2D_BACKPROP_INPUT = "Conv2DBackpropInput";
const BATCH_MAT_MUL = "BatchMatMul";

type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];
type PadAttr = "valid" | "same" | number | ExplicitPad;

interface BackpropFilterAttrs {
  strides: number | [number, number];
  pad: PadAttr;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  filterShape: [number, number, number, number];
}

interface BackpropInputAttrs {
  strides: number | [number, number];
  pad: PadAttr;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  inputShape: [number, number, number, number];
}

interface BatchMatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

interface KernelArgs<A> {
  inputs: Record<string, tf.TensorInfo>;
  backend: BackendWasm;
  attrs: A;
}

/** Shipped kernels replaced by ours (kept to restore them and as fallbacks). */
const shipped = new Map<string, tf.KernelConfig>();
/** Backends on which a shipped kernel's setupFunc has been run by us. */
const shippedSetupDone = new WeakMap<object, Set<string>>();

function runWasmKernel(
  name: string,
  inputs: Record<string, tf.TensorInfo>,
  attrs: Record<string, unknown>,
  backend: BackendWasm,
): tf.TensorInfo {
  const kernel = tf.getKernel(name, BACKEND);
  if (kernel == null) throw new Error(`wasm-kernels: kernel '${name}' is not registered for 'wasm'`);
  const out = kernel.kernelFunc({ inputs, attrs: attrs as tf.NamedAttrMap, backend });
  return Array.isArray(out) ? out[0] : out;
}

function runShipped(name: string, args: KernelArgs<unknown>): tf.TensorInfo | tf.TensorInfo[] {
  const config = shipped.get(name);
  if (config == null) {
    throw new Error(`wasm-kernels: no fallback '${name}' kernel for this case (shipped kernel unavailable)`);
  }
  // The engine only runs setupFunc for kernels registered when the backend is (re)selected; the shipped
  // kernel may have been unregistered before that happened.
  let done = shippedSetupDone.get(args.backend);
  if (done == null) {
    done = new Set();
    shippedSetupDone.set(args.backend, done);
  }
  if (!done.has(name)) {
    config.setupFunc?.(args.backend);
    done.add(name);
  }
  return config.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]);
}

function readFloat(backend: BackendWasm, info: tf.TensorInfo): Float32Array {
  if (info.dtype !== "float32") {
    throw new Error(`wasm-kernels: expected float32 tensors, got ${info.dtype}`);
  }
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** Conv2DBackpropFilter: inputs {x, dy} -> dW [kH, kW, inC, outC]. */
function conv2DBackpropFilter(args: KernelArgs<BackpropFilterAttrs>): tf.TensorInfo {
  const { backend, attrs } = args;
  const { x, dy } = args.inputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  const channelsLast = dataFormat !== "NCHW";
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    channelsLast ? "channelsLast" : "channelsFirst",
  );
  const { inHeight: H, inWidth: W, inChannels: C, outChannels: F } = info;
  const { filterHeight: kH, filterWidth: kW, strideHeight: sH, strideWidth: sW } = info;
  const oH = channelsLast ? dy.shape[1] : dy.shape[2];
  const oW = channelsLast ? dy.shape[2] : dy.shape[3];
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Pad below/right just enough for kH x kW outputs; extra rows of a larger input are cropped afterwards.
  const bottom = Math.max(0, (oH - 1) * sH + kH - H - top);
  const right = Math.max(0, (oW - 1) * sW + kW - W - left);

  // x -> [C, H, W, N]; dy -> [oH, oW, N, F].
  const xT = runWasmKernel("Transpose", { x }, { perm: channelsLast ? [3, 1, 2, 0] : [1, 2, 3, 0] }, backend);
  const dyT = runWasmKernel(
    "Transpose",
    { x: dy },
    { perm: channelsLast ? [1, 2, 0, 3] : [2, 3, 0, 1] },
    backend,
  );
  const pads: ExplicitPad = [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
  let conv: tf.TensorInfo;
  try {
    conv = runWasmKernel(
      "Conv2D",
      { x: xT, filter: dyT },
      { strides: [1, 1], pad: pads, dataFormat: "NHWC", dilations: [sH, sW], dimRoundingMode: undefined },
      backend,
    );
  } finally {
    backend.disposeData(xT.dataId);
    backend.disposeData(dyT.dataId);
  }

  // conv: [C, kH2, kW2, F] -> dW [kH, kW, C, F] (crop + transpose in JS; the filter is small).
  const [, kH2, kW2] = conv.shape;
  const result = new Float32Array(kH * kW * C * F);
  try {
    const src = readFloat(backend, conv);
    for (let a = 0; a < kH; a++) {
      for (let b = 0; b < kW; b++) {
        for (let c = 0; c < C; c++) {
          const s0 = ((c * kH2 + a) * kW2 + b) * F;
          result.set(src.subarray(s0, s0 + F), ((a * kW + b) * C + c) * F);
        }
      }
    }
  } finally {
    backend.disposeData(conv.dataId);
  }
  return backend.makeOutput([kH, kW, C, F], "float32", undefined, result);
}

/** Conv2DBackpropInput: inputs {dy, filter} -> dx of shape inputShape. */
function conv2DBackpropInput(args: KernelArgs<BackpropInputAttrs>): tf.TensorInfo | tf.TensorInfo[] {
  const { backend, attrs } = args;
  const { dy, filter } = args.inputs;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs;
  if (dataFormat === "NCHW" || dy.dtype !== "float32" || filter.dtype !== "float32") {
    return runShipped(CONV2D_BACKPROP_INPUT, args);
  }
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    "channelsLast",
  );
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outChannels: F } = info;
  const { filterHeight: kH, filterWidth: kW, strideHeight: sH, strideWidth: sW } = info;
  const [, oH, oW] = dy.shape;
  const top = info.padInfo.top;
  const left = info.padInfo.left;

  // Taps per phase, the first/last phase-rows (q) touching the unpadded input, and the "full" conv pads.
  const MH = Math.ceil(kH / sH);
  const MW = Math.ceil(kW / sW);
  const qMinH = Math.floor(top / sH);
  const qMinW = Math.floor(left / sW);
  const qMaxH = Math.floor((top + H - 1) / sH);
  const qMaxW = Math.floor((left + W - 1) / sW);
  const pT = MH - 1 - qMinH;
  const pL = MW - 1 - qMinW;
  if (pT < 0 || pL < 0 || oH <= 0 || oW <= 0) {
    // Only for explicit pads larger than the kernel: the shipped (slow but correct) kernel handles it.
    return runShipped(CONV2D_BACKPROP_INPUT, args);
  }
  const pB = Math.max(0, qMaxH - qMinH + 1 - oH - pT + MH - 1);
  const pR = Math.max(0, qMaxW - qMinW + 1 - oW - pL + MW - 1);

  // Phase filter K[i, j, f, (rh*sW + rw)*C + c] = w[(MH-1-i)*sH + rh, (MW-1-j)*sW + rw, c, f] (0 outside).
  const outDepth = sH * sW * C;
  const k = new Float32Array(MH * MW * F * outDepth);
  const w = readFloat(backend, filter);
  for (let i = 0; i < MH; i++) {
    for (let j = 0; j < MW; j++) {
      for (let rh = 0; rh < sH; rh++) {
        const a = (MH - 1 - i) * sH + rh;
        if (a >= kH) continue;
        for (let rw = 0; rw < sW; rw++) {
          const b = (MW - 1 - j) * sW + rw;
          if (b >= kW) continue;
          for (let c = 0; c < C; c++) {
            const src = ((a * kW + b) * C + c) * F;
            let dst = ((i * MW + j) * F * sH + rh) * sW * C + rw * C + c;
            for (let f = 0; f < F; f++, dst += outDepth) k[dst] = w[src + f];
          }
        }
      }
    }
  }
  const kInfo = backend.makeOutput([MH, MW, F, outDepth], "float32", undefined, k);
  const pads: ExplicitPad = [
    [0, 0],
    [pT, pB],
    [pL, pR],
    [0, 0],
  ];
  let conv: tf.TensorInfo;
  try {
    conv = runWasmKernel(
      "Conv2D",
      { x: dy, filter: kInfo },
      { strides: [1, 1], pad: pads, dataFormat: "NHWC", dilations: [1, 1], dimRoundingMode: undefined },
      backend,
    );
  } finally {
    backend.disposeData(kInfo.dataId);
  }

  // conv: [N, RH, RW, sH*sW*C]. Padded-input row h' = h + top is phase row q = floor(h'/sH) - qMinH,
  // phase rh = h' mod sH. Stride 1 with a conv that already has exactly [N, H, W, C] needs no copy.
  const [, RH, RW] = conv.shape;
  if (sH === 1 && sW === 1 && RH === H && RW === W) return conv;
  try {
    const out = backend.makeOutput([N, H, W, C], "float32");
    const src = readFloat(backend, conv);
    const dst = readFloat(backend, out);
    // Source offset (within a phase row) for each output column.
    const colOffset = new Int32Array(W);
    for (let x = 0; x < W; x++) {
      const xx = x + left;
      colOffset[x] = ((Math.floor(xx / sW) - qMinW) * outDepth + (xx % sW) * C) | 0;
    }
    const rowStride = RW * outDepth;
    let o = 0;
    for (let n = 0; n < N; n++) {
      for (let y = 0; y < H; y++) {
        const yy = y + top;
        const rowBase = (n * RH + Math.floor(yy / sH) - qMinH) * rowStride + (yy % sH) * sW * C;
        if (C === 1) {
          for (let x = 0; x < W; x++) dst[o++] = src[rowBase + colOffset[x]];
        } else {
          for (let x = 0; x < W; x++) {
            const s0 = rowBase + colOffset[x];
            for (let c = 0; c < C; c++) dst[o++] = src[s0 + c];
          }
        }
      }
    }
    return out;
  } finally {
    backend.disposeData(conv.dataId);
  }
}

/** The tensor with its last two axes swapped (a fresh buffer). */
function swapLastAxes(t: tf.TensorInfo, backend: BackendWasm): tf.TensorInfo {
  const r = t.shape.length;
  const perm = [...Array(r - 2).keys(), r - 1, r - 2];
  return runWasmKernel("Transpose", { x: t }, { perm }, backend);
}

/** BatchMatMul: a transposed operand is transposed explicitly, then the shipped plain product runs. */
function batchMatMul(args: KernelArgs<BatchMatMulAttrs>): tf.TensorInfo | tf.TensorInfo[] {
  const { backend, attrs } = args;
  const { a, b } = args.inputs;
  if (!attrs.transposeA && !attrs.transposeB) return runShipped(BATCH_MAT_MUL, args);
  const temporaries: tf.TensorInfo[] = [];
  const plain = (t: tf.TensorInfo, transposed: boolean) => {
    if (!transposed) return t;
    const swapped = swapLastAxes(t, backend);
    temporaries.push(swapped);
    return swapped;
  };
  try {
    return runShipped(BATCH_MAT_MUL, {
      inputs: { a: plain(a, attrs.transposeA), b: plain(b, attrs.transposeB) },
      backend,
      attrs: { ...attrs, transposeA: false, transposeB: false },
    });
  } finally {
    // The product may cache an XNNPACK operator under b's id; wasm ids are never reused (a counter), so
    // a later temporary cannot hit a stale one, and disposing releases the id's entry.
    for (const t of temporaries) backend.disposeData(t.dataId);
  }
}

const matMulConfig: tf.KernelConfig = {
  kernelName: BATCH_MAT_MUL,
  backendName: BACKEND,
  kernelFunc: batchMatMul as unknown as tf.KernelFunc,
};

const filterConfig: tf.KernelConfig = {
  kernelName: CONV2D_BACKPROP_FILTER,
  backendName: BACKEND,
  kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
};

const inputConfig: tf.KernelConfig = {
  kernelName: CONV2D_BACKPROP_INPUT,
  backendName: BACKEND,
  kernelFunc: conv2DBackpropInput as unknown as tf.KernelFunc,
};

function install(config: tf.KernelConfig): void {
  const current = tf.getKernel(config.kernelName, BACKEND);
  if (current === config || current?.kernelFunc === config.kernelFunc) return;
  if (current != null) {
    if (!shipped.has(config.kernelName)) shipped.set(config.kernelName, current);
    tf.unregisterKernel(config.kernelName, BACKEND);
  }
  tf.registerKernel(config);
}

function uninstall(config: tf.KernelConfig): void {
  const current = tf.getKernel(config.kernelName, BACKEND);
  if (current == null || current.kernelFunc !== config.kernelFunc) return;
  tf.unregisterKernel(config.kernelName, BACKEND);
  const original = shipped.get(config.kernelName);
  if (original == null) return;
  tf.registerKernel(original);
  // The engine runs setupFunc when a backend is selected; do it now if wasm is already initialised.
  const wasm = tf.findBackend(BACKEND);
  if (wasm != null) original.setupFunc?.(wasm);
}

/**
 * Registers the fast `Conv2DBackpropFilter`, `Conv2DBackpropInput` and `BatchMatMul` kernels for the
 * `wasm` backend, replacing the shipped `Conv2DBackpropInput` and `BatchMatMul` (which ours call for the
 * cases they keep). Idempotent; may be called before or after `tf.setBackend("wasm")`.
 */
export function registerWasmTrainingKernels(): void {
  install(filterConfig);
  install(inputConfig);
  install(matMulConfig);
}

/** Restores the shipped wasm kernels (there is no shipped Conv2DBackpropFilter). For benchmarks/tests. */
export function unregisterWasmTrainingKernels(): void {
  uninstall(filterConfig);
  uninstall(inputConfig);
  uninstall(matMulConfig);
}
