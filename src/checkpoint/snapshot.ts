/**
 * A model's weights in memory, without TF.js: what the checkpoint writer (src/train) hands to the
 * hook that derives files from the weights (the ONNX export, given by the command layer), so that
 * nothing reads a checkpoint back from disk to export it.
 */
import type { OnnxSection } from "./format.js";
import type { ModelConfig } from "./model-config.js";
import type { StandardisationFile } from "./standardisation.js";

/** One weight's float32 values and shape, named as in weights.json. */
export interface WeightValue {
  shape: number[];
  data: Float32Array;
}

export interface ModelSnapshot {
  config: ModelConfig;
  /** Every weight, in weights.json's order. */
  weights: Map<string, WeightValue>;
  /** Standardising models: the statistics written to standardisation.json. */
  standardisation?: StandardisationFile;
  /** sha256 of weights.bin: files derived from the weights record which weights they came from. */
  weightsSha256: string;
}

/** Files derived from a snapshot (name -> bytes) and the manifest section describing them. */
export interface DerivedFiles {
  files: Record<string, Uint8Array>;
  onnx?: OnnxSection;
}

/** Called by the checkpoint writer before it hashes the files and writes the manifest. */
export type DeriveFiles = (snapshot: ModelSnapshot) => Promise<DerivedFiles>;
