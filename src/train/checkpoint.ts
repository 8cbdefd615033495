/**
 * Saving and loading a checkpoint's weights and optimizer state: the part of the checkpoint format
 * that needs TF.js. The format itself and its TF.js-free readers are in src/checkpoint.
 */
import * as tf from "@tensorflow/tfjs";
import { createHash } from "node:crypto";
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
  type DeriveFiles,
  type EpochMetrics,
  type ExportManifest,
  type LabelledSubset,
  type Manifest,
  type ModelSnapshot,
  type TrainState,
  type WeightValue,
} from "../checkpoint/index.js";
import { InputError } from "../util/errors.js";
import { replaceDir, writeFileSynced } from "../util/fsx.js";
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
  /** Runs with --ema-decay: the raw weights (train-weights.bin), when the model holds their average. */
  trainWeights?: tf.NamedTensorMap;
}

/**
 * Writes a complete checkpoint into a temporary sibling directory, then swaps it into `dir`.
 * `derive` (given by the command layer: the ONNX export) makes more files from the weights in
 * memory; they are written and listed in the one manifest with the rest, so readers never see a
 * checkpoint without them and nothing is read back from disk.
 */
export async function saveCheckpoint(
  dir: string,
  c: CheckpointContents,
  derive?: DeriveFiles,
): Promise<void> {
  dir = resolve(dir);
  await fsp.mkdir(dirname(dir), { recursive: true });
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  await fsp.rm(tmp, { recursive: true, force: true });
  await fsp.mkdir(tmp);
  const files: Manifest["files"] = {};
  /** Writes one file of the checkpoint and records its size and sha256 from the bytes in hand. */
  const put = async (name: string, data: string | Uint8Array) => {
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    await writeFileSynced(join(tmp, name), bytes);
    files[name] = { sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.byteLength };
  };
  try {
    const named: tf.NamedTensorMap = {};
    for (const [k, v] of c.model.params.vars) named[k] = v;
    const w = await tf.io.encodeWeights(named);
    await put(FILES.weights, new Uint8Array(w.data));
    await put(FILES.weightsSpec, JSON.stringify([{ paths: [FILES.weights], weights: w.specs }], null, 1));
    if (c.trainWeights) {
      const t = await tf.io.encodeWeights(c.trainWeights);
      await put(FILES.trainWeights, new Uint8Array(t.data));
      await put(
        FILES.trainWeightsSpec,
        JSON.stringify([{ paths: [FILES.trainWeights], weights: t.specs }], null, 1),
      );
    }
    if (c.optimizer) {
      const ow = await c.optimizer.getWeights();
      // Adam's slots are positional (same order as the model's variables); store plain names.
      const clean = ow.map((t, i) => ({ name: `${i}:${stripInstance(t.name)}`, tensor: t.tensor }));
      const o = await tf.io.encodeWeights(clean);
      await put(FILES.optimizer, new Uint8Array(o.data));
      await put(FILES.optimizerSpec, JSON.stringify(o.specs, null, 1));
    }
    await put(FILES.centroids, JSON.stringify(c.centroids));
    await put(FILES.state, JSON.stringify(c.state, null, 2));
    if (c.labelled) await put(FILES.labelled, JSON.stringify(c.labelled));
    if (c.model.standardisation) await put(FILES.standardisation, JSON.stringify(c.model.standardisation));
    await put(FILES.metrics, c.metricsLines.map((m) => JSON.stringify(m) + "\n").join(""));
    const derived = derive
      ? await derive(snapshotOf(c.model, w.data, files[FILES.weights].sha256))
      : undefined;
    for (const [name, bytes] of Object.entries(derived?.files ?? {})) await put(name, bytes);
    const manifest: ExportManifest = {
      format: CHECKPOINT_FORMAT,
      formatVersion: CHECKPOINT_VERSION,
      createdAt: new Date().toISOString(),
      ...c.manifest,
      files: Object.fromEntries(Object.entries(files).sort(([x], [y]) => x.localeCompare(y))),
      ...(derived?.onnx ? { onnx: derived.onnx } : {}),
    };
    await writeFileSynced(join(tmp, FILES.manifest), JSON.stringify(manifest, null, 2) + "\n");
    await replaceDir(tmp, dir);
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** The model's weights as float32 values, from the bytes just encoded for weights.bin. */
function snapshotOf(model: EquiVAE, weightsBin: ArrayBuffer, weightsSha256: string): ModelSnapshot {
  const weights = new Map<string, WeightValue>();
  let offset = 0;
  for (const [name, v] of model.params.vars) {
    weights.set(name, { shape: v.shape, data: new Float32Array(weightsBin, offset, v.size) });
    offset += v.size * 4;
  }
  const std = model.standardisation;
  return { config: model.config, weights, ...(std ? { standardisation: std } : {}), weightsSha256 };
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

/** An --ema-decay run's raw weights (train-weights.bin), or undefined when the checkpoint has none. */
export async function loadTrainWeights(dir: string): Promise<tf.NamedTensorMap | undefined> {
  if (!existsSync(join(dir, FILES.trainWeights))) return undefined;
  return readWeights(resolve(dir), FILES.trainWeightsSpec, FILES.trainWeights, true);
}

/** Restores Adam's state saved next to the weights (for --resume). */
export async function loadOptimizerState(dir: string, optimizer: tf.Optimizer): Promise<void> {
  const values = await readWeights(resolve(dir), FILES.optimizerSpec, FILES.optimizer, false);
  const list = Object.entries(values).map(([name, tensor]) => ({ name: name.replace(/^\d+:/, ""), tensor }));
  await optimizer.setWeights(list);
  tf.dispose(list.map((l) => l.tensor));
}
