/**
 * `train()`: supervised (Eq. 4) or semi-supervised (Eq. 5-7) EquiVAE training with a checkpoint
 * after every epoch. Its parts: run-setup.ts (rows, model, --resume checks), epochs.ts (the
 * epoch strategies and the training step), epoch-end.ts (evaluation, checkpoint, best copy).
 */
import type * as tf from "@tensorflow/tfjs";
import type { LabelledData } from "../data/dataset.js";
import type { EquiVAE } from "../model/equivae.js";
import { Progress } from "../util/progress.js";
import { Rng, mixSeed } from "../util/rng.js";
import type { Centroids, DatasetInfo, DeriveFiles, EpochMetrics } from "../checkpoint/index.js";
import { loadCheckpoint } from "./checkpoint.js";
import { epochLine, epochMetrics, evaluateEpoch, writeEpoch } from "./epoch-end.js";
import { semiSupervisedEpochs, supervisedEpochs } from "./epochs.js";
import type { LikelihoodOptions } from "./likelihood-options.js";
import { prepareRun, type RowSelection } from "./run-setup.js";

export { bestDirFor } from "./epoch-end.js";
export { makeTrainStep } from "./epochs.js";

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
  /** Evaluate, checkpoint and export an exponential moving average of the weights (undefined: off). */
  emaDecay?: number;
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
  /**
   * Makes more files from each checkpoint's weights, in memory (the command layer passes the ONNX
   * export, src/export/onnx.ts onnxFiles); undefined: none.
   */
  deriveFiles?: DeriveFiles;
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

export function batchSizeFor(
  epoch: number,
  o: Pick<TrainOptions, "batchSize" | "batchDoubleEvery" | "maxBatchSize">,
): number {
  const doublings = o.batchDoubleEvery > 0 ? Math.floor((epoch - 1) / o.batchDoubleEvery) : 0;
  return Math.min(o.maxBatchSize, o.batchSize * 2 ** doublings);
}

export interface TrainResult {
  model: EquiVAE;
  metrics: EpochMetrics[];
  centroids: Centroids;
}

/**
 * Trains from the epoch after the last completed one (`resume`) up to `o.epochs`, writing a
 * checkpoint after every epoch. The per-epoch seeds make a resumed run identical to an
 * uninterrupted one. `rows`: the selection of selectRows(data, o) when the caller made it already.
 */
export async function train(data: LabelledData, o: TrainOptions, rows?: RowSelection): Promise<TrainResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const run = await prepareRun(data, o, log, rows);
  const epochs = run.semi ? semiSupervisedEpochs(run, o) : supervisedEpochs(run, o);
  let centroids: Centroids | undefined;
  for (let epoch = run.state.epoch + 1; epoch <= o.epochs; epoch++) {
    const batchSize = batchSizeFor(epoch, o);
    const t0 = Date.now();
    const rows = epochs.rowsPerEpoch;
    const progress = o.quiet ? undefined : new Progress(`epoch ${epoch}/${o.epochs}`, rows);
    const sums = epochs.run(epoch, batchSize, new Rng(mixSeed(o.seed, epoch)), progress);
    const trainSeconds = (Date.now() - t0) / 1000;
    // With --ema-decay the raw weights are evaluated too (logged beside the average), and the
    // average is what is evaluated, saved and exported.
    const rawEv = run.average ? evaluateEpoch(run, data) : undefined;
    const endEpoch = async (trainWeights?: tf.NamedTensorMap) => {
      const ev = evaluateEpoch(run, data);
      const epochSeconds = (Date.now() - t0) / 1000;
      run.state = { epoch, step: run.state.step, wallSeconds: run.state.wallSeconds + epochSeconds };
      const t = { epoch, batchSize, rows, trainSeconds, epochSeconds, backend: o.backend };
      const m = epochMetrics(run, sums, ev, t, rawEv);
      run.metrics.push(m);
      const note = await writeEpoch(run, data, o, m, ev, trainWeights);
      log(epochLine(run, m, ev, note));
      return ev;
    };
    centroids = (run.average ? await run.average.withAverage(endEpoch) : await endEpoch()).centroids;
  }
  run.average?.dispose();
  run.optimizer.dispose();
  if (!centroids) {
    const ck = await loadCheckpoint(run.out);
    ck.model.dispose();
    centroids = ck.centroids;
    log(`${run.out} has already completed ${run.state.epoch} epochs (asked for ${o.epochs}); nothing to do`);
  }
  return { model: run.model, metrics: run.metrics, centroids };
}
