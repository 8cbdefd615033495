/**
 * One epoch of optimisation, supervised (Eq. 4) or semi-supervised (Eq. 5-7): the order of the
 * rows, the batches and the steps, with the sums the epoch's metrics are made of.
 */
import * as tf from "@tensorflow/tfjs";
import type { ImageSet } from "../data/dataset.js";
import { batchPixels } from "../data/dataset.js";
import { ComplementarySampler, averagingMatrix, mergeRepeatedRows } from "../data/sampler.js";
import type { EquiVAE } from "../model/equivae.js";
import { supervisedLoss } from "../model/objective.js";
import { TrainingDivergedError } from "../util/errors.js";
import type { Progress } from "../util/progress.js";
import { normals, type Rng } from "../util/rng.js";
import type { RunSetup } from "./run-setup.js";
import { makeSemiStep } from "./semi.js";
import type { TrainOptions } from "./trainer.js";

/** What an epoch adds up (per-example means are taken by the caller). */
export interface EpochSums {
  /** Sum of -E log p(x | v, z) over the examples L(x, y) was computed on (labelled ones when semi). */
  recon: number;
  kl: number;
  /** How many examples the recon and kl sums are over. */
  examples: number;
  /** Semi-supervised: sum of U(x) over the unlabelled rows, and of -log q(y | x) over the labelled. */
  u?: number;
  xent?: number;
}

export interface EpochStrategy {
  /** Rows one epoch passes over: the whole training split, or its unlabelled rows when semi-supervised. */
  readonly rowsPerEpoch: number;
  /** Runs the epoch's steps; `rng` is the epoch's own (Rng(mixSeed(seed, epoch))), so a resumed run repeats it. */
  run(epoch: number, batchSize: number, rng: Rng, progress?: Progress): EpochSums;
}

/**
 * One supervised optimisation step on a batch of training rows: draws n ~ U{1..nMax}, the
 * complementary sets and eps from `rng`, then applies the optimizer. Leaves no tensors behind.
 */
export function makeTrainStep(
  model: EquiVAE,
  optimizer: tf.Optimizer,
  train: ImageSet,
  sampler: ComplementarySampler,
  o: Pick<TrainOptions, "nMax" | "contextShare">,
): (batch: ArrayLike<number>, rng: Rng, n?: number) => { recon: number; kl: number } {
  const cfg = model.config;
  const [H, W, C] = [cfg.height, cfg.width, cfg.channels];
  const vars = model.params.list();
  // `n`: the context set size; drawn from U{1..nMax} unless given (bench:train cycles through 1..nMax).
  return (batch, rng, n = rng.int(1, o.nMax)) => {
    const B = batch.length;
    // Small classes repeat rows across a batch's sets: f runs once per distinct image.
    const { rows, sets } = mergeRepeatedRows(
      sampler.batchContexts(batch, train.labels, n, o.contextShare, rng),
    );
    const eps = normals(rng, B * cfg.dz);
    const terms = tf.tidy(() => {
      const x = tf.tensor4d(batchPixels(train, batch), [B, H, W, C]);
      const ctx = tf.tensor4d(batchPixels(train, rows), [rows.length, H, W, C]);
      const avg = tf.tensor2d(averagingMatrix(sets, rows.length), [B, rows.length]);
      const e = tf.tensor2d(eps, [B, cfg.dz]);
      let both: tf.Tensor1D | undefined;
      optimizer.minimize(
        () => {
          const r = supervisedLoss(model, x, ctx, avg, e);
          both = tf.keep(tf.stack([r.recon, r.kl]) as tf.Tensor1D);
          return r.loss;
        },
        false,
        vars,
      );
      return both!;
    });
    // One read back per step (it waits for the step to finish).
    const [recon, kl] = terms.dataSync();
    terms.dispose();
    return { recon, kl };
  };
}

function diverged(epoch: number, loss: number, out: string): TrainingDivergedError {
  return new TrainingDivergedError(
    `training diverged at epoch ${epoch} (loss is ${loss}); the last good checkpoint is ${out}`,
  );
}

