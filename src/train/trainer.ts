import * as tf from "@tensorflow/tfjs";
import { existsSync, promises as fsp } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { replaceDir } from "../util/fsx.js";
import type { ImageSet, LabelledData } from "../data/dataset.js";
import { batchPixels } from "../data/dataset.js";
import { ComplementarySampler, averagingMatrix } from "../data/sampler.js";
import { defaultConfig, type ModelConfig } from "../model/config.js";
import { EquiVAE } from "../model/equivae.js";
import { supervisedLoss } from "../model/objective.js";
import { exportOnnx } from "../export/onnx.js";
import { InputError, TrainingDivergedError } from "../util/errors.js";
import { Progress, fmtDuration } from "../util/progress.js";
import { Rng, mixSeed, normals } from "../util/rng.js";
import {
  readManifest,
  type Centroids,
  type DatasetInfo,
  type EpochMetrics,
  type LabelledSubset,
  type TrainState,
} from "../checkpoint/index.js";
import { FlatAdam } from "./flat-adam.js";
import { loadCheckpoint, loadOptimizerState, saveCheckpoint } from "./checkpoint.js";
import { centroidsFrom, embedInvariant, errorRate, nearestCentroid } from "./embedding.js";
import { classPrior, hideLabels, makeSemiStep, predictClassifier, selectLabelled } from "./semi.js";
import { subset } from "../data/dataset.js";
import { computeStandardisation, preprocessingText } from "../model/standardisation.js";
import { checkResumeLikelihood, resolveLikelihood, type LikelihoodOptions } from "./likelihood-options.js";
import { measureZActivity } from "./z-activity.js";

export interface TrainOptions extends LikelihoodOptions {
  out: string;
  epochs: number;
  dv: number;
  dz: number;
  hidden?: number;
  filters?: number[];
  nMax: number;
  batchSize: number;
  /** Double the batch size every this many epochs (0: never). */
  batchDoubleEvery: number;
  maxBatchSize: number;
  /** At most this many targets of one class share one context pool per step. */
  contextShare: number;
  learningRate: number;
  seed: number;
  resume: boolean;
  /** The command line, recorded in the manifest. */
  command: string;
  backend: string;
  /** Recorded in the manifest (training.device, training.backendPackage): see BackendInfo. */
  device?: "cpu" | "gpu";
  backendPackage?: string;
  /** Printed log lines (per-epoch summaries); progress bars go to stderr. */
  log?: (line: string) => void;
  quiet?: boolean;
  /** Write the ONNX graphs into every checkpoint (default true). */
  exportOnnx?: boolean;
  /**
   * Semi-supervised label budget (Eq. 5-7): a balanced, seeded subset of this many training rows
   * keeps its labels, the rest are used unlabelled. Undefined: supervised (every label).
   */
  labels?: number;
  /** Image folders: the loader settings recorded in the manifest (dataset.loader) for eval and report. */
  datasetLoader?: DatasetInfo["loader"];
  /**
   * Also keep the checkpoint with the lowest validation error (q(y|x) error when semi-supervised,
   * nearest-centroid error otherwise) in `<out>-best` (default true). Selection never sees test data.
   */
  keepBest?: boolean;
  /**
   * Semi-supervised only: epoch 1 starts with this many labelled-only steps (no unlabelled batch,
   * so U has weight 0 while they last). Undefined or 0: none. Without it the generative model
   * ignores v when U starts and U pulls q(y|x) towards a posterior at chance (docs/results.md).
   */
  labelledWarmupSteps?: number;
  /**
   * Semi-supervised only: the size of the labelled context pool of each class from which U(x)'s
   * v_y is computed. Undefined: the step's n ~ U{1..nMax} (one pool per class, shared by the
   * unlabelled batch); a number k: min(k, class size); "all": every labelled member of the class.
   */
  unlabelledContext?: number | "all";
}

/** Where `train` keeps the best-by-validation checkpoint of the run in `out`. */
export function bestDirFor(out: string): string {
  return `${out.replace(/[\\/]+$/, "")}-best`;
}

