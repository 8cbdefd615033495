/**
 * A tiny semi-supervised run (Eq. 5-7) on real MNIST, on the wasm backend: 100 labels (10 per
 * class, seeded) + 2,000 unlabelled images, 2 epochs (126 steps of 32 labelled + 32 unlabelled).
 * q(y|x)'s error on the first 1,000 validation images is compared with the benchmark classifier
 * (the same conv stack + dense + 2 dropout dense layers) trained end to end on the same 100 rows.
 *
 * Measured when this was written (loaded 2-core machine, 3 epochs of the same setup):
 * q(y|x) validation error 87.9% after epoch 1, 61.0% after epoch 2 (nearest centroid 82.1%); the
 * benchmark on the same 100 rows (40 epochs): 25.2%. Gap: q(y|x) is 35.8 points WORSE. The
 * unweighted objective learns q(y|x) slowly at first (U's gradient on q dominates the labelled
 * cross-entropy).
 *
 * This is the acceptance check of issue 7 and it FAILS today, so it lives here as a diagnostic
 * (`npm run check:semi`, exit code 1 while q(y|x) loses) instead of in the suite as a test that
 * cannot fail. Move it back to test/ once it passes. ~6 min on a loaded machine.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { batchPixels, range, subset } from "../src/data/dataset.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import { benchmarkClassifier } from "../src/train/evaluate.js";
import { errorRate } from "../src/train/embedding.js";
import { predictClassifier } from "../src/train/semi.js";
import { train } from "../src/train/trainer.js";
import { MNIST_DIR, tempDir } from "../test/helpers/paths.js";

before(async () => {
  await initBackend("wasm");
});

test(
  "100 labels + 2,000 unlabelled MNIST images: q(y|x) beats the benchmark classifier on the same labels",
  {
    timeout: 600_000,
  },
  async () => {
    const data = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 2100, valSize: 1000 });
    const out = join(tempDir(), "semi");
    const r = await train(data, {
      out,
      epochs: 2,
      dv: 8,
      dz: 8,
      nMax: 7,
      batchSize: 32,
      batchDoubleEvery: 0,
      maxBatchSize: 32,
      contextShare: 4,
      learningRate: 1e-3,
      seed: 1,
      resume: false,
      command: "test",
      backend: "wasm",
      labels: 100,
      exportOnnx: false,
      quiet: true,
      log: () => {},
    });
    const qErr = errorRate(predictClassifier(r.model, data.validation), data.validation.labels);
    const m = r.metrics[r.metrics.length - 1];
    assert.equal(m.valClassifierError, qErr);

    // The benchmark on exactly the same 100 labelled rows.
    const ck = r.model;
    const lab = JSON.parse(readFileSync(join(out, "labelled.json"), "utf8")) as { rows: number[] };
    const labelled = subset(data.train, lab.rows);
    assert.equal(labelled.n, 100);
    const cfg = ck.config;
    const bench = benchmarkClassifier(cfg);
    bench.compile({ optimizer: tf.train.adam(1e-3), loss: "categoricalCrossentropy" });
    const xT = tf.tensor4d(batchPixels(labelled, range(0, 100)), [100, 28, 28, 1]);
    const yT = tf.oneHot(tf.tensor1d(labelled.labels, "int32"), 10);
    await bench.fit(xT, yT, { epochs: 40, batchSize: 32, shuffle: true, verbose: 0 });
    const xV = tf.tensor4d(batchPixels(data.validation, range(0, data.validation.n)), [
      data.validation.n,
      28,
      28,
      1,
    ]);
    const pred = tf.tidy(() => (bench.predict(xV) as tf.Tensor).argMax(-1));
    const benchErr = errorRate(Int32Array.from(pred.dataSync()), data.validation.labels);
    tf.dispose([xT, yT, xV, pred]);
    bench.dispose();
    ck.dispose();
    console.log(
      `validation (first 1,000): q(y|x) error ${(qErr * 100).toFixed(2)}%, ` +
        `nearest centroid ${(m.valCentroidError * 100).toFixed(2)}%, benchmark on the same 100 labels ` +
        `${(benchErr * 100).toFixed(2)}%; gap (benchmark - q) ${((benchErr - qErr) * 100).toFixed(2)} points`,
    );
    assert.ok(qErr < benchErr, `q(y|x) ${qErr} vs benchmark ${benchErr}`);
  },
);