/** Every epoch shuffles all training rows and steps through them in batches. */
export function supervisedEpochs(run: RunSetup, o: TrainOptions): EpochStrategy {
  const step = makeTrainStep(run.model, run.optimizer, run.train, run.sampler, o);
  const n = run.train.n;
  return {
    rowsPerEpoch: n,
    run(epoch, bs, rng, progress) {
      const order = Int32Array.from({ length: n }, (_, i) => i);
      rng.shuffle(order);
      const sums: EpochSums = { recon: 0, kl: 0, examples: n };
      for (let s = 0; s < n; s += bs) {
        const batch = order.subarray(s, Math.min(n, s + bs));
        const { recon, kl } = step(batch, rng);
        if (!Number.isFinite(recon) || !Number.isFinite(kl)) throw diverged(epoch, recon + kl, run.out);
        sums.recon += recon * batch.length;
        sums.kl += kl * batch.length;
        run.state.step++;
        run.average?.afterStep(run.state.step);
        progress?.tick(batch.length, `-ELBO ${(recon + kl).toFixed(1)}`);
      }
      return sums;
    },
  };
}

/**
 * An epoch is one pass over the unlabelled rows; each step also takes a labelled batch of the
 * same size, cycling through the (reshuffled) labelled rows.
 * NOTE, this re-weights J: against the plain sum over the data set (every row once per epoch),
 * each labelled row is visited N_u * B_l / (B * N_l) times per epoch, so the labelled terms
 * (L and -log q) carry that factor relative to U: 20x for 100 labels + 2,000 unlabelled,
 * ~550x for 100 labels on full MNIST. Every mini-batch semi-supervised VAE that draws equal
 * labelled and unlabelled batches (e.g. Kingma et al. 2014's M2) does the same.
 */
export function semiSupervisedEpochs(run: RunSetup, o: TrainOptions): EpochStrategy {
  const step = makeSemiStep(run.model, run.optimizer, run.train, run.sampler, run.prior, o);
  const unlabelled = run.unlabelledRows!;
  return {
    rowsPerEpoch: unlabelled.length,
    run(epoch, bs, rng, progress) {
      const order = Int32Array.from(unlabelled);
      rng.shuffle(order);
      const labOrder = Int32Array.from(run.labelledRows);
      rng.shuffle(labOrder);
      let at = 0;
      const Bl = Math.min(bs, labOrder.length);
      // Epoch 1 starts with `labelledWarmupSteps` labelled-only steps (empty unlabelled batch).
      // NOTE, a schedule that re-weights J while it lasts: U has weight 0 during the warm-up.
      // The objective optimised afterwards is the same J; the warm-up only moves its starting
      // point (q(y|x) and v first learn from the labels, so that U does not start by pulling
      // q(y|x) towards the untrained generative model's posterior; see docs/results.md).
      const warm = epoch === 1 ? (o.labelledWarmupSteps ?? 0) : 0;
      const none = new Int32Array(0);
      const sums: EpochSums = { recon: 0, kl: 0, examples: 0, u: 0, xent: 0 };
      for (let w = 0, s = 0; s < order.length; w < warm ? w++ : (s += bs)) {
        const unl = w < warm ? none : order.subarray(s, Math.min(order.length, s + bs));
        if (at + Bl > labOrder.length) {
          rng.shuffle(labOrder);
          at = 0;
        }
        const lab = labOrder.subarray(at, at + Bl);
        at += Bl;
        const r = step(lab, unl, rng);
        if (!Number.isFinite(r.loss)) throw diverged(epoch, r.loss, run.out);
        sums.recon += r.recon * Bl;
        sums.kl += r.kl * Bl;
        sums.xent! += r.xent * Bl;
        sums.examples += Bl;
        sums.u! += r.u * unl.length;
        run.state.step++;
        run.average?.afterStep(run.state.step);
        progress?.tick(unl.length, `J ${r.loss.toFixed(1)} xent ${r.xent.toFixed(2)}`);
      }
      return sums;
    },
  };
}
