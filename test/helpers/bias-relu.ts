/**
 * Seeded random tensors and the check that biasRelu's hand-written gradient equals TF.js's
 * gradient of relu(x + b), shared by the cpu test (test/flat-adam.test.ts) and the tensorflow one
 * (test/tensorflow-kernels.test.ts), whose backward pass runs a different kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { biasRelu } from "../../src/model/params.js";
import { Rng, normals } from "../../src/util/rng.js";

export function randomTensor(shape: number[], seed: number): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(normals(new Rng(seed), size), shape);
}

export interface BiasReluCheck {
  /** Largest |difference| between biasRelu's and relu(x + b)'s gradients (x and b). */
  gradient: number;
  /** Largest |difference| between the forward values. */
  forward: number;
  /** The kernels biasRelu's forward and backward pass ran. */
  kernels: string[];
}

/** Compares biasRelu with relu(x + b) on seeded inputs of `shape` (bias: its last axis). */
export async function checkBiasRelu(shape: number[]): Promise<BiasReluCheck> {
  const x = randomTensor(shape, 4);
  const b = randomTensor([shape[shape.length - 1]], 5);
  const dy = randomTensor(shape, 6);
  const ref = tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.relu(tf.add(u, v)))([x, b], dy);
  let got: tf.Tensor[] = [];
  const profile = await tf.profile(() => {
    got = tf.grads((u: tf.Tensor, v: tf.Tensor) => biasRelu(u, v))([x, b], dy);
    return got;
  });
  const maxDiff = (p: tf.Tensor, q: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(p, q))).dataSync()[0]);
  if (got[1].shape.join() !== b.shape.join()) throw new Error(`bias gradient shape ${got[1].shape}`);
  const gradient = Math.max(...got.map((g, i) => maxDiff(g, ref[i])));
  const forward = tf.tidy(() => maxDiff(biasRelu(x, b), tf.relu(tf.add(x, b))));
  tf.dispose([x, b, dy, ...ref, ...got]);
  return { gradient, forward, kernels: profile.kernelNames };
}
