/**
 * Issue 7's acceptance test: a tiny semi-supervised run (Eq. 5-7) on real MNIST, on the wasm
 * backend (what CI has), asserting that q(y|x) beats the benchmark classifier trained on the same
 * 100 labels, and printing the gap.
 *
 * The run (seed 1 by default; SEMI_SEEDS=1,2,3 runs more, see `npm run check:semi`):
 * - 100 labels (10 per class, chosen with the seed) + 24,000 unlabelled training images, d = 8,
 *   n_max = 7, batches of 32 labelled + 32 unlabelled, Adam 1e-3;
 * - a tiny conv stack, filters 8,8,16,16,32 instead of 16,16,32,32,64 (~181k parameters instead of
 *   ~511k): ~0.39 s per step on wasm instead of ~0.9; the benchmark uses the same stack;
 * - 800 labelled-only warm-up steps (the generative model ignores v before that, so U's targets
 *   would be at chance), then EPOCHS passes over the unlabelled rows optimising J with no weights;
 *   U(x)'s v_y from every labelled member of class y (--unlabelled-context all).
 * q(y|x)'s error at the LAST epoch (no checkpoint selection) on the first 2,000 validation images
 * must be below the benchmark's BEST error on the same images over 40, 100, 200 and 400 epochs of
 * training on the same 100 labelled rows: the benchmark is given validation selection, q is not.
 *
 * Why 24,000 unlabelled images and not the issue's example of 2,000 (measured, docs/results.md):
 * with 2,000 the generative posterior argmin_y L(x,y) stops improving at ~26% error after ~3,000
 * steps, and q(y|x) (which U pulls towards it) ends within the benchmark's own spread; with 20,000
 * it keeps improving (14.6% at step 2,400) and q(y|x) follows it.
 *
 * Measured on wasm with this exact configuration (validation error, %, q per epoch | the benchmark
 * after 40/100/200/400 epochs | gap to the best benchmark at the last epoch):
 *   seed 1: 16.1, 15.8, 13.7 | 22.9, 19.9, 20.7, 19.9 | 6.3 points
 *   seed 2: 15.6, 14.6, 12.3 | 21.9, 19.9, 18.1, 20.2 | 5.8 points
 *   seed 3: 18.9, 22.6, 18.5 | 26.9, 23.2, 21.3, 19.4 | 0.9 points
 * q(y|x) still swings by a few points between epochs (seed 3 would lose after 2 epochs), so the
 * test runs 3: ~12 minutes on one free core (704 s in CI), the longest test file: `npm test` runs
 * the other files beside it. The paper-scale run (54,900 unlabelled, full-size model) is ~10 points
 * ahead of the benchmark. Since commit 7802b83 (FlatAdam, f on n images per target) seed 1 gives
 * 17.8, 17.1, 14.2 (gap 5.7 points). One epoch (~5 minutes) is not enough: after it (since
 * 7802b83) seed 1 is at 17.8 and seed 2 at 17.2 against 19.9 and 18.1, seed 3 at 23.7 against 19.4.
 *
 * What it catches (seed 1, measured by breaking a copy of the compiled trainer): U given each
 * class's v_y shifted to the next class, so that it pulls q(y|x) towards wrong labels: 81.0% after
 * one epoch. What it does not: U switched off (every unlabelled batch left empty, q(y|x) trained by
 * the labelled terms alone for the same 3,050 steps) ends at 18.8% since 7802b83, below the
 * benchmark's 19.9% (20.2% before, just above): this model's labelled-only q(y|x) is about as good
 * as the benchmark (16.9-23.0% after 1,550 steps over seeds 1-3 and both versions), so beating the
 * benchmark does not show that U helps. U's own gain for seed 1: 14.2% against 18.8%.
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
import { MNIST_DIR, tempDir } from "./helpers/paths.js";

const LABELS = 100;
const UNLABELLED = 24_000;
const EPOCHS = 3;
const WARMUP = 800;
const FILTERS = [8, 8, 16, 16, 32];
const VALIDATION = 2_000;
const BENCH_EPOCHS = [40, 100, 200, 400];
const SEEDS = (process.env.SEMI_SEEDS ?? "1").split(",").map(Number);

before(async () => {
  await initBackend("wasm");
});

const pct = (e: number) => `${(e * 100).toFixed(1)}%`;

/**
 * The benchmark trained on `set` (batch 32, Adam 1e-3, Math.random seeded: TF.js layers draw
 * weights, dropout masks and shuffling from it), its error on `val` after each budget of `epochs`.
 */
