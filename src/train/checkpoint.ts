import * as tf from "@tensorflow/tfjs";
import { existsSync, promises as fsp } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { UserError } from "../util/errors.js";
import { recoverDir, replaceDir, sha256File, writeFileSynced } from "../util/fsx.js";
import type { ModelConfig } from "../model/config.js";
import { validateConfig } from "../model/config.js";
import { EquiVAE } from "../model/equivae.js";
import { fromFile, type StandardisationFile } from "../model/standardisation.js";

export const CHECKPOINT_FORMAT = "equivae-checkpoint";
export const CHECKPOINT_VERSION = 1;

export const FILES = {
  manifest: "manifest.json",
  weightsSpec: "weights.json",
  weights: "weights.bin",
  optimizerSpec: "optimizer.json",
  optimizer: "optimizer.bin",
  centroids: "centroids.json",
  state: "train-state.json",
  metrics: "metrics.jsonl",
  /** Semi-supervised runs only: the labelled subset (see LabelledSubset). */
  labelled: "labelled.json",
  /** Models with config.standardise: per-pixel mean and std of the training split. */
  standardisation: "standardisation.json",
} as const;

/**
 * The labelled rows of a semi-supervised run (`train --labels N`): indices into the training split
 * as loaded (after --train-size), chosen with the run's seed, `perClass` of each class. All other
 * training rows were used unlabelled (labels hidden).
 */
export interface LabelledSubset {
  budget: number;
  perClass: number;
  seed: number;
  trainSize: number;
  /** Sorted row indices of the labelled training rows. */
  rows: number[];
  /** p(y) used in U(x): the class frequencies of the labelled rows. */
  prior: number[];
}

/** One line of metrics.jsonl. */
export interface EpochMetrics {
  epoch: number;
  /** Training averages over the epoch (per example, nats). */
  elbo: number;
  recon: number;
  kl: number;
  /** Nearest-centroid error on the validation split (fraction), centroids from the training split. */
  valCentroidError: number;
  /** Semi-supervised runs: q(y | x)'s error on the validation split (dropout off). */
  valClassifierError?: number;
  /** Semi-supervised runs: mean U(x) over the unlabelled examples, and mean -log q(y | x) over the labelled. */
  unlabelledU?: number;
  classificationLoss?: number;
  batchSize: number;
  imgPerSec: number;
  epochSeconds: number;
  backend: string;
  time: string;
}

export interface DatasetInfo {
  name: string;
  source: string;
  classNames: string[];
  trainSize: number;
  valSize: number;
  /** How pixels become the model's input ("pixels / 255", or with per-pixel standardisation). */
  preprocessing: string;
  /**
   * Image folders: the loader settings that reproduce the splits (eval, report). Absent for the
   * fixed datasets (mnist, fashion-mnist, svhn).
   */
  loader?: { imageSize: string; channels: 1 | 3; validationFraction: number; splitSeed: number };
}

export interface TrainingInfo {
  /** The command line that produced this checkpoint (the first run, and resumes). */
  command: string;
  resumedWith: string[];
  options: Record<string, unknown>;
  epochsCompleted: number;
  epochsPlanned: number;
  backend: string;
  wallSeconds: number;
}

export interface Manifest {
  format: typeof CHECKPOINT_FORMAT;
  formatVersion: number;
  createdAt: string;
  model: ModelConfig;
  parameterCount: number;
  parameters: Record<string, number>;
  dataset: DatasetInfo;
  training: TrainingInfo;
  /** The last completed epoch's metrics. */
  metrics: EpochMetrics | null;
  /** A held-out evaluation recorded by `equivae eval --record` (absent until then). */
  evaluation?: RecordedEvaluation;
  /** sha256 and size of every other file in the directory. */
  files: Record<string, { sha256: string; bytes: number }>;
}

/** Held-out error rates (fractions) as `equivae eval` measures them; null = not measured. */
export interface EvalErrors {
  split: string;
  n: number;
  centroidError: number;
  vClassifierError: number | null;
  benchmarkError: number | null;
  /** q(y | x)'s error (semi-supervised checkpoints; null otherwise). */
  posteriorError: number | null;
}

/** `equivae eval --record`'s result, kept in manifest.json. */
export interface RecordedEvaluation extends EvalErrors {
  command: string;
  backend: string;
  time: string;
}

export interface Centroids {
  classNames: string[];
  dv: number;
  /** [K][dv] */
  centroids: number[][];
  /** Training rows per class that went into each centroid. */
  counts: number[];
}

