import * as tf from "@tensorflow/tfjs";
import type { ImageSet } from "../data/dataset.js";
import { batchPixels, rowsByClass } from "../data/dataset.js";
import { ComplementarySampler, averagingMatrix, mergeRepeatedRows } from "../data/sampler.js";
import { CLASSIFIER_DROPOUT, CLASSIFIER_UNITS } from "../model/config.js";
import type { EquiVAE } from "../model/equivae.js";
import { classTerms, labelledTerms, semiSupervisedObjective } from "../model/objective.js";
import { InputError } from "../util/errors.js";
import { Rng, mixSeed, normals } from "../util/rng.js";

/** Tag mixed into the run's seed for the choice of the labelled subset (independent of the epochs' seeds). */
const LABEL_SUBSET_TAG = 0x1abe1;

/**
 * A balanced, seeded label budget: `budget / K` rows of every class, drawn uniformly with
 * Rng(mixSeed(seed, tag)) from the training rows of that class. Returns sorted row indices.
 */
export function selectLabelled(
  labels: Int32Array,
  numClasses: number,
  budget: number,
  seed: number,
  classNames?: string[],
): number[] {
  if (!Number.isInteger(budget) || budget < 1)
    throw new InputError(`--labels must be a positive integer or 'all' (got ${budget})`);
  if (budget > labels.length) {
    throw new InputError(
      `--labels ${budget} is more than the ${labels.length} training images; use --labels all for a supervised run`,
    );
  }
  if (budget % numClasses !== 0 || budget / numClasses < 2) {
    throw new InputError(
      `--labels ${budget}: the budget is split evenly over the ${numClasses} classes and needs at least 2 per class ` +
        `(a multiple of ${numClasses}, >= ${2 * numClasses})`,
    );
  }
  const perClass = budget / numClasses;
  const byClass = rowsByClass(labels, numClasses);
  const rng = new Rng(mixSeed(seed, LABEL_SUBSET_TAG));
  const rows: number[] = [];
  byClass.forEach((members, y) => {
    if (members.length < perClass) {
      throw new InputError(
        `--labels ${budget}: class ${y}${classNames ? ` (${classNames[y]})` : ""} has only ${members.length} training images, ` +
          `fewer than the ${perClass} per class the budget needs`,
      );
    }
    rows.push(...rng.sample(members, perClass));
  });
  return rows.sort((a, b) => a - b);
}

/** The training set with every label hidden (-1) except those of `rows` (pixels shared, not copied). */
export function hideLabels(set: ImageSet, rows: ArrayLike<number>): ImageSet {
  const labels = new Int32Array(set.n).fill(-1);
  for (let i = 0; i < rows.length; i++) labels[rows[i]] = set.labels[rows[i]];
  return { ...set, labels };
}

/** Class frequencies of the labelled rows (p(y) of the generative model). */
export function classPrior(labels: Int32Array, numClasses: number): number[] {
  const c = new Array<number>(numClasses).fill(0);
  let n = 0;
  for (const y of labels)
    if (y >= 0) {
      c[y]++;
      n++;
    }
  return c.map((k) => k / n);
}

/** Inverted-dropout mask values (0 or 1/keep) from the seeded Rng. */
function dropoutMask(rng: Rng, n: number, rate: number): Float32Array {
  const keep = 1 - rate;
  const m = new Float32Array(n);
  for (let i = 0; i < n; i++) m[i] = rng.next() < keep ? 1 / keep : 0;
  return m;
}

export interface SemiStepResult {
  /** Means over the labelled batch of the two parts of L(x, y). */
  recon: number;
  kl: number;
  /** Mean U(x) over the unlabelled batch. */
  u: number;
  /** Mean -log q(y | x) over the labelled batch. */
  xent: number;
  /** The minimised loss: J / (B_l + B_u). */
  loss: number;
}

