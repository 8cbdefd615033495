/**
 * Everything a training run settles before its first epoch: which rows keep their labels, the
 * model and optimizer (new, or restored with --resume after checking the settings match), and
 * the run's history.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { ImageSet, LabelledData } from "../data/dataset.js";
import { subset } from "../data/dataset.js";
import { ComplementarySampler } from "../data/sampler.js";
import { defaultConfig } from "../model/config.js";
import { EquiVAE } from "../model/equivae.js";
import { computeStandardisation } from "../model/standardisation.js";
import { InputError } from "../util/errors.js";
import {
  readManifest,
  type EpochMetrics,
  type LabelledSubset,
  type TrainState,
} from "../checkpoint/index.js";
import { loadCheckpoint, loadOptimizerState, loadTrainWeights } from "./checkpoint.js";
import { FlatAdam } from "./flat-adam.js";
import { WeightAverage } from "./weight-average.js";
import { checkResumeLikelihood, resolveLikelihood } from "./likelihood-options.js";
import { classPrior, hideLabels, selectLabelled } from "./semi.js";
import type { TrainOptions } from "./trainer.js";

/** The options that must match between a checkpoint and `--resume` (recorded in the manifest). */
export const FIXED_ON_RESUME = [
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
  "emaDecay",
  "labels",
  "labelledWarmupSteps",
  "unlabelledContext",
] as const;

/** Which training rows keep their labels (all of them when supervised). */
export interface RowSelection {
  semi: boolean;
  /** The training split; semi-supervised: every label hidden (-1) but those of `labelledRows`. */
  train: ImageSet;
  /** Semi-supervised: the rows that keep their labels (sorted); supervised: empty. */
  labelledRows: number[];
  /** The labelled rows' images (the centroids' source); supervised: `train` itself. */
  labelledSet: ImageSet;
  /** Semi-supervised: the rows without a label; supervised: null. */
  unlabelledRows: Int32Array | null;
  /** Draws complementary sets among the labelled rows. */
  sampler: ComplementarySampler;
  /** Semi-supervised: the class prior p(y) of the labelled rows. */
  prior: number[];
  /** Semi-supervised: what labelled.json records. */
  labelled?: LabelledSubset;
}

export interface RunSetup extends RowSelection {
  out: string;
  model: EquiVAE;
  optimizer: FlatAdam;
  /** After the last completed epoch (epoch 0 for a new run). */
  state: TrainState;
  /** One entry per completed epoch (metrics.jsonl). */
  metrics: EpochMetrics[];
  /** `--ema-decay`: the average of the weights that evaluation and checkpoints use. */
  average?: WeightAverage;
  /** The command line that started the run, and those that resumed it. */
  command: string;
  resumedWith: string[];
}

/**
 * Restores (--resume) or builds the model for the selected rows (selected here unless the caller
 * already did, to report their errors early), and logs what the run is.
 */
export async function prepareRun(
  data: LabelledData,
  o: TrainOptions,
  log: (l: string) => void,
  rows = selectRows(data, o),
): Promise<RunSetup> {
  const out = resolve(o.out);
  const optimizer = new FlatAdam(o.learningRate);
  const fresh = {
    out,
    optimizer,
    state: { epoch: 0, step: 0, wallSeconds: 0 },
    metrics: [],
    resumedWith: [],
  };
  let run: RunSetup;
  if (o.resume && existsSync(out)) {
    run = { ...rows, ...fresh, ...(await restoreRun(data, rows, o, out, optimizer)) };
    log(`resuming ${out} after epoch ${run.state.epoch} of ${o.epochs}`);
  } else {
    if (o.resume) log(`--resume: ${out} does not exist yet; starting a new run`);
    else if (existsSync(out)) {
      throw new InputError(`${out} already exists; pass --resume to continue it, or choose another --out`);
    }
    run = { ...rows, ...fresh, model: newModel(data, rows.train, o), command: o.command };
  }
  if (o.emaDecay !== undefined) run.average = await averageFor(run, o.emaDecay);
  describeRun(run, data, o, log);
  return run;
}

/**
 * Which rows keep their labels. Semi-supervised: a balanced, seeded subset; the sampler never
 * draws the others. Throws an InputError for a budget that cannot be met or a class with fewer
 * than 2 labelled members (the n = 1 embedding of a point needs another member of its class).
 */
export function selectRows(data: LabelledData, o: Pick<TrainOptions, "labels" | "seed">): RowSelection {
  const K = data.classNames.length;
  if (o.labels === undefined) {
    const sampler = new ComplementarySampler(data.train.labels, data.classNames);
    return {
      semi: false,
      train: data.train,
      labelledRows: [],
      labelledSet: data.train,
      unlabelledRows: null,
      sampler,
      prior: [],
    };
  }
  const labelledRows = selectLabelled(data.train.labels, K, o.labels, o.seed, data.classNames);
  const train = hideLabels(data.train, labelledRows);
  const prior = classPrior(train.labels, K);
  return {
    semi: true,
    train,
    labelledRows,
    labelledSet: subset(train, labelledRows),
    unlabelledRows: Int32Array.from(train.labels.keys()).filter((i) => train.labels[i] < 0),
    sampler: new ComplementarySampler(train.labels, data.classNames),
    prior,
    labelled: {
      budget: o.labels,
      perClass: o.labels / K,
      seed: o.seed,
      trainSize: train.n,
      rows: labelledRows,
      prior,
    },
  };
}

