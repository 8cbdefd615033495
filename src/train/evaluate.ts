import * as tf from "@tensorflow/tfjs";
import type { ImageSet } from "../data/dataset.js";
import { batchPixels } from "../data/dataset.js";
import type { ModelConfig } from "../model/config.js";
import type { EquiVAE } from "../model/equivae.js";
import { subset } from "../data/dataset.js";
import { centroidMatrix, type Centroids, type EvalErrors, type LabelledSubset } from "../checkpoint/index.js";
import { embedInvariant, errorRate, nearestCentroid } from "./embedding.js";
import { predictClassifier } from "./semi.js";
import { setCentroidErrors } from "./set-error.js";
import { mixSeed, withSeededMathRandom } from "../util/rng.js";

export interface EvalOptions {
  /** Epochs for the small neural classifier on v (0 skips it). */
  vClassifierEpochs: number;
  /** Epochs for the end-to-end benchmark classifier (0 skips it). */
  benchmarkEpochs: number;
  log?: (line: string) => void;
  /**
   * Semi-supervised checkpoints: the labelled rows of `train`. The classifiers (on v, and the
   * benchmark) are then trained on these rows only, and q(y | x)'s error is reported too.
   */
  labelled?: LabelledSubset;
  /**
   * Seed of the two trained classifiers' initial weights, dropout masks and shuffling (default 1),
   * so eval's numbers repeat on the same backend.
   */
  seed?: number;
  /** Also the nearest-centroid error of n-image sets for each n here (set-error.ts). */
  setSizes?: number[];
}

export interface EvalResult extends EvalErrors {
  /** With setSizes: the nearest-centroid error of sets of each size, keyed by n. */
  setCentroidError?: Record<string, number>;
  details: Record<string, unknown>;
}

const DROPOUT = 0.3;

/** The two dropout dense layers (128, 64) + softmax shared by both classifiers. */
function head(k: number, inputShape?: number[]): tf.layers.Layer[] {
  return [
    tf.layers.dense({ units: 128, activation: "relu", ...(inputShape ? { inputShape } : {}) }),
    tf.layers.dropout({ rate: DROPOUT }),
    tf.layers.dense({ units: 64, activation: "relu" }),
    tf.layers.dropout({ rate: DROPOUT }),
    tf.layers.dense({ units: k, activation: "softmax" }),
  ];
}

async function fitAndTest(
  model: tf.Sequential,
  xTrain: tf.Tensor,
  yTrain: Int32Array,
  xTest: tf.Tensor,
  yTest: Int32Array,
  k: number,
  epochs: number,
  batchSize: number,
  log: (l: string) => void,
  name: string,
): Promise<number> {
  model.compile({ optimizer: tf.train.adam(1e-3), loss: "categoricalCrossentropy", metrics: ["accuracy"] });
  const yT = tf.oneHot(tf.tensor1d(yTrain, "int32"), k);
  await model.fit(xTrain, yT, {
    epochs,
    batchSize,
    shuffle: true,
    verbose: 0,
    callbacks: {
      onEpochEnd: async (e, logs) =>
        log(
          `  ${name} epoch ${e + 1}/${epochs}: loss ${logs?.loss?.toFixed(4)} acc ${logs?.acc?.toFixed(4)}`,
        ),
    },
  });
  yT.dispose();
  const p = tf.tidy(() => (model.predict(xTest, { batchSize: 256 }) as tf.Tensor).argMax(-1));
  const pred = Int32Array.from(p.dataSync());
  p.dispose();
  return errorRate(pred, yTest);
}

/** Benchmark classifier: the same conv stack + dense block, then 2 dropout dense layers; end to end. */
export function benchmarkClassifier(cfg: ModelConfig): tf.Sequential {
  const m = tf.sequential();
  cfg.filters.forEach((f, i) =>
    m.add(
      tf.layers.conv2d({
        filters: f,
        kernelSize: cfg.kernel,
        strides: cfg.strides[i],
        padding: "same",
        activation: "relu",
        ...(i === 0 ? { inputShape: [cfg.height, cfg.width, cfg.channels] } : {}),
      }),
    ),
  );
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: cfg.hidden, activation: "relu" }));
  for (const l of head(cfg.numClasses)) m.add(l);
  return m;
}

