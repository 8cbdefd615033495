/**
 * Saving and loading a checkpoint's weights and optimizer state: the part of the checkpoint format
 * that needs TF.js. The format itself and its TF.js-free readers are in src/checkpoint.
 */
import * as tf from "@tensorflow/tfjs";
import { existsSync, promises as fsp } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  FILES,
  readCentroids,
  readManifest,
  readMetrics,
  readStandardisation,
  type Centroids,
  type EpochMetrics,
  type LabelledSubset,
  type Manifest,
  type TrainState,
} from "../checkpoint/index.js";
import { InputError } from "../util/errors.js";
import { replaceDir, sha256File, writeFileSynced } from "../util/fsx.js";
import { EquiVAE } from "../model/equivae.js";

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
    throw e instanceof InputError ? e : new InputError((e as Error).message);
  }
  if (manifest.model.standardise) {
    try {
      model.setStandardisation(await readStandardisation(dir, manifest));
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  const centroids = await readCentroids(dir);
  const state = JSON.parse(await fsp.readFile(join(dir, FILES.state), "utf8")) as TrainState;
  const metricsLines = await readMetrics(dir);
  const labelled = existsSync(join(dir, FILES.labelled))
    ? (JSON.parse(await fsp.readFile(join(dir, FILES.labelled), "utf8")) as LabelledSubset)
    : undefined;
  return { dir, manifest, model, centroids, state, metricsLines, ...(labelled ? { labelled } : {}) };
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
    throw new InputError(`${specPath}: unreadable weight spec (${(e as Error).message})`);
  }
  const buf = await fsp.readFile(binPath);
  const expected = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * 4, 0);
  if (buf.byteLength !== expected) {
    throw new InputError(`${binPath}: holds ${buf.byteLength} bytes but its spec describes ${expected}`);
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
