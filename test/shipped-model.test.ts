/**
 * The shipped default model (models/mnist) reproduces the test error its eval.json states, on the
 * real MNIST test set (10,000 images from ../shared/data), through the serving engine (ONNX Runtime).
 * eval.json was written by `equivae eval models/mnist --split test` (TF.js); the two must agree
 * within 0.05 percentage points (5 images).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { batchPixels, range } from "../src/data/dataset.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { loadEngine } from "../src/inference/index.js";
import { readManifest } from "../src/checkpoint/index.js";
import { MNIST_DIR, ROOT } from "./helpers/paths.js";

const MODEL = join(ROOT, "models", "mnist");

test("models/mnist: nearest-centroid test error matches its eval.json within 0.05 points", async () => {
  const stated = JSON.parse(readFileSync(join(MODEL, "eval.json"), "utf8"));
  assert.equal(stated.split, "test");
  assert.equal(stated.n, 10000);
  const m = await readManifest(MODEL);
  // The manifest says how the weights were made: the project's own training command.
  assert.match(m.training.command, /^equivae train --dataset mnist /);
  assert.ok(m.metrics && m.metrics.epoch === m.training.epochsCompleted);
  // ...and its measured test error, recorded by `equivae eval --record`, the same as eval.json's.
  assert.match(m.evaluation!.command, /^equivae eval models\/mnist --split test .*--record/);
  for (const k of ["split", "n", "centroidError", "vClassifierError", "benchmarkError"] as const)
    assert.equal(m.evaluation![k], stated[k], k);

  const test = loadIdxDataset("mnist", {
    dataDir: MNIST_DIR,
    withTest: true,
    trainSize: 1,
    valSize: 1,
  }).test!;
  const engine = await loadEngine(MODEL, { engine: "onnx", threads: 1 });
  try {
    let wrong = 0;
    for (let s = 0; s < test.n; s += 1000) {
      const idx = range(s, Math.min(test.n, s + 1000));
      const top = await engine.classify(batchPixels(test, idx), idx.length, 1);
      top.forEach((t, i) => {
        if (t[0].label !== test.labels[idx[i]]) wrong++;
      });
    }
    const err = wrong / test.n;
    console.log(
      `models/mnist test error: ${(err * 100).toFixed(2)}% (eval.json: ${(stated.centroidError * 100).toFixed(2)}%)`,
    );
    assert.ok(Math.abs(err - stated.centroidError) <= 0.0005, `${err} vs ${stated.centroidError}`);
  } finally {
    await engine.dispose();
  }
});