/** Copies a checkpoint directory and swaps it into `dest` atomically. */
async function copyCheckpoint(src: string, dest: string): Promise<void> {
  const tmp = join(dirname(dest), `.${basename(dest)}.tmp-${process.pid}`);
  await fsp.rm(tmp, { recursive: true, force: true });
  await fsp.cp(src, tmp, { recursive: true });
  await replaceDir(tmp, dest);
}

export function batchSizeFor(
  epoch: number,
  o: Pick<TrainOptions, "batchSize" | "batchDoubleEvery" | "maxBatchSize">,
): number {
  const doublings = o.batchDoubleEvery > 0 ? Math.floor((epoch - 1) / o.batchDoubleEvery) : 0;
  return Math.min(o.maxBatchSize, o.batchSize * 2 ** doublings);
}

/**
 * One supervised optimisation step on a batch of training rows: draws n ~ U{1..nMax}, the
 * shared complementary sets and eps from `rng`, then applies Adam. Leaves no tensors behind.
 */
export function makeTrainStep(
  model: EquiVAE,
  optimizer: tf.Optimizer,
  train: ImageSet,
  sampler: ComplementarySampler,
  o: Pick<TrainOptions, "nMax" | "contextShare">,
): (batch: ArrayLike<number>, rng: Rng) => { recon: number; kl: number } {
  const cfg = model.config;
  const [H, W, C] = [cfg.height, cfg.width, cfg.channels];
  const vars = model.params.list();
  return (batch, rng) => {
    const B = batch.length;
    const n = rng.int(1, o.nMax);
    const { rows, sets } = sampler.batchContexts(batch, train.labels, n, o.contextShare, rng);
    const eps = normals(rng, B * cfg.dz);
    return tf.tidy(() => {
      const x = tf.tensor4d(batchPixels(train, batch), [B, H, W, C]);
      const ctx = tf.tensor4d(batchPixels(train, rows), [rows.length, H, W, C]);
      const avg = tf.tensor2d(averagingMatrix(sets, rows.length), [B, rows.length]);
      const e = tf.tensor2d(eps, [B, cfg.dz]);
      let parts: tf.Scalar[] = [];
      optimizer.minimize(
        () => {
          const r = supervisedLoss(model, x, ctx, avg, e);
          parts = [tf.keep(r.recon), tf.keep(r.kl)];
          return r.loss;
        },
        false,
        vars,
      );
      const [recon, kl] = parts.map((t) => t.dataSync()[0]);
      tf.dispose(parts);
      return { recon, kl };
    });
  };
}

export interface TrainResult {
  model: EquiVAE;
  metrics: EpochMetrics[];
  centroids: Centroids;
}

/** The options that must match between a checkpoint and `--resume`. */
const FIXED_ON_RESUME = [
  "dv",
  "dz",
  "hidden",
  "filters",
  "nMax",
  "seed",
  "contextShare",
  "batchSize",
  "batchDoubleEvery",
  "maxBatchSize",
  "learningRate",
  "labels",
  "labelledWarmupSteps",
  "unlabelledContext",
] as const;

/**
 * Supervised EquiVAE training (Eq. 4) with a checkpoint after every epoch.
 * With `resume`, continues from the last completed epoch in `out`; the per-epoch seeds make
 * the continued run identical to an uninterrupted one.
 */
