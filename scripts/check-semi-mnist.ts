/**
 * Issue 7's acceptance check, a diagnostic that FAILS today (exit code 1 while q(y|x) loses), so it
 * lives here instead of in the suite as a test that cannot fail. `npm run check:semi`.
 *
 * A tiny semi-supervised run (Eq. 5-7) on real MNIST, on the wasm backend, for each seed of
 * SEMI_SEEDS (default "1,2"): 100 labels (10 per class, chosen with the seed) + 2,000 unlabelled
 * images, d = 8, n_max = 7, batches of 32 labelled + 32 unlabelled, Adam 1e-3, WARMUP labelled-only
 * steps, then EPOCHS passes over the unlabelled rows, U(x)'s v_y from all labelled members of each
 * class (unlabelledContext "all"). q(y|x)'s error on the first 1,000 validation images is compared
 * with the benchmark classifier (the same conv stack + dense + 2 dropout dense layers, softmax)
 * trained end to end on the same 100 labelled rows (40 epochs, seeded). Every number is
 * deterministic on a given backend.
 *
 * NOTE, two training choices re-weight J against its plain sum over the data set:
 * - equal labelled and unlabelled batches visit every labelled row 20x per epoch for each visit of
 *   an unlabelled row, so the labelled terms (L and -log q) count 20x relative to U;
 * - during the warm-up U has weight 0 (then the unweighted J is optimised).
 * And one choice the spec leaves open: U's v_y is computed from every labelled member of class y
 * (the spec: "from labelled members of class y"; before, a pool of the step's n ~ U{1..n_max}).
 *
 * MEASURED 2026-11-24 (diagnostics: .tmp/semi2/diag.mjs, tfjs-node on one core, seed 2; the
 * generative posterior argmin_y L(x,y) - log p(y) on 300 validation images, v_y from all labelled
 * members):
 * - with a 150-step warm-up the generative model ignores v when U starts: the class embeddings v_y
 *   are nearly equal (mean distance between them 0.26), L(x, y) varies by ~2 nats with y (std over
 *   y) and by as much with the z sample, KL(q(z|x,v_y)) is the same for every y, and the posterior
 *   is at chance (80-90% wrong). U then drags q(y|x) from 21.8% to 41.2% in 250 steps. U's v_y
 *   from all labelled members changes nothing while v is dormant (40.7%).
 * - labelled-only steps wake v up after ~400-500 steps (distance between v_y 0.4 at step 300, 2.4
 *   at 500, 5.0 at 800; std of L over y 81 nats at 800) while q(y|x) stays at 18-19%; the
 *   posterior is then 57% wrong and U improves it to 30% in 500 steps without dragging q(y|x)
 *   down (q 15.8-20.3%).
 * - through train(), 9 epochs (tfjs-node, ~5 min a run; last-epoch q error, benchmark 40 epochs):
 *   warm-up 800 alone: seed 1 q 18.9% (per epoch 18.2, 16.7, 24.9, 19.4, 18.8, 16.4, 18.6, 14.8,
 *   18.9) vs benchmark 24.1%; seed 3 25.0% (24.8, 21.8, 28.1, 19.2, 22.9, 17.7, 17.8, 17.7, 25.0)
 *   vs 24.5%: still 5-10 point swings. Warm-up 800 + all-member v_y: seed 3 20.4% (25.0, 25.6,
 *   19.3, 21.0, 20.3, 19.8, 18.1, 21.7, 20.4) vs 24.5%.
 * - this check's configuration on wasm (one free core; ~20 min a seed, 800 warm-up steps ~4.5
 *   min, then ~2 min an epoch): seed 1 q(y|x) 20.6% (19.5, 21.0, 20.0, 20.4, 20.7, 21.6, 19.8,
 *   18.9, 20.6) vs benchmark 25.9%: 5.3 points, and smooth; seed 2 (~17 min) q 29.2% (31.6, 25.2, 24.9,
 *   23.9, 27.7, 29.0, 28.9, 28.3, 29.2; nearest centroid 54% -> 43%) vs benchmark 20.7%: LOSES by
 *   8.5 points (on wasm seed 2's v is still half asleep when U starts: centroid 54% after the
 *   warm-up, against 47% on tfjs-node). Seed 3 not run on wasm (time).
 * - on held-out test images (first 2,000 of the test split) the margins are smaller: seed 1 wasm
 *   q 23.5% vs benchmark 23.7%, seed 2 35.2% vs 28.6%; the benchmark's own spread over initial seeds and epochs is
 *   ~5-8 points (19.5-27.4% for seed 1's labels), so the margin is not yet a reliable one.
 * Before (warm-up 150, v_y from a pool of n ~ U{1..7}; wasm, ~14-30 min a seed): seed 1 23.7% vs
 *   25.9%, seed 2 39.7% vs 17.3-21.3% (per epoch 29.5-49.3%; nearest centroid near 70%).
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
/** Long enough for v to carry the class before U(x) joins (see MEASURED, 2026-11-24). */
const WARMUP = 800;
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
        unlabelledContext: "all",
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