/**
 * Test-split evaluation: nearest-centroid error on v, a neural classifier on v trained on the
 * training split's v, and the benchmark classifier trained end to end on the training split.
 */
export async function evaluate(
  model: EquiVAE,
  centroids: Centroids,
  train: ImageSet,
  test: ImageSet,
  split: string,
  o: EvalOptions,
): Promise<EvalResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const cfg = model.config;
  const k = cfg.numClasses;
  const seed = o.seed ?? 1;
  /**
   * Builds (inside: layers draw their initial weights when added) and trains a classifier on the
   * training split with Math.random seeded from (seed, tag); its error on the evaluated split.
   */
  const fit = (
    tag: number,
    name: string,
    batchSize: number,
    epochs: number,
    xTr: tf.Tensor,
    xTe: tf.Tensor,
    build: () => tf.Sequential,
  ) =>
    withSeededMathRandom(mixSeed(seed, tag), () => {
      const clf = build();
      return fitAndTest(clf, xTr, train.labels, xTe, test.labels, k, epochs, batchSize, log, name).finally(
        () => clf.dispose(),
      );
    });
  if (o.labelled) {
    // Only the labelled rows may train anything (using the hidden labels would cheat).
    train = subset(train, o.labelled.rows);
    log(`semi-supervised checkpoint: classifiers are trained on its ${train.n} labelled rows only`);
  }
  const vTest = embedInvariant(model, test);
  const c = centroidMatrix(centroids);
  const centroidError = errorRate(nearestCentroid(vTest, c, cfg.dv), test.labels);
  log(`nearest-centroid error on ${split}: ${(centroidError * 100).toFixed(2)}%`);
  let setCentroidError: Record<string, number> | undefined;
  if (o.setSizes?.length) {
    setCentroidError = setCentroidErrors(model, c, test, o.setSizes, seed);
    for (const [n, e] of Object.entries(setCentroidError))
      log(`nearest-centroid error of ${n}-image sets on ${split}: ${(e * 100).toFixed(2)}%`);
  }
  let posteriorError: number | null = null;
  if (cfg.classifier) {
    posteriorError = errorRate(predictClassifier(model, test), test.labels);
    log(`q(y|x) error on ${split}: ${(posteriorError * 100).toFixed(2)}%`);
  }

  let vClassifierError: number | null = null;
  if (o.vClassifierEpochs > 0) {
    const vTrain = embedInvariant(model, train);
    const xTr = tf.tensor2d(vTrain, [train.n, cfg.dv]);
    const xTe = tf.tensor2d(vTest, [test.n, cfg.dv]);
    vClassifierError = await fit(
      1,
      "classifier on v",
      o.labelled ? 32 : 128,
      o.vClassifierEpochs,
      xTr,
      xTe,
      () => {
        const clf = tf.sequential();
        for (const l of head(k, [cfg.dv])) clf.add(l);
        return clf;
      },
    );
    tf.dispose([xTr, xTe]);
    log(`neural classifier on v, error on ${split}: ${(vClassifierError * 100).toFixed(2)}%`);
  }

  let benchmarkError: number | null = null;
  if (o.benchmarkEpochs > 0) {
    // The benchmark sees the same input as the model: standardised when the model is.
    const input = (set: ImageSet) =>
      tf.tidy(() =>
        model.standardise(
          tf.tensor4d(batchPixels(set, range(set.n)), [set.n, cfg.height, cfg.width, cfg.channels]),
        ),
      );
    const xTr = input(train);
    const xTe = input(test);
    benchmarkError = await fit(2, "benchmark", o.labelled ? 32 : 64, o.benchmarkEpochs, xTr, xTe, () =>
      benchmarkClassifier(cfg),
    );
    tf.dispose([xTr, xTe]);
    log(`benchmark classifier, error on ${split}: ${(benchmarkError * 100).toFixed(2)}%`);
  }
  return {
    split,
    n: test.n,
    centroidError,
    vClassifierError,
    benchmarkError,
    posteriorError,
    ...(setCentroidError ? { setCentroidError } : {}),
    details: {
      vClassifierEpochs: o.vClassifierEpochs,
      benchmarkEpochs: o.benchmarkEpochs,
      dropout: DROPOUT,
      seed,
      ...(o.labelled ? { labelledRows: o.labelled.rows.length, classifierTrainRows: "labelled only" } : {}),
    },
  };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
