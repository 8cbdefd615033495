import * as tf from "@tensorflow/tfjs";
import { RELU_GRAD } from "../backend/kernel-names.js";
import { Rng } from "../util/rng.js";

/** Named trainable variables. Names are stable: they are the checkpoint's weight names. */
export class Params {
  private static instances = 0;
  readonly vars = new Map<string, tf.Variable>();
  /** TF.js variable names are global: each model instance prefixes its own (m<id>/...). */
  private readonly prefix = `m${++Params.instances}/`;

  constructor(private readonly rng: Rng) {}

  /** Glorot-uniform weights, zero biases; drawn from the seeded Rng so every backend starts alike. */
  add(name: string, shape: number[], fanIn: number, fanOut: number): tf.Variable {
    const size = shape.reduce((a, b) => a * b, 1);
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    const v = new Float32Array(size);
    for (let i = 0; i < size; i++) v[i] = (this.rng.next() * 2 - 1) * limit;
    return this.put(name, tf.tensor(v, shape));
  }

  zeros(name: string, shape: number[]): tf.Variable {
    return this.put(name, tf.zeros(shape));
  }

  private put(name: string, t: tf.Tensor): tf.Variable {
    if (this.vars.has(name)) throw new Error(`duplicate parameter ${name}`);
    const v = tf.variable(t, true, this.prefix + name);
    t.dispose();
    this.vars.set(name, v);
    return v;
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v;
  }

  count(prefix = ""): number {
    let n = 0;
    for (const [k, v] of this.vars) if (k.startsWith(prefix)) n += v.size;
    return n;
  }

  list(prefix = ""): tf.Variable[] {
    return [...this.vars].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v);
  }

  /** Replaces every variable's value from a name -> tensor map (exact names and shapes required). */
  assign(values: tf.NamedTensorMap, what = "weights"): void {
    for (const [name, v] of this.vars) {
      const t = values[name];
      if (!t) throw new Error(`${what}: missing tensor ${name}`);
      if (t.shape.join(",") !== v.shape.join(",")) {
        throw new Error(`${what}: ${name} has shape [${t.shape}] but the model expects [${v.shape}]`);
      }
      v.assign(t);
    }
    const extra = Object.keys(values).filter((k) => !this.vars.has(k));
    if (extra.length) throw new Error(`${what}: unexpected tensors ${extra.slice(0, 3).join(", ")}`);
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

/** Dense layer parameters: `${name}/kernel` [in, out] and `${name}/bias` [out]. */
export function addDense(p: Params, name: string, inDim: number, outDim: number): void {
  p.add(`${name}/kernel`, [inDim, outDim], inDim, outDim);
  p.zeros(`${name}/bias`, [outDim]);
}

export function dense(p: Params, name: string, x: tf.Tensor2D, act?: "relu"): tf.Tensor2D {
  const y = tf.matMul(x, p.get(`${name}/kernel`) as tf.Tensor2D);
  const b = p.get(`${name}/bias`);
  return (act === "relu" ? biasRelu(y, b) : tf.add(y, b)) as tf.Tensor2D;
}

/**
 * relu(x + bias), bias broadcast over x's last axis, with a hand-written gradient: 3 kernels
 * backward (mask, multiply, sum) where TF.js's relu and broadcast-add gradients take 10
 * (tfjs-node's Step alone runs 5). Every layer but the outputs has one, so this removes ~140 of
 * a training step's kernels, each ~14 us of dispatch on `tensorflow` whatever its size.
 */
export const biasRelu = tf.customGrad(((x: tf.Tensor, bias: tf.Tensor, save: tf.GradSaveFunc) => {
  const y = tf.relu(tf.add(x, bias));
  save([y]);
  return {
    value: y,
    gradFunc: (dy: tf.Tensor, [out]: tf.Tensor[]) => {
      const g = reluGradient(dy, out);
      return [g, tf.sum(g, [...Array(g.rank - 1).keys()])];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor, bias: tf.Tensor) => tf.Tensor;

/**
 * tf.conv2d(h, kernel, stride, "same") for a layer with few output channels (the decoder's last,
 * 16 -> 1 or 3). At stride 1 with an odd kernel it runs as the transposed conv of the flipped
 * filter: the same values, faster kernels (measured, forward and both gradients, 16 -> 1 at 28x28,
 * 1 thread: tensorflow 37.5 -> 23.0 ms at 320 images and 5.0 -> 3.7 at 32; wasm 135 -> 102 and
 * 16.0 -> 13.3). Other strides or even kernels (asymmetric "same" padding) run tf.conv2d.
 */
export function conv2dFewOutputs(h: tf.Tensor4D, kernel: tf.Tensor4D, stride: number): tf.Tensor4D {
  const [k, , , outC] = kernel.shape;
  if (stride !== 1 || k % 2 === 0 || kernel.shape[1] !== k) return tf.conv2d(h, kernel, stride, "same");
  // conv2dTranspose's filter is [k, k, outC, inC]; flipping both spatial axes turns correlation into
  // its transpose.
  const flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
  const [n, height, width] = h.shape;
  return tf.conv2dTranspose(h, flipped, [n, height, width, outC], 1, "same");
}

/**
 * dy where y > 0, else 0, for y >= 0 (a relu's output): one TensorFlow op where the backend has
 * the project's ReluGrad kernel (src/backend/tensorflow-kernels.ts), else dy times a 0/1 mask.
 */
function reluGradient(dy: tf.Tensor, y: tf.Tensor): tf.Tensor {
  if (tf.getKernel(RELU_GRAD, tf.getBackend()) != null)
    return tf.engine().runKernel(RELU_GRAD, { dy, y }) as tf.Tensor;
  return tf.mul(dy, positiveMask(y));
}

/**
 * 1 where y > 0, else 0, for y >= 0 (a relu's output), by the kernel that is fastest on the backend:
 * on a [128,14,14,16] tensor, tensorflow: sign 0.04 ms over the multiply, step 2.2 (tfjs-node runs 5
 * kernels for it); wasm: step 0.5 ms, sign 3.0, greater + cast 2.0.
 */
function positiveMask(y: tf.Tensor): tf.Tensor {
  return tf.getBackend() === "tensorflow" ? tf.sign(y) : tf.step(y);
}