function benchmarkErrors(cfg: ModelConfig, set: ImageSet, val: ImageSet, epochs: number[], seed: number) {
  return withSeededMathRandom(seed, async () => {
    const bench = benchmarkClassifier(cfg);
    bench.compile({ optimizer: tf.train.adam(1e-3), loss: "categoricalCrossentropy" });
    const [H, W, C] = [cfg.height, cfg.width, cfg.channels];
    const x = tf.tensor4d(batchPixels(set, range(0, set.n)), [set.n, H, W, C]);
    const y = tf.oneHot(tf.tensor1d(set.labels, "int32"), cfg.numClasses);
    const xV = tf.tensor4d(batchPixels(val, range(0, val.n)), [val.n, H, W, C]);
    const errors: number[] = [];
    let done = 0;
    for (const e of epochs) {
      await bench.fit(x, y, { epochs: e - done, batchSize: 32, shuffle: true, verbose: 0 });
      done = e;
      const pred = tf.tidy(() => (bench.predict(xV) as tf.Tensor).argMax(-1));
      errors.push(errorRate(Int32Array.from(pred.dataSync()), val.labels));
      pred.dispose();
    }
    tf.dispose([x, y, xV]);
    bench.dispose();
    return errors;
  });
}

for (const seed of SEEDS) {
  test(
    `seed ${seed}: ${LABELS} labels + ${UNLABELLED.toLocaleString("en")} unlabelled MNIST images on wasm: ` +
      `q(y|x) beats the benchmark classifier trained on the same labels`,
    { timeout: 2_400_000 },
    async () => {
      const t0 = Date.now();
      const data = loadIdxDataset("mnist", {
        dataDir: MNIST_DIR,
        trainSize: LABELS + UNLABELLED,
        valSize: VALIDATION,
      });
      const r = await train(data, {
        out: join(tempDir(), "semi"),
        epochs: EPOCHS,
        dv: 8,
        dz: 8,
        nMax: 7,
        filters: FILTERS,
        batchSize: 32,
        batchDoubleEvery: 0,
        maxBatchSize: 32,
        contextShare: 4,
        learningRate: 1e-3,
        seed,
        resume: false,
        command: "test",
        backend: "wasm",
        labels: LABELS,
        labelledWarmupSteps: WARMUP,
        unlabelledContext: "all",
        keepBest: false,
        quiet: true,
        log: (l) => console.log(`  seed ${seed}: ${l}`),
      });
      const qErr = errorRate(predictClassifier(r.model, data.validation), data.validation.labels);
      const last = r.metrics[r.metrics.length - 1];
      assert.equal(last.valClassifierError, qErr, "the trainer's logged q(y|x) error is the one tested");
      const cfg = r.model.config;
      r.model.dispose();
      // The benchmark on exactly the same labelled rows (the run's seeded selection).
      const labelled = subset(data.train, selectLabelled(data.train.labels, 10, LABELS, seed));
      assert.equal(labelled.n, LABELS);
      const benchErrs = await benchmarkErrors(cfg, labelled, data.validation, BENCH_EPOCHS, seed);
      const benchBest = Math.min(...benchErrs);
      console.log(
        `seed ${seed}, ${VALIDATION.toLocaleString("en")} validation images: q(y|x) ${pct(qErr)} ` +
          `(per epoch ${r.metrics.map((m) => pct(m.valClassifierError!)).join(", ")}; nearest centroid ` +
          `${pct(last.valCentroidError)}); benchmark on the same ${LABELS} labels ` +
          BENCH_EPOCHS.map((e, i) => `${e} epochs ${pct(benchErrs[i])}`).join(", ") +
          `; gap (best benchmark - q) ${((benchBest - qErr) * 100).toFixed(1)} points; ` +
          `${((Date.now() - t0) / 1000).toFixed(0)} s`,
      );
      assert.ok(
        qErr < benchBest,
        `q(y|x) error ${pct(qErr)} is not below the benchmark's best ${pct(benchBest)}`,
      );
    },
  );
}
