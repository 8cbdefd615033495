/**
 * `equivae eval`'s work, without the printing: reads a checkpoint and a split of its dataset, checks
 * that they fit, measures the classifiers' errors (evaluate.ts) and the z activity, writes eval.json
 * and, when asked, records the result in the checkpoint's manifest. Cheap checks come first: TF.js
 * and the backend load only once the checkpoint and the data are known to be usable.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { readManifest, recordEvaluation, type Manifest, type ZActivity } from "../checkpoint/index.js";
import { range, subset, type ImageSet, type LabelledData } from "../data/dataset.js";
import { DATASET_NAMES, loadDataset, requestFor } from "../data/load.js";
import { InputError } from "../util/errors.js";
import type { EvalResult } from "./evaluate.js";

export const EVAL_SPLITS = ["test", "validation", "train"] as const;
export type EvalSplit = (typeof EVAL_SPLITS)[number];

/**
 * A semi-supervised checkpoint's classifiers train on its labelled rows only (e.g. 100): 5 epochs
 * would be ~20 steps, a benchmark far from trained (measured: 23% test error after 200 epochs).
 */
export const DEFAULT_EPOCHS = {
  supervised: { vClassifier: 20, benchmark: 5 },
  semiSupervised: { vClassifier: 200, benchmark: 200 },
} as const;

export interface EvaluationOptions {
  checkpoint: string;
  split: EvalSplit;
  /** Where the dataset's files are (default: as in training). */
  dataDir?: string;
  /** Epochs of the classifier on v, 0 = skip (default: DEFAULT_EPOCHS by the checkpoint's kind). */
  vClassifierEpochs?: number;
  /** Epochs of the benchmark classifier, 0 = skip (default: DEFAULT_EPOCHS). */
  benchmarkEpochs?: number;
  /** Training images for the classifiers (default: as the checkpoint; not for semi-supervised ones). */
  trainSize?: number;
  /** Evaluate only the first N images of the split. */
  limit?: number;
  /** Also the nearest-centroid error of sets of these sizes (each row plus n - 1 of its class). */
  setSizes?: number[];
  seed: number;
  /** TF.js backend (default: the fastest available). */
  backend?: string;
  /** Where to write the result (default: <checkpoint>/eval.json). */
  out?: string;
  /** Also record the result in the manifest, with this command line. */
  recordCommand?: string;
  /** Progress lines (the backend, each classifier's epochs); default console.log. */
  log?: (line: string) => void;
}

/** What eval.json holds. */
export interface EvaluationFile extends EvalResult {
  checkpoint: string;
  dataset: string;
  backend: string;
  time: string;
  zActivity?: ZActivity;
}

export interface Evaluation {
  result: EvaluationFile;
  /** Where the result was written. */
  out: string;
  /** Rows the classifiers trained on for a semi-supervised checkpoint (undefined: the training split). */
  labelledRows?: number;
  /** The model's size of z. */
  dz: number;
  /** Whether the result went into the manifest too. */
  recorded: boolean;
}

function classifierEpochs(m: Manifest, o: EvaluationOptions) {
  const semi = m.model.classifier === true;
  if (semi && o.trainSize !== undefined)
    throw new InputError(
      "eval: --train-size does not apply to a semi-supervised checkpoint (its classifiers train on its labelled rows)",
    );
  const d = semi ? DEFAULT_EPOCHS.semiSupervised : DEFAULT_EPOCHS.supervised;
  return {
    vClassifierEpochs: o.vClassifierEpochs ?? d.vClassifier,
    benchmarkEpochs: o.benchmarkEpochs ?? d.benchmark,
  };
}

/** The checkpoint's dataset with the split to evaluate, checked against the model's image shape. */
async function loadEvalData(dir: string, m: Manifest, o: EvaluationOptions): Promise<LabelledData> {
  const name = m.dataset.name;
  if (!(DATASET_NAMES as readonly string[]).includes(name))
    throw new InputError(`eval: unsupported dataset '${name}' in ${dir}`);
  const { data } = await loadDataset({
    ...requestFor(m.dataset, o.dataDir),
    trainSize: o.trainSize ?? m.dataset.trainSize,
    withTest: o.split === "test",
  });
  const t = data.train;
  if (t.height !== m.model.height || t.width !== m.model.width || t.channels !== m.model.channels) {
    throw new InputError(
      `eval: the data's images are ${t.height}x${t.width}x${t.channels}, the model's ` +
        `${m.model.height}x${m.model.width}x${m.model.channels}`,
    );
  }
  return data;
}

function evalSet(data: LabelledData, split: EvalSplit, limit: number | undefined): ImageSet {
  const set = split === "test" ? data.test! : split === "train" ? data.train : data.validation;
  return limit === undefined ? set : subset(set, range(0, Math.min(limit, set.n)));
}

/** Evaluates a checkpoint on a split and writes the result (see the file's comment). */
export async function runEvaluation(o: EvaluationOptions): Promise<Evaluation> {
  const log = o.log ?? ((l: string) => console.log(l));
  if (o.split === "train" && o.recordCommand !== undefined)
    throw new InputError(
      "eval: --record keeps test or validation results (GET /v1/models shows them); the training split's " +
        "error says how well v fits, not how it generalises",
    );
  const dir = resolve(o.checkpoint);
  const m = await readManifest(dir);
  const epochs = classifierEpochs(m, o);
  const data = await loadEvalData(dir, m, o);
  const set = evalSet(data, o.split, o.limit);

  const { initBackend, describeBackend } = await import("../backend/index.js");
  const backend = await initBackend(o.backend);
  log(describeBackend(backend));
  const { loadCheckpoint } = await import("./checkpoint.js");
  const { evaluate } = await import("./evaluate.js");
  const { measureZActivity } = await import("./z-activity.js");
  const ck = await loadCheckpoint(dir);
  try {
    const r = await evaluate(ck.model, ck.centroids, data.train, set, o.split, {
      ...epochs,
      seed: o.seed,
      log,
      ...(o.setSizes ? { setSizes: o.setSizes } : {}),
      ...(ck.labelled ? { labelled: ck.labelled } : {}),
    });
    // Always on the whole validation split, whatever the split and limit, as train records it.
    const zActivity =
      data.validation.n > 0
        ? measureZActivity(ck.model, data.validation, { split: "validation" })
        : undefined;
    const result: EvaluationFile = {
      checkpoint: dir,
      dataset: m.dataset.name,
      backend: backend.name,
      time: new Date().toISOString(),
      ...r,
      ...(zActivity ? { zActivity } : {}),
    };
    const out = resolve(o.out ?? join(dir, "eval.json"));
    writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
    if (o.recordCommand !== undefined) await record(dir, result, o.recordCommand);
    return {
      result,
      out,
      labelledRows: ck.labelled?.rows.length,
      dz: m.model.dz,
      recorded: o.recordCommand !== undefined,
    };
  } finally {
    ck.model.dispose();
  }
}

/** The result into the manifest (evaluation, zActivity); the checkpoint's files are not touched. */
async function record(dir: string, r: EvaluationFile, command: string): Promise<void> {
  const { split, n, centroidError, vClassifierError, benchmarkError, posteriorError, backend, time } = r;
  await recordEvaluation(
    dir,
    { command, split, n, centroidError, vClassifierError, benchmarkError, posteriorError, backend, time },
    r.zActivity,
  );
}
