/**
 * The end of an epoch: evaluation on the validation split, the epoch's metrics, the checkpoint
 * (with the files the command layer derives from the weights) and the best-by-validation copy.
 */
import type * as tf from "@tensorflow/tfjs";
import { promises as fsp } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { LabelledData } from "../data/dataset.js";
import { preprocessingText } from "../model/standardisation.js";
import { fmtDuration } from "../util/progress.js";
import { replaceDir } from "../util/fsx.js";
import type { Centroids, EpochMetrics, ZActivity } from "../checkpoint/index.js";
import { saveCheckpoint } from "./checkpoint.js";
import { centroidsFrom, embedInvariant, errorRate, nearestCentroid } from "./embedding.js";
import type { EpochSums } from "./epochs.js";
import { FIXED_ON_RESUME, type RunSetup } from "./run-setup.js";
import { predictClassifier } from "./semi.js";
import type { TrainOptions } from "./trainer.js";
import { measureZActivity } from "./z-activity.js";

export interface EpochEvaluation {
  centroids: Centroids;
  /** Nearest-centroid error of the n = 1 embeddings on the validation split. */
  valCentroidError: number;
  /** The same on the rows the centroids came from: how well v fits, beside how it generalises. */
  trainCentroidError: number;
  /** Semi-supervised: q(y | x)'s error on the validation split. */
  valClassifierError?: number;
  /** Mean KL per z dimension on the validation split (absent without validation images). */
  zActivity?: ZActivity;
}

/** Where `train` keeps the best-by-validation checkpoint of the run in `out`. */
export function bestDirFor(out: string): string {
  return `${out.replace(/[\\/]+$/, "")}-best`;
}

/**
 * Centroids from the n = 1 embeddings of the training split (semi-supervised: of the labelled
 * rows only; the hidden labels are never used); errors on the validation split.
 */
export function evaluateEpoch(run: RunSetup, data: LabelledData): EpochEvaluation {
  const { model } = run;
  const cfg = model.config;
  const vTrain = embedInvariant(model, run.labelledSet);
  const cm = centroidsFrom(vTrain, run.labelledSet.labels, cfg.numClasses, cfg.dv);
  const vVal = embedInvariant(model, data.validation);
  const counts = new Array<number>(cfg.numClasses).fill(0);
  for (const y of run.train.labels) if (y >= 0) counts[y]++;
  return {
    centroids: {
      classNames: data.classNames,
      dv: cfg.dv,
      centroids: Array.from({ length: cfg.numClasses }, (_, y) =>
        Array.from(cm.subarray(y * cfg.dv, (y + 1) * cfg.dv)),
      ),
      counts,
    },
    valCentroidError: errorRate(nearestCentroid(vVal, cm, cfg.dv), data.validation.labels),
    // Free: vTrain is embedded for the centroids anyway (~20 ms of distances for 55,000 rows).
    trainCentroidError: errorRate(nearestCentroid(vTrain, cm, cfg.dv), run.labelledSet.labels),
    ...(run.semi
      ? { valClassifierError: errorRate(predictClassifier(model, data.validation), data.validation.labels) }
      : {}),
    ...(data.validation.n > 0
      ? { zActivity: measureZActivity(model, data.validation, { split: "validation", v: vVal }) }
      : {}),
  };
}

/** The epoch's metrics line. Semi-supervised: elbo/recon/kl are means over the labelled examples seen (L(x, y)). */
export function epochMetrics(
  run: RunSetup,
  sums: EpochSums,
  ev: EpochEvaluation,
  t: {
    epoch: number;
    batchSize: number;
    rows: number;
    trainSeconds: number;
    epochSeconds: number;
    backend: string;
  },
  raw?: EpochEvaluation,
): EpochMetrics {
  const per = sums.examples;
  return {
    epoch: t.epoch,
    elbo: -(sums.recon + sums.kl) / per,
    recon: sums.recon / per,
    kl: sums.kl / per,
    valCentroidError: ev.valCentroidError,
    ...(raw ? { valCentroidErrorRaw: raw.valCentroidError } : {}),
    trainCentroidError: ev.trainCentroidError,
    ...(raw ? { trainCentroidErrorRaw: raw.trainCentroidError } : {}),
    ...(raw?.valClassifierError !== undefined ? { valClassifierErrorRaw: raw.valClassifierError } : {}),
    ...(run.semi
      ? {
          valClassifierError: ev.valClassifierError,
          unlabelledU: sums.u! / t.rows,
          classificationLoss: sums.xent! / per,
        }
      : {}),
    batchSize: t.batchSize,
    imgPerSec: t.rows / t.trainSeconds,
    epochSeconds: t.epochSeconds,
    backend: t.backend,
    time: new Date().toISOString(),
  };
}