/**
 * One semi-supervised step (Eq. 5-7) on a labelled batch (rows whose label in `train.labels` is
 * >= 0) and an unlabelled batch. Everything random comes from `rng` in a fixed order: n, the
 * labelled batch's complementary sets, one context pool of min(n, |class|) labelled rows per class
 * (shared by the whole unlabelled batch), eps, and q(y|x)'s dropout masks. An empty unlabelled
 * batch gives a labelled-only step (J's labelled terms; used by the trainer's warm-up).
 *
 * Why q(y|x) needs labels first (measured, 100 MNIST labels + 2,000 unlabelled, d = 8): U's gradient
 * on q(y|x) is sum_y dq_y (L(x,y) - log p(y) + log q_y + 1), and L(x, y) differs by tens to hundreds
 * of nats between classes, so it is ~10x the labelled cross-entropy's gradient and drives q(y|x)
 * towards the generative posterior p(y|x) ~ p(y) exp(-L(x,y)). Early in training that posterior is
 * worse than chance (argmin_y L(x,y) 76-93% wrong over the first 500 steps: one blurry class
 * prototype wins for every x), and q(y|x) follows it.
 * The reason (measured, seed 2, tfjs-node): for its first ~400 labelled steps the generative model
 * ignores v: the class embeddings v_y are nearly equal (mean distance between them < 0.4, against
 * ~5 after 800 steps), L(x, y) moves by ~2 nats with y (std over y), no more than with the z sample,
 * so p(y|x) is at chance. From ~500 labelled-only steps on v carries the class (std over y 30-120
 * nats) and the posterior improves; a warm-up that long (--labelled-warmup-steps 800) keeps U from
 * dragging q(y|x) down. `unlabelledContext: "all"` (U's v_y from every labelled member of y instead
 * of a pool of n ~ U{1..n_max}) makes U's targets less noisy (the spec only says "from labelled
 * members of class y").
 */