export async function train(data: LabelledData, o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const out = resolve(o.out);
  const semi = o.labels !== undefined;
  const K = data.classNames.length;
  // Semi-supervised: only the chosen rows keep their labels (the sampler never draws the others).
  const labelledRows = semi ? selectLabelled(data.train.labels, K, o.labels!, o.seed, data.classNames) : [];
  const train = semi ? hideLabels(data.train, labelledRows) : data.train;
  const sampler = new ComplementarySampler(train.labels, data.classNames);
  const prior = semi ? classPrior(train.labels, K) : [];
  const labelled: LabelledSubset | undefined = semi
    ? {
        budget: o.labels!,
        perClass: o.labels! / K,
        seed: o.seed,
        trainSize: train.n,
        rows: labelledRows,
        prior,
      }
    : undefined;

  let model: EquiVAE;
  let state: TrainState = { epoch: 0, step: 0, wallSeconds: 0 };
  let metrics: EpochMetrics[] = [];
  let command = o.command;
  const resumedWith: string[] = [];
  const optimizer = new FlatAdam(o.learningRate);

  if (o.resume && existsSync(out)) {
    const m = await readManifest(out);
    const prev = m.training.options as Record<string, unknown>;
    if (prev.labels !== undefined && o.labels === undefined) {
      throw new InputError(
        `--resume: ${out} is a semi-supervised run (--labels ${prev.labels}); resume it with the same --labels`,
      );
    }
    for (const k of FIXED_ON_RESUME) {
      // Unset optional sizes (hidden, filters) mean "as the checkpoint".
      if (o[k] === undefined) continue;
      if (JSON.stringify(prev[k]) !== JSON.stringify(o[k])) {
        throw new InputError(
          `--resume: ${k} was ${JSON.stringify(prev[k])} in ${out} but is ${JSON.stringify(o[k])} now; ` +
            `resume with the original settings (only --epochs may change)`,
        );
      }
    }
    if (m.dataset.name !== data.name || m.dataset.trainSize !== train.n) {
      throw new InputError(
        `--resume: ${out} was trained on ${m.dataset.name} (${m.dataset.trainSize} images), not ${data.name} (${train.n})`,
      );
    }
    const ck = await loadCheckpoint(out);
    if (semi && JSON.stringify(ck.labelled?.rows) !== JSON.stringify(labelledRows)) {
      ck.model.dispose();
      throw new InputError(`--resume: the labelled rows recorded in ${out} differ from this run's selection`);
    }
    model = ck.model;
    checkResumeLikelihood(model, o, out);
    state = ck.state;
    metrics = ck.metricsLines;
    command = m.training.command;
    resumedWith.push(...(m.training.resumedWith ?? []), o.command);
    await loadOptimizerState(out, optimizer);
    log(`resuming ${out} after epoch ${state.epoch} of ${o.epochs}`);
  } else {
    if (o.resume) log(`--resume: ${out} does not exist yet; starting a new run`);
    else if (existsSync(out)) {
      throw new InputError(`${out} already exists; pass --resume to continue it, or choose another --out`);
    }
    const lk = resolveLikelihood(train.channels, data.name, o);
    const cfg: ModelConfig = defaultConfig({
      height: train.height,
      width: train.width,
      channels: train.channels,
      numClasses: data.classNames.length,
      dv: o.dv,
      dz: o.dz,
      hidden: o.hidden,
      filters: o.filters,
      classifier: semi,
      ...lk,
      standardise: lk.standardise !== "off",
    });
    model = new EquiVAE(cfg, o.seed);
    // Statistics of the training split (all of it, labelled or not; never validation/test).
    if (lk.standardise !== "off") model.setStandardisation(computeStandardisation(train, lk.standardise));
  }
  const cfg = model.config;
  const breakdown = model.parameterBreakdown();
  log(
    `model: ${model.parameterCount.toLocaleString("en")} parameters (` +
      Object.entries(breakdown)
        .map(([k, v]) => `${k} ${v.toLocaleString("en")}`)
        .join(", ") +
      `); dv=${cfg.dv} dz=${cfg.dz} H=${cfg.hidden} filters=${cfg.filters.join(",")}` +
      ` likelihood=${cfg.likelihood}` +
      (cfg.likelihood === "gaussian" ? ` (scale ${cfg.gaussianScale ?? "learned"})` : "") +
      (cfg.standardise ? `, inputs standardised per ${model.standardisation?.mode ?? "pixel"}` : ""),
  );
  log(`data: ${data.name} train ${train.n}, validation ${data.validation.n} (${data.source})`);
  if (semi) {
    log(
      `semi-supervised: ${labelledRows.length} labelled rows (${o.labels! / K} per class, seed ${o.seed}), ` +
        `${train.n - labelledRows.length} unlabelled`,
    );
  }
  const unlabelledRows = semi
    ? Int32Array.from(train.labels.keys()).filter((i) => train.labels[i] < 0)
    : null;
  const labelledSet = semi ? subset(train, labelledRows) : train;

  const step = semi ? null : makeTrainStep(model, optimizer, train, sampler, o);
  const semiStep = semi ? makeSemiStep(model, optimizer, train, sampler, prior, o) : null;
  let centroids: Centroids | undefined;
  for (let epoch = state.epoch + 1; epoch <= o.epochs; epoch++) {
    const rng = new Rng(mixSeed(o.seed, epoch));
    const bs = batchSizeFor(epoch, o);
    const t0 = Date.now();
    // Semi-supervised: an epoch is one pass over the unlabelled rows; each step also takes a
    // labelled batch of the same size, cycling through the (reshuffled) labelled rows.
    // NOTE, this re-weights J: against the plain sum over the data set (every row once per epoch),
    // each labelled row is visited N_u * B_l / (B * N_l) times per epoch, so the labelled terms
    // (L and -log q) carry that factor relative to U: 20x for 100 labels + 2,000 unlabelled,
    // ~550x for 100 labels on full MNIST. Every mini-batch semi-supervised VAE that draws equal
    // labelled and unlabelled batches (e.g. Kingma et al. 2014's M2) does the same.
    const epochRows = semi ? unlabelledRows!.length : train.n;
    const progress = o.quiet ? undefined : new Progress(`epoch ${epoch}/${o.epochs}`, epochRows);
    let sumRecon = 0;
    let sumKl = 0;
    let seenLabelled = 0;
    let sumU = 0;
    let sumXent = 0;
    if (semi) {
      const order = Int32Array.from(unlabelledRows!);
      rng.shuffle(order);
      const labOrder = Int32Array.from(labelledRows);
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
      for (let w = 0, s = 0; s < order.length; w < warm ? w++ : (s += bs)) {
        const unl = w < warm ? none : order.subarray(s, Math.min(order.length, s + bs));
        if (at + Bl > labOrder.length) {
          rng.shuffle(labOrder);
          at = 0;
        }
        const lab = labOrder.subarray(at, at + Bl);
        at += Bl;
        const r = semiStep!(lab, unl, rng);
        if (!Number.isFinite(r.loss)) {
          throw new TrainingDivergedError(
            `training diverged at epoch ${epoch} (loss is ${r.loss}); the last good checkpoint is ${out}`,
          );
        }
        sumRecon += r.recon * Bl;
        sumKl += r.kl * Bl;
        sumXent += r.xent * Bl;
        seenLabelled += Bl;
        sumU += r.u * unl.length;
        state.step++;
        progress?.tick(unl.length, `J ${r.loss.toFixed(1)} xent ${r.xent.toFixed(2)}`);
      }
    }
    const order = Int32Array.from({ length: semi ? 0 : train.n }, (_, i) => i);
    if (!semi) rng.shuffle(order);
    for (let s = 0; s < order.length; s += bs) {
      const batch = order.subarray(s, Math.min(train.n, s + bs));
      const B = batch.length;
      const { recon, kl } = step!(batch, rng);
      if (!Number.isFinite(recon) || !Number.isFinite(kl)) {
        throw new TrainingDivergedError(
          `training diverged at epoch ${epoch} (loss is ${recon + kl}); the last good checkpoint is ${out}`,
        );
      }
      sumRecon += recon * B;
      sumKl += kl * B;
      state.step++;
      progress?.tick(B, `-ELBO ${(recon + kl).toFixed(1)}`);
    }
    const trainSecs = (Date.now() - t0) / 1000;
    // Centroids from the n = 1 embeddings of the training split (semi-supervised: of the labelled
    // rows only; the hidden labels are never used); error on the validation split.
    const vTrain = embedInvariant(model, labelledSet);
    const cm = centroidsFrom(vTrain, labelledSet.labels, cfg.numClasses, cfg.dv);
    const vVal = embedInvariant(model, data.validation);
    const valErr = errorRate(nearestCentroid(vVal, cm, cfg.dv), data.validation.labels);
    // Which z dimensions are used (mean KL per dimension on the validation split, v = v(x)).
    const zActivity =
      data.validation.n > 0
        ? measureZActivity(model, data.validation, { split: "validation", v: vVal })
        : undefined;
    const counts = new Array<number>(cfg.numClasses).fill(0);
    for (const y of train.labels) if (y >= 0) counts[y]++;
    const valClsErr = semi
      ? errorRate(predictClassifier(model, data.validation), data.validation.labels)
      : undefined;
    centroids = {
      classNames: data.classNames,
      dv: cfg.dv,
      centroids: Array.from({ length: cfg.numClasses }, (_, y) =>
        Array.from(cm.subarray(y * cfg.dv, (y + 1) * cfg.dv)),
      ),
      counts,
    };
    const epochSecs = (Date.now() - t0) / 1000;
    state = { epoch, step: state.step, wallSeconds: state.wallSeconds + epochSecs };
    // Semi-supervised: elbo/recon/kl are means over the labelled examples seen (L(x, y)).
    const perEx = semi ? seenLabelled : train.n;
    const m: EpochMetrics = {
      epoch,
      elbo: -(sumRecon + sumKl) / perEx,
      recon: sumRecon / perEx,
      kl: sumKl / perEx,
      valCentroidError: valErr,
      ...(semi
        ? {
            valClassifierError: valClsErr,
            unlabelledU: sumU / epochRows,
            classificationLoss: sumXent / seenLabelled,
          }
        : {}),
      batchSize: bs,
      imgPerSec: epochRows / trainSecs,
      epochSeconds: epochSecs,
      backend: o.backend,
      time: new Date().toISOString(),
    };
    metrics.push(m);
    await saveCheckpoint(
      out,
      {
        manifest: {
          model: cfg,
          parameterCount: model.parameterCount,
          parameters: breakdown,
          dataset: {
            name: data.name,
            source: data.source,
            classNames: data.classNames,
            trainSize: train.n,
            valSize: data.validation.n,
            preprocessing: preprocessingText(
              cfg.standardise ? (model.standardisation?.mode ?? "pixel") : "off",
            ),
            ...(o.datasetLoader ? { loader: o.datasetLoader } : {}),
          },
          training: {
            command,
            resumedWith,
            options: Object.fromEntries(FIXED_ON_RESUME.map((k) => [k, o[k]])),
            epochsCompleted: epoch,
            epochsPlanned: o.epochs,
            backend: o.backend,
            ...(o.device ? { device: o.device } : {}),
            ...(o.backendPackage ? { backendPackage: o.backendPackage } : {}),
            wallSeconds: state.wallSeconds,
          },
          metrics: m,
          ...(zActivity ? { zActivity } : {}),
        },
        model,
        optimizer,
        centroids,
        state,
        metricsLines: metrics,
        ...(labelled ? { labelled } : {}),
      },
      async (tmp) => {
        // Every checkpoint carries its ONNX graphs (the serving engine), made from the same weights.
        if (o.exportOnnx !== false) await exportOnnx(tmp);
      },
    );
    let bestNote = "";
    if (o.keepBest !== false) {
      const sel = (x: EpochMetrics) => (semi ? x.valClassifierError! : x.valCentroidError);
      // Earlier epochs' metrics come from metrics.jsonl, so a resumed run keeps the same best.
      if (metrics.slice(0, -1).every((x) => sel(m) < sel(x))) {
        await copyCheckpoint(out, bestDirFor(out));
        bestNote = ` (best so far, copied to ${bestDirFor(out)})`;
      }
    }
    log(
      `epoch ${epoch}: ELBO ${m.elbo.toFixed(2)} (recon ${m.recon.toFixed(2)}, KL ${m.kl.toFixed(2)}), ` +
        `val centroid error ${(valErr * 100).toFixed(2)}%` +
        (zActivity ? `, active z ${zActivity.activeDims.length}/${cfg.dz}` : "") +
        (semi
          ? `, val q(y|x) error ${(valClsErr! * 100).toFixed(2)}%, U ${m.unlabelledU!.toFixed(2)}, ` +
            `-log q ${m.classificationLoss!.toFixed(3)}`
          : "") +
        `, batch ${bs}, ${m.imgPerSec.toFixed(1)} img/s, ` +
        `${fmtDuration(epochSecs)}; saved ${out}${bestNote}`,
    );
  }
  optimizer.dispose();
  if (!centroids) {
    const ck = await loadCheckpoint(out);
    ck.model.dispose();
    centroids = ck.centroids;
    log(`${out} has already completed ${state.epoch} epochs (asked for ${o.epochs}); nothing to do`);
  }
  return { model, metrics, centroids };
}