/** --resume of an existing run: the settings, data and labelled rows must be the checkpoint's. */
async function restoreRun(
  data: LabelledData,
  rows: RowSelection,
  o: TrainOptions,
  out: string,
  optimizer: FlatAdam,
): Promise<Pick<RunSetup, "model" | "state" | "metrics" | "command" | "resumedWith">> {
  const m = await readManifest(out);
  const prev = m.training.options as Record<string, unknown>;
  if (prev.labels !== undefined && o.labels === undefined) {
    throw new InputError(
      `--resume: ${out} is a semi-supervised run (--labels ${prev.labels}); resume it with the same --labels`,
    );
  }
  if (prev.emaDecay !== undefined && o.emaDecay === undefined) {
    throw new InputError(
      `--resume: ${out} averages its weights (--ema-decay ${prev.emaDecay}); resume it with the same --ema-decay`,
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
  if (m.dataset.name !== data.name || m.dataset.trainSize !== rows.train.n) {
    throw new InputError(
      `--resume: ${out} was trained on ${m.dataset.name} (${m.dataset.trainSize} images), not ${data.name} (${rows.train.n})`,
    );
  }
  const ck = await loadCheckpoint(out);
  if (rows.semi && JSON.stringify(ck.labelled?.rows) !== JSON.stringify(rows.labelledRows)) {
    ck.model.dispose();
    throw new InputError(`--resume: the labelled rows recorded in ${out} differ from this run's selection`);
  }
  checkResumeLikelihood(ck.model, o, out);
  await loadOptimizerState(out, optimizer);
  return {
    model: ck.model,
    state: ck.state,
    metrics: ck.metricsLines,
    command: m.training.command,
    resumedWith: [...(m.training.resumedWith ?? []), o.command],
  };
}

/**
 * The weight average of a run: it starts at the model's weights; on --resume the model holds the
 * average (weights.bin) and train-weights.bin the raw weights the optimizer continues from.
 */
async function averageFor(run: RunSetup, decay: number): Promise<WeightAverage> {
  const average = new WeightAverage(run.model.params, decay);
  if (run.state.epoch > 0) {
    const raw = await loadTrainWeights(run.out);
    if (!raw) {
      average.dispose();
      throw new InputError(
        `--resume: ${run.out} has no train-weights.bin (the raw weights of an --ema-decay run)`,
      );
    }
    average.restore(raw);
  }
  return average;
}

/** A new model for the data's image shape; standardising models take the training split's statistics. */
function newModel(data: LabelledData, train: ImageSet, o: TrainOptions): EquiVAE {
  const lk = resolveLikelihood(train.channels, data.name, o);
  const cfg = defaultConfig({
    height: train.height,
    width: train.width,
    channels: train.channels,
    numClasses: data.classNames.length,
    dv: o.dv,
    dz: o.dz,
    hidden: o.hidden,
    filters: o.filters,
    classifier: o.labels !== undefined,
    ...lk,
    standardise: lk.standardise !== "off",
  });
  const model = new EquiVAE(cfg, o.seed);
  // Statistics of the training split (all of it, labelled or not; never validation/test).
  if (lk.standardise !== "off") model.setStandardisation(computeStandardisation(train, lk.standardise));
  return model;
}

function describeRun(run: RunSetup, data: LabelledData, o: TrainOptions, log: (l: string) => void): void {
  const cfg = run.model.config;
  const parts = Object.entries(run.model.parameterBreakdown())
    .map(([k, v]) => `${k} ${v.toLocaleString("en")}`)
    .join(", ");
  log(
    `model: ${run.model.parameterCount.toLocaleString("en")} parameters (${parts}); ` +
      `dv=${cfg.dv} dz=${cfg.dz} H=${cfg.hidden} filters=${cfg.filters.join(",")} likelihood=${cfg.likelihood}` +
      (cfg.likelihood === "gaussian" ? ` (scale ${cfg.gaussianScale ?? "learned"})` : "") +
      (cfg.standardise ? `, inputs standardised per ${run.model.standardisation?.mode ?? "pixel"}` : ""),
  );
  log(`data: ${data.name} train ${run.train.n}, validation ${data.validation.n} (${data.source})`);
  if (run.semi) {
    const K = data.classNames.length;
    log(
      `semi-supervised: ${run.labelledRows.length} labelled rows (${o.labels! / K} per class, seed ${o.seed}), ` +
        `${run.train.n - run.labelledRows.length} unlabelled`,
    );
  }
}
