/**
 * Issue 7's acceptance check, a diagnostic that FAILS today (exit code 1 while q(y|x) loses), so it
 * lives here instead of in the suite as a test that cannot fail. `npm run check:semi`.
 *
 * A tiny semi-supervised run (Eq. 5-7) on real MNIST, on the wasm backend, for each seed of
 * SEMI_SEEDS (default "1,2"): 100 labels (10 per class, chosen with the seed) + 2,000 unlabelled
 * images, d = 8, n_max = 7, batches of 32 labelled + 32 unlabelled, Adam 1e-3, WARMUP labelled-only
 * steps, then EPOCHS passes over the unlabelled rows. q(y|x)'s error on the first 1,000 validation
 * images is compared with the benchmark classifier (the same conv stack + dense + 2 dropout dense
 * layers, softmax) trained end to end on the same 100 labelled rows (40 epochs, seeded). Every
 * number is deterministic.
 *
 * NOTE, two training choices re-weight J against its plain sum over the data set:
 * - equal labelled and unlabelled batches visit every labelled row 20x per epoch for each visit of
 *   an unlabelled row, so the labelled terms (L and -log q) count 20x relative to U;
 * - during the warm-up U has weight 0 (then the unweighted J is optimised).
 *
 * MEASURED (wasm; one seed takes ~14 min beside two nice'd training jobs on 2 cores, ~25-30 min when
 * the machine is busier; q(y|x) validation error per epoch, benchmarks on the same labels):
 * - seed 1: 38.3, 30.8, 30.4, 28.8, 24.7, 24.0, 21.2, 18.7, 23.7 (nearest centroid 36.3% at the
 *   end); benchmark 25.9% (40 epochs, seeded as here; 19.5-27.4% over 3 initial seeds and 40-100
 *   epochs). q(y|x) wins by 2.2 points at epoch 9, but loses to other benchmark initialisations,
 *   and its error moves by up to 5 points from one epoch to the next.
 * - seed 2: 29.5, 29.4, 35.9, 36.9, 49.3, 45.8, 37.9, 24.8, 39.7; benchmark 17.3-21.3% (40-100
 *   epochs, 2 initial seeds; 19.9% unseeded). q(y|x) loses by ~20 points.
 * - seed 1 with the paper's doubling batch (32, 64, 128, doubled every 3 epochs): 38.3, 30.8,
 *   30.4, 21.3, 23.4, 20.5, 22.2, 22.6, 20.9: smoother, 5 points under the seeded benchmark at
 *   the end, but still inside the benchmark's own spread. Seed 2 with it: 29.5, 29.4, 35.9, 41.9,
 *   48.2, 44.9, 56.5, 53.5, 47.9 (nearest centroid stuck near 70%): no better.
 * Without the warm-up: the old check (2 epochs) q(y|x) 61.0% against 25.2%; 900 steps (tfjs-node)
 *   76, 37, 35, 59, 47, 37, 39, 43% every 100 steps from step 100.
 *
 * Why (measured with per-step diagnostics): U's gradient on q(y|x)'s parameters is 7-16x the
 * labelled cross-entropy's over the first 100 steps (L(x, y) differs by 10-20 nats between classes
 * early, 100-300 nats later), so q(y|x) follows the generative posterior p(y)exp(-L(x,y)), whose
 * argmax was 76-93% wrong over the first 500 steps without warm-up (one blurry class prototype wins
 * every image). With the warm-up it improves fast once U starts (79% -> 37% wrong over 250 steps),
 * but within a CI budget it does not get clearly better than what 100 labels alone give.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { initBackend } from "../src/backend/index.js";
import { batchPixels, range, subset, type ImageSet } from "../src/data/dataset.js";
import { loadIdxDataset } from "../src/data/mnist.js";
import type { ModelConfig } from "../src/model/config.js";
import { benchmarkClassifier } from "../src/train/evaluate.js";
import { errorRate } from "../src/train/embedding.js";
import { predictClassifier, selectLabelled } from "../src/train/semi.js";
import { train } from "../src/train/trainer.js";
import { withSeededMathRandom } from "../src/util/rng.js";
import { MNIST_DIR, tempDir } from "../test/helpers/paths.js";

const EPOCHS = 9;
const WARMUP = 150;
const SEEDS = (process.env.SEMI_SEEDS ?? "1,2").split(",").map(Number);

before(async () => {
  await initBackend("wasm");
});

/**
 * The benchmark on `set` (batch 32, Adam 1e-3), its error on `val`, with Math.random seeded while
 * it is built and trained (TF.js layers draw weights, dropout masks and shuffling from it).
 */