export function makeSemiStep(
  model: EquiVAE,
  optimizer: tf.Optimizer,
  train: ImageSet,
  sampler: ComplementarySampler,
  prior: number[],
  o: { nMax: number; contextShare: number; unlabelledContext?: number | "all" },
): (labelled: ArrayLike<number>, unlabelled: ArrayLike<number>, rng: Rng) => SemiStepResult {
  const cfg = model.config;
  const K = cfg.numClasses;
  const [H, W, C] = [cfg.height, cfg.width, cfg.channels];
  const vars = model.params.list();
  const [u1, u2] = CLASSIFIER_UNITS;
  // A class absent from the labelled set has p(y) = 0: log 0 would poison U, so clamp.
  const logPrior = prior.map((p) => Math.log(Math.max(p, 1e-12)));
  return (labBatch, unlBatch, rng) => {
    const Bl = labBatch.length;
    const Bu = unlBatch.length;
    const n = rng.int(1, o.nMax);
    const { rows, sets } = sampler.batchContexts(labBatch, train.labels, n, o.contextShare, rng);
    // One pool per class for the unlabelled batch: they are not labelled rows, so nothing to exclude.
    // An empty unlabelled batch (a labelled-only step) needs none.
    // Its size: the step's n (default), a fixed k, or every labelled member ("all": no draw).
    for (let y = 0; y < (Bu > 0 ? K : 0); y++) {
      const members = sampler.byClass[y];
      const pool =
        o.unlabelledContext === "all"
          ? Array.from(members)
          : rng.sample(members, Math.min(o.unlabelledContext ?? n, members.length));
      const base = rows.length;
      rows.push(...pool);
      sets.push(pool.map((_, j) => base + j));
    }
    const epsL = normals(rng, Bl * cfg.dz);
    const epsU = normals(rng, Bu * K * cfg.dz);
    const m1 = dropoutMask(rng, (Bl + Bu) * u1, CLASSIFIER_DROPOUT);
    const m2 = dropoutMask(rng, (Bl + Bu) * u2, CLASSIFIER_DROPOUT);
    const yL = Int32Array.from(labBatch as ArrayLike<number>, (r) => train.labels[r]);
    // Every context row is a labelled row: with a small label budget most repeat.
    const ctxRows = mergeRepeatedRows({ rows, sets });
    return tf.tidy(() => {
      const xL = tf.tensor4d(batchPixels(train, labBatch), [Bl, H, W, C]);
      const xU = tf.tensor4d(batchPixels(train, unlBatch), [Bu, H, W, C]);
      const P = ctxRows.rows.length;
      const ctx = tf.tensor4d(batchPixels(train, ctxRows.rows), [P, H, W, C]);
      const avg = tf.tensor2d(averagingMatrix(ctxRows.sets, P), [sets.length, P]);
      const eL = tf.tensor2d(epsL, [Bl, cfg.dz]);
      const eU = tf.tensor2d(epsU, [Bu * K, cfg.dz]);
      const masks = { h1: tf.tensor2d(m1, [Bl + Bu, u1]), h2: tf.tensor2d(m2, [Bl + Bu, u2]) };
      const oneHot = tf.oneHot(tf.tensor1d(yL, "int32"), K);
      const lp = tf.tensor1d(logPrior);
      const xLU = Bu > 0 ? tf.concat([xL, xU], 0) : xL;
      // q(y|x)'s input v(x) is under stop_gradient: computed here, off the gradient tape, so that
      // f's backward pass does not run on zeros (the same values; f's weights change after the step).
      const vCls = model.invariant(xLU);
      let parts: tf.Scalar[] = [];
      optimizer.minimize(
        () => {
          const vAll = model.setInvariant(ctx, avg);
          const vL = tf.slice(vAll, [0, 0], [Bl, cfg.dv]);
          const tL = labelledTerms(model, xL, vL, eL);
          // (x_i, class y) is row i*K + y of eU; q(z|x,v)'s conv stack runs once per x.
          const tU =
            Bu > 0
              ? classTerms(model, xU, tf.slice(vAll, [Bl, 0], [K, cfg.dv]), eU)
              : { recon: tf.zeros([0, K]) as tf.Tensor2D, kl: tf.zeros([0, K]) as tf.Tensor2D };
          const logq = tf.logSoftmax(model.classifierLogits(xLU, masks, vCls));
          const r = semiSupervisedObjective({
            labelledL: tf.add(tL.recon, tL.kl),
            labelledLogQ: tf.sum(tf.mul(tf.slice(logq, [0, 0], [Bl, K]), oneHot), 1),
            unlabelledL: tf.add(tU.recon, tU.kl),
            unlabelledLogQ: tf.slice(logq, [Bl, 0], [Bu, K]),
            logPrior: lp,
          });
          parts = [
            tf.keep(tf.mean(tL.recon) as tf.Scalar),
            tf.keep(tf.mean(tL.kl) as tf.Scalar),
            tf.keep(tf.div(r.sumU, Math.max(Bu, 1)) as tf.Scalar),
            tf.keep(tf.div(r.sumXent, Bl) as tf.Scalar),
            tf.keep(tf.clone(r.loss)),
          ];
          return r.loss;
        },
        false,
        vars,
      );
      const [recon, kl, u, xent, loss] = parts.map((t) => t.dataSync()[0]);
      tf.dispose(parts);
      return { recon, kl, u, xent, loss };
    });
  };
}

/** q(y | x) predictions (dropout off) for every row of `set`, in batches. */
export function predictClassifier(model: EquiVAE, set: ImageSet, batch = 256): Int32Array {
  const out = new Int32Array(set.n);
  for (let s = 0; s < set.n; s += batch) {
    const idx: number[] = [];
    for (let i = s; i < Math.min(set.n, s + batch); i++) idx.push(i);
    const p = tf.tidy(() =>
      tf.argMax(
        model.classifierLogits(
          tf.tensor4d(batchPixels(set, idx), [idx.length, set.height, set.width, set.channels]),
        ),
        1,
      ),
    );
    out.set(p.dataSync() as Int32Array, s);
    p.dispose();
  }
  return out;
}