/**
 * Writes the epoch's checkpoint (atomically, with the derived files) and, when its validation
 * error beats every earlier epoch's, copies it to `<out>-best`. Returns a note for the log line.
 */
export async function writeEpoch(
  run: RunSetup,
  data: LabelledData,
  o: TrainOptions,
  m: EpochMetrics,
  ev: EpochEvaluation,
  trainWeights?: tf.NamedTensorMap,
): Promise<string> {
  const { model } = run;
  const cfg = model.config;
  await saveCheckpoint(
    run.out,
    {
      manifest: {
        model: cfg,
        parameterCount: model.parameterCount,
        parameters: model.parameterBreakdown(),
        dataset: {
          name: data.name,
          source: data.source,
          classNames: data.classNames,
          trainSize: run.train.n,
          valSize: data.validation.n,
          preprocessing: preprocessingText(
            cfg.standardise ? (model.standardisation?.mode ?? "pixel") : "off",
          ),
          ...(o.datasetLoader ? { loader: o.datasetLoader } : {}),
        },
        training: {
          command: run.command,
          resumedWith: run.resumedWith,
          options: Object.fromEntries(FIXED_ON_RESUME.map((k) => [k, o[k]])),
          epochsCompleted: m.epoch,
          epochsPlanned: o.epochs,
          backend: o.backend,
          ...(o.device ? { device: o.device } : {}),
          ...(o.backendPackage ? { backendPackage: o.backendPackage } : {}),
          wallSeconds: run.state.wallSeconds,
        },
        metrics: m,
        ...(ev.zActivity ? { zActivity: ev.zActivity } : {}),
      },
      model,
      optimizer: run.optimizer,
      centroids: ev.centroids,
      state: run.state,
      metricsLines: run.metrics,
      ...(run.labelled ? { labelled: run.labelled } : {}),
      ...(trainWeights ? { trainWeights } : {}),
    },
    o.deriveFiles,
  );
  if (o.keepBest === false) return "";
  const sel = (x: EpochMetrics) => (run.semi ? x.valClassifierError! : x.valCentroidError);
  // Earlier epochs' metrics come from metrics.jsonl, so a resumed run keeps the same best.
  if (!run.metrics.slice(0, -1).every((x) => sel(m) < sel(x))) return "";
  await copyCheckpoint(run.out, bestDirFor(run.out));
  return ` (best so far, copied to ${bestDirFor(run.out)})`;
}

/** Copies a checkpoint directory and swaps it into `dest` atomically. */
async function copyCheckpoint(src: string, dest: string): Promise<void> {
  const tmp = join(dirname(dest), `.${basename(dest)}.tmp-${process.pid}`);
  await fsp.rm(tmp, { recursive: true, force: true });
  await fsp.cp(src, tmp, { recursive: true });
  await replaceDir(tmp, dest);
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** The epoch's one log line. */
export function epochLine(run: RunSetup, m: EpochMetrics, ev: EpochEvaluation, note: string): string {
  const cfg = run.model.config;
  return (
    `epoch ${m.epoch}: ELBO ${m.elbo.toFixed(2)} (recon ${m.recon.toFixed(2)}, KL ${m.kl.toFixed(2)}), ` +
    `val centroid error ${pct(m.valCentroidError)}` +
    (m.valCentroidErrorRaw !== undefined ? ` (raw weights ${pct(m.valCentroidErrorRaw)})` : "") +
    `, train ${pct(ev.trainCentroidError)}` +
    (ev.zActivity ? `, active z ${ev.zActivity.activeDims.length}/${cfg.dz}` : "") +
    (run.semi
      ? `, val q(y|x) error ${pct(m.valClassifierError!)}` +
        (m.valClassifierErrorRaw !== undefined ? ` (raw weights ${pct(m.valClassifierErrorRaw)})` : "") +
        `, U ${m.unlabelledU!.toFixed(2)}, -log q ${m.classificationLoss!.toFixed(3)}`
      : "") +
    `, batch ${m.batchSize}, ${m.imgPerSec.toFixed(1)} img/s, ` +
    `${fmtDuration(m.epochSeconds)}; saved ${run.out}${note}`
  );
}