/** Resume state: the epoch loop restarts at `epoch + 1` with per-epoch seeds, so this is all it needs. */
export interface TrainState {
  epoch: number;
  step: number;
  wallSeconds: number;
}

export interface CheckpointContents {
  manifest: Omit<Manifest, "files" | "format" | "formatVersion" | "createdAt">;
  model: EquiVAE;
  optimizer?: tf.Optimizer;
  centroids: Centroids;
  state: TrainState;
  metricsLines: EpochMetrics[];
  /** Semi-supervised runs: written to labelled.json. */
  labelled?: LabelledSubset;
}

/**
 * Writes a complete checkpoint into a temporary sibling directory, then swaps it into `dir`.
 * `beforeSwap` may add files to the finished temporary directory (the ONNX export), so readers
 * never see a checkpoint without them.
 */
export async function saveCheckpoint(
  dir: string,
  c: CheckpointContents,
  beforeSwap?: (tmpDir: string) => Promise<void>,
): Promise<void> {
  dir = resolve(dir);
  await fsp.mkdir(dirname(dir), { recursive: true });
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  await fsp.rm(tmp, { recursive: true, force: true });
  await fsp.mkdir(tmp);
  try {
    const named: tf.NamedTensorMap = {};
    for (const [k, v] of c.model.params.vars) named[k] = v;
    const w = await tf.io.encodeWeights(named);
    await writeFileSynced(join(tmp, FILES.weights), new Uint8Array(w.data));
    await writeFileSynced(
      join(tmp, FILES.weightsSpec),
      JSON.stringify([{ paths: [FILES.weights], weights: w.specs }], null, 1),
    );
    if (c.optimizer) {
      const ow = await c.optimizer.getWeights();
      // Adam's slots are positional (same order as the model's variables); store plain names.
      const clean = ow.map((t, i) => ({ name: `${i}:${stripInstance(t.name)}`, tensor: t.tensor }));
      const o = await tf.io.encodeWeights(clean);
      await writeFileSynced(join(tmp, FILES.optimizer), new Uint8Array(o.data));
      await writeFileSynced(join(tmp, FILES.optimizerSpec), JSON.stringify(o.specs, null, 1));
    }
    await writeFileSynced(join(tmp, FILES.centroids), JSON.stringify(c.centroids));
    await writeFileSynced(join(tmp, FILES.state), JSON.stringify(c.state, null, 2));
    if (c.labelled) await writeFileSynced(join(tmp, FILES.labelled), JSON.stringify(c.labelled));
    if (c.model.standardisation) {
      await writeFileSynced(join(tmp, FILES.standardisation), JSON.stringify(c.model.standardisation));
    }
    await writeFileSynced(
      join(tmp, FILES.metrics),
      c.metricsLines.map((m) => JSON.stringify(m) + "\n").join(""),
    );
    const files: Manifest["files"] = {};
    for (const name of (await fsp.readdir(tmp)).sort()) {
      const st = await fsp.stat(join(tmp, name));
      files[name] = { sha256: await sha256File(join(tmp, name)), bytes: st.size };
    }
    const manifest: Manifest = {
      format: CHECKPOINT_FORMAT,
      formatVersion: CHECKPOINT_VERSION,
      createdAt: new Date().toISOString(),
      ...c.manifest,
      files,
    };
    await writeFileSynced(join(tmp, FILES.manifest), JSON.stringify(manifest, null, 2) + "\n");
    if (beforeSwap) await beforeSwap(tmp);
    await replaceDir(tmp, dir);
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

function stripInstance(name: string): string {
  return name.replace(/^m\d+\//, "");
}

/** Reads and checks manifest.json and the sha256 of every file it lists. */
export async function readManifest(dir: string, verify = true): Promise<Manifest> {
  dir = resolve(dir);
  await recoverDir(dir);
  const mpath = join(dir, FILES.manifest);
  if (!existsSync(dir)) throw new UserError(`checkpoint directory not found: ${dir}`);
  if (!existsSync(mpath)) throw new UserError(`not a checkpoint: ${mpath} is missing`);
  let m: Manifest;
  try {
    m = JSON.parse(await fsp.readFile(mpath, "utf8")) as Manifest;
  } catch (e) {
    throw new UserError(`${mpath}: not valid JSON (${(e as Error).message})`);
  }
  if (m.format !== CHECKPOINT_FORMAT) throw new UserError(`${mpath}: not an EquiVAE checkpoint manifest`);
  if (m.formatVersion > CHECKPOINT_VERSION) {
    throw new UserError(
      `${mpath}: format version ${m.formatVersion} is newer than this program supports (${CHECKPOINT_VERSION})`,
    );
  }
  try {
    validateConfig(m.model);
  } catch (e) {
    throw new UserError(`${mpath}: invalid model config: ${(e as Error).message}`);
  }
  if (verify) {
    for (const [name, f] of Object.entries(m.files ?? {})) {
      const p = join(dir, name);
      if (!existsSync(p)) throw new UserError(`checkpoint file missing: ${p}`);
      const sha = await sha256File(p);
      if (sha !== f.sha256)
        throw new UserError(`checkpoint file corrupt: ${p} does not match its sha256 in manifest.json`);
    }
  }
  return m;
}

export interface LoadedCheckpoint {
  dir: string;
  manifest: Manifest;
  model: EquiVAE;
  centroids: Centroids;
  state: TrainState;
  metricsLines: EpochMetrics[];
  labelled?: LabelledSubset;
}

/** Loads a checkpoint (weights, centroids, state), verifying every file's sha256. */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  dir = resolve(dir);
  const manifest = await readManifest(dir);
  const model = new EquiVAE(manifest.model);
  try {
    const values = await readWeights(dir, FILES.weightsSpec, FILES.weights, true);
    try {
      model.params.assign(values, join(dir, FILES.weights));
    } finally {
      tf.dispose(Object.values(values));
    }
  } catch (e) {
    model.dispose();
    throw e instanceof UserError ? e : new UserError((e as Error).message);
  }
  if (manifest.model.standardise) {
    try {
      model.setStandardisation(await readStandardisation(dir, manifest));
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  const centroids = JSON.parse(await fsp.readFile(join(dir, FILES.centroids), "utf8")) as Centroids;
  const state = JSON.parse(await fsp.readFile(join(dir, FILES.state), "utf8")) as TrainState;
  const metricsText = existsSync(join(dir, FILES.metrics))
    ? await fsp.readFile(join(dir, FILES.metrics), "utf8")
    : "";
  const metricsLines = metricsText
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as EpochMetrics);
  const labelled = existsSync(join(dir, FILES.labelled))
    ? (JSON.parse(await fsp.readFile(join(dir, FILES.labelled), "utf8")) as LabelledSubset)
    : undefined;
  return { dir, manifest, model, centroids, state, metricsLines, ...(labelled ? { labelled } : {}) };
}

/** A standardising model's standardisation.json, checked against its image shape. */
export async function readStandardisation(
  dir: string,
  m: Pick<Manifest, "model">,
): Promise<StandardisationFile> {
  const p = join(dir, FILES.standardisation);
  if (!existsSync(p)) {
    throw new UserError(`checkpoint file missing: ${p} (the model standardises its inputs)`);
  }
  let f: StandardisationFile;
  try {
    f = JSON.parse(await fsp.readFile(p, "utf8")) as StandardisationFile;
  } catch (e) {
    throw new UserError(`${p}: not valid JSON (${(e as Error).message})`);
  }
  const c = m.model;
  fromFile(f, [c.height, c.width, c.channels], p);
  return f;
}

async function readWeights(
  dir: string,
  specFile: string,
  binFile: string,
  manifestForm: boolean,
): Promise<tf.NamedTensorMap> {
  const specPath = join(dir, specFile);
  const binPath = join(dir, binFile);
  let specs: tf.io.WeightsManifestEntry[];
  try {
    const j = JSON.parse(await fsp.readFile(specPath, "utf8"));
    specs = manifestForm
      ? (j as tf.io.WeightsManifestConfig)[0].weights
      : (j as tf.io.WeightsManifestEntry[]);
  } catch (e) {
    throw new UserError(`${specPath}: unreadable weight spec (${(e as Error).message})`);
  }
  const buf = await fsp.readFile(binPath);
  const expected = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * 4, 0);
  if (buf.byteLength !== expected) {
    throw new UserError(`${binPath}: holds ${buf.byteLength} bytes but its spec describes ${expected}`);
  }
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  return tf.io.decodeWeights(ab, specs);
}

/** Restores Adam's state saved next to the weights (for --resume). */
export async function loadOptimizerState(dir: string, optimizer: tf.Optimizer): Promise<void> {
  const values = await readWeights(resolve(dir), FILES.optimizerSpec, FILES.optimizer, false);
  const list = Object.entries(values).map(([name, tensor]) => ({ name: name.replace(/^\d+:/, ""), tensor }));
  await optimizer.setWeights(list);
  tf.dispose(list.map((l) => l.tensor));
}

export function centroidMatrix(c: Centroids): Float32Array {
  return Float32Array.from(c.centroids.flat());
}