function benchmarkError(cfg: ModelConfig, set: ImageSet, val: ImageSet, epochs: number, seed: number) {
  return withSeededMathRandom(seed, async () => {
    const bench = benchmarkClassifier(cfg);
    bench.compile({ optimizer: tf.train.adam(1e-3), loss: "categoricalCrossentropy" });
    const [H, W, C] = [cfg.height, cfg.width, cfg.channels];
    const x = tf.tensor4d(batchPixels(set, range(0, set.n)), [set.n, H, W, C]);
    const y = tf.oneHot(tf.tensor1d(set.labels, "int32"), cfg.numClasses);
    await bench.fit(x, y, { epochs, batchSize: 32, shuffle: true, verbose: 0 });
    const xV = tf.tensor4d(batchPixels(val, range(0, val.n)), [val.n, H, W, C]);
    const pred = tf.tidy(() => (bench.predict(xV) as tf.Tensor).argMax(-1));
    const err = errorRate(Int32Array.from(pred.dataSync()), val.labels);
    tf.dispose([x, y, xV, pred]);
    bench.dispose();
    return err;
  });
}

for (const seed of SEEDS) {
  test(
    `seed ${seed}: 100 labels + 2,000 unlabelled MNIST images: q(y|x) beats the benchmark classifier on the same labels`,
    { timeout: 3_600_000 },
    async () => {
      const data = loadIdxDataset("mnist", { dataDir: MNIST_DIR, trainSize: 2100, valSize: 1000 });
      const r = await train(data, {
        out: join(tempDir(), "semi"),
        epochs: EPOCHS,
        dv: 8,
        dz: 8,
        nMax: 7,
        batchSize: 32,
        batchDoubleEvery: 0,
        maxBatchSize: 32,
        contextShare: 4,
        learningRate: 1e-3,
        seed,
        resume: false,
        command: "check",
        backend: "wasm",
        labels: 100,
        labelledWarmupSteps: WARMUP,
        exportOnnx: false,
        keepBest: false,
        quiet: true,
        log: (l) => console.log(`  seed ${seed}: ${l}`),
      });
      const qErr = errorRate(predictClassifier(r.model, data.validation), data.validation.labels);
      const m = r.metrics[r.metrics.length - 1];
      assert.equal(m.valClassifierError, qErr);
      const cfg = r.model.config;
      r.model.dispose();
      // The benchmark on exactly the same 100 labelled rows (the run's seeded selection).
      const labelled = subset(data.train, selectLabelled(data.train.labels, 10, 100, seed));
      const benchErr = await benchmarkError(cfg, labelled, data.validation, 40, seed);
      console.log(
        `seed ${seed}, validation (first 1,000): q(y|x) error ${(qErr * 100).toFixed(1)}% (per epoch: ` +
          r.metrics.map((x) => (x.valClassifierError! * 100).toFixed(1)).join(", ") +
          `), nearest centroid ${(m.valCentroidError * 100).toFixed(1)}%; benchmark on the same 100 ` +
          `labels ${(benchErr * 100).toFixed(1)}%; gap (benchmark - q) ${((benchErr - qErr) * 100).toFixed(1)} points`,
      );
      assert.ok(qErr < benchErr, `q(y|x) error ${qErr} is not below the benchmark's ${benchErr}`);
    },
  );
}
