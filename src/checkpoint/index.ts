/**
 * The checkpoint directory's format and its TF.js-free readers and writers: everything serving,
 * `embed`, `export` and the reports need. Saving and loading weights (TF.js) is src/train/checkpoint.ts.
 */
export {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  FILES,
  type Centroids,
  type DatasetInfo,
  type EpochMetrics,
  type EvalErrors,
  type ExportManifest,
  type LabelledSubset,
  type Manifest,
  type OnnxGraphInfo,
  type OnnxSection,
  type RecordedEvaluation,
  type TensorSpec,
  type TrainingInfo,
  type TrainState,
  type ZActivity,
} from "./format.js";
export { centroidDistances, centroidMatrix, readCentroids } from "./centroids.js";
export { readManifest, recordEvaluation, recordOnnxExport } from "./manifest.js";
export { readMetrics } from "./metrics.js";
export type { DeriveFiles, DerivedFiles, ModelSnapshot, WeightValue } from "./snapshot.js";
export { validateConfig, type GaussianScale, type LikelihoodName, type ModelConfig } from "./model-config.js";
export {
  fromFile,
  readStandardisation,
  type Standardisation,
  type StandardisationFile,
  type StandardiseMode,
} from "./standardisation.js";
