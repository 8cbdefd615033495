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
import { checkBiasRelu } from "./helpers/bias-relu.js";

const haveTensorflow = await initBackend("tensorflow").then(
  () => true,
  () => false,
);

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
      const r = await checkBiasRelu(shape);
      assert.equal(r.kernels.filter((k) => k === RELU_GRAD).length, 1, `kernels: ${r.kernels}`);
      assert.ok(r.gradient < 1e-5, `shape ${shape}: max |difference| of the gradients ${r.gradient}`);
      assert.equal(r.forward, 0, `shape ${shape}: forward`);
    }
  },
);
