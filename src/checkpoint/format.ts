/**
 * The checkpoint format: file names and the JSON documents in a checkpoint directory. Nothing here
 * (or anywhere under src/checkpoint) loads TF.js, so serving and `embed` can read checkpoints
 * without it; writing weights and optimizer state (which needs TF.js) is src/train/checkpoint.ts.
 */
import type { ModelConfig } from "./model-config.js";

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
  /**
   * Runs with --ema-decay only: the raw weights the optimizer steps (weights.bin holds their moving
   * average, which evaluation, serving and the ONNX graphs use); --resume continues from these.
   */
  trainWeightsSpec: "train-weights.json",
  trainWeights: "train-weights.bin",
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
  /**
   * The same on the training split's own n = 1 embeddings (semi-supervised: the labelled rows): a
   * high one says v underfits, a low one beside a high validation error that it overfits. Absent in
   * runs made before it was logged.
   */
  trainCentroidError?: number;
  /** Semi-supervised runs: q(y | x)'s error on the validation split (dropout off). */
  valClassifierError?: number;
  /**
   * Runs with --ema-decay: the same errors for the raw weights (the ones above are the average's,
   * the weights the checkpoint holds).
   */
  valCentroidErrorRaw?: number;
  valClassifierErrorRaw?: number;
  trainCentroidErrorRaw?: number;
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
  /** Where the last run trained: gpu only on tfjs-node-gpu with a GPU TensorFlow found (absent in older checkpoints). */
  device?: "cpu" | "gpu";
  /** The package behind the backend, e.g. @tensorflow/tfjs-node-gpu (absent in older checkpoints). */
  backendPackage?: string;
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
  /** Which z dimensions the model uses, measured on the validation split by `train` and `eval --record`. */
  zActivity?: ZActivity;
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

/**
 * How much the model uses each z dimension: the mean over a split of
 * KL(q(z_d | x, v) || N(0, 1)) = 0.5 * (mu_d^2 + exp(logvar_d) - 1 - logvar_d), in nats, with v the
 * image's own n = 1 embedding v(x) (as POST /embed/equivariant uses by default). A dimension whose
 * posterior stays at the prior for every image (KL ~ 0) carries no information: the decoder ignores it.
 */
export interface ZActivity {
  split: string;
  /** Images averaged over. */
  n: number;
  /** The v given to q(z | x, v): "image" = v(x) of the image itself. */
  v: "image";
  /** [dz] mean KL per dimension, nats. */
  klPerDim: number[];
  /** A dimension is active when its mean KL is above this. */
  thresholdNats: number;
  /** Indices of the active dimensions, largest KL first. */
  activeDims: number[];
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
  /** [K][dv]; null (JSON's NaN) for a class without training rows. */
  centroids: Array<Array<number | null>>;
  /** Training rows per class that went into each centroid. */
  counts: number[];
}

/** Resume state: the epoch loop restarts at `epoch + 1` with per-epoch seeds, so this is all it needs. */
export interface TrainState {
  epoch: number;
  step: number;
  wallSeconds: number;
}

/** A graph input/output: name, shape (a string = a dynamic dimension) and element type. */
export interface TensorSpec {
  name: string;
  shape: Array<number | string>;
  dtype: "float32";
}

export interface OnnxGraphInfo {
  file: string;
  doc: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** The manifest's `onnx` section, written by exportOnnx. */
export interface OnnxSection {
  opset: number;
  irVersion: number;
  producer: string;
  exportedAt: string;
  /** sha256 of the weights.bin the graphs were made from (stale exports are refused at load). */
  weightsSha256: string;
  /** Images are NHWC float32 in [0, 1]; dimensions given as strings are dynamic. */
  graphs: Record<string, OnnxGraphInfo>;
}

/** A checkpoint manifest that may carry ONNX graphs. */
export type ExportManifest = Manifest & { onnx?: OnnxSection };
