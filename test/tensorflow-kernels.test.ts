/**
 * The project's kernels for the `tensorflow` backend (src/backend/tensorflow-kernels.ts) against
 * TF.js's own ops. Runs where @tensorflow/tfjs-node is installed (scripts/build-tfjs-node.sh
 * here; a normal npm install with internet elsewhere); CI, which cannot install it, skips it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../src/backend/index.js";
import { RELU_GRAD } from "../src/backend/kernel-names.js";
import { biasRelu } from "../src/model/params.js";
import { Rng, normals } from "../src/util/rng.js";

const haveTensorflow = await initBackend("tensorflow").then(
  () => true,
  () => false,
);

function randomTensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(
    normals(
      new Rng(seed),
      shape.reduce((a, b) => a * b, 1),
    ),
    shape,
  );
}

test(
  "tensorflow: biasRelu's gradient runs TensorFlow's ReluGrad and equals relu(x + b)'s",
  { skip: !haveTensorflow && "@tensorflow/tfjs-node is not installed" },
  async () => {
    assert.equal(tf.getBackend(), "tensorflow");
    assert.ok(tf.getKernel(RELU_GRAD, "tensorflow"), "the kernel is registered by initBackend");
    for (const shape of [
      [6, 5],
      [4, 7, 7, 16],
    ]) {
      const x = randomTensor(shape, 4);
      const b = randomTensor([shape[shape.length - 1]], 5);
      const dy = randomTensor(shape, 6);
      const ref = tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.relu(tf.add(u, v)))([x, b], dy);
      let got: tf.Tensor[] = [];
      const profile = await tf.profile(() => {
        got = tf.grads((u: tf.Tensor, v: tf.Tensor) => biasRelu(u, v))([x, b], dy);
        return got;
      });
      assert.equal(
        profile.kernelNames.filter((k) => k === RELU_GRAD).length,
        1,
        `kernels: ${profile.kernelNames}`,
      );
      got.forEach((g, i) => {
        const d = tf.max(tf.abs(tf.sub(g, ref[i]))).dataSync()[0];
        assert.ok(d < 1e-5, `shape ${shape}, gradient ${i}: max |difference| ${d}`);
      });
      tf.dispose([x, b, dy, ...ref, ...got]);
    }
  },
);
