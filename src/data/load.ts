/**
 * One entry point for every dataset the CLI trains and evaluates on: mnist, fashion-mnist (IDX),
 * svhn (MATLAB v5 .mat) and folder (root/<class>/*.png|jpg). Used by train, eval and report, so a
 * checkpoint's splits are read back the same way they were trained on.
 */
import { InputError } from "../util/errors.js";
import type { DatasetInfo } from "../checkpoint/index.js";
import type { LabelledData } from "./dataset.js";
import { DEFAULT_VALIDATION_FRACTION, loadImageFolder, parseImageSize, type ImageSize } from "./folder.js";

export const DATASET_NAMES = ["mnist", "fashion-mnist", "svhn", "folder"] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** The seed of an image folder's validation split (fixed, so runs with other --seed share splits). */
export const FOLDER_SPLIT_SEED = 1;

export interface DatasetRequest {
  name: string;
  dataDir?: string;
  trainSize?: number;
  valSize?: number;
  withTest?: boolean;
  /** Image folders: the common size (default: the first image's). */
  imageSize?: ImageSize;
  /** Image folders: 1 or 3 (default: 3 unless every image is grey). */
  channels?: 1 | 3;
  /** Image folders: fraction of each class held out for validation (default 0.1). */
  validationFraction?: number;
  /** Receives warnings (skipped images). */
  warn?: (m: string) => void;
}

export function checkDatasetName(name: string): DatasetName {
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new InputError(`unknown dataset '${name}' (choose ${DATASET_NAMES.join(", ")})`);
  }
  return name as DatasetName;
}

export interface LoadedDataset {
  data: LabelledData;
  /** What the manifest records to read the same splits again (image folders). */
  loader?: DatasetInfo["loader"];
}

export async function loadDataset(r: DatasetRequest): Promise<LoadedDataset> {
  const name = checkDatasetName(r.name);
  const common = { trainSize: r.trainSize, valSize: r.valSize, withTest: r.withTest };
  const folderOnly =
    r.imageSize !== undefined || r.channels !== undefined || r.validationFraction !== undefined;
  if (name !== "folder" && folderOnly) {
    throw new InputError(`--image-size, --channels and --val-fraction apply only to --dataset folder`);
  }
  if (name === "mnist" || name === "fashion-mnist") {
    const { loadIdxDataset } = await import("./mnist.js");
    return { data: loadIdxDataset(name, { dataDir: r.dataDir, ...common }) };
  }
  if (name === "svhn") {
    const { loadSvhn } = await import("./svhn.js");
    return { data: loadSvhn({ dataDir: r.dataDir, ...common }) };
  }
  if (r.dataDir === undefined) {
    throw new InputError("--dataset folder needs --data-dir ROOT (ROOT/<class name>/*.png|jpg)");
  }
  const validationFraction = r.validationFraction ?? DEFAULT_VALIDATION_FRACTION;
  const data = await loadImageFolder({
    root: r.dataDir,
    size: r.imageSize,
    channels: r.channels,
    validationFraction,
    seed: FOLDER_SPLIT_SEED,
    ...common,
    ...(r.warn ? { warn: r.warn } : {}),
  });
  const t = data.train;
  return {
    data,
    loader: {
      imageSize: `${t.height}x${t.width}`,
      channels: t.channels as 1 | 3,
      validationFraction,
      splitSeed: FOLDER_SPLIT_SEED,
    },
  };
}

/** The request that reads a checkpoint's dataset again (eval, report); dataDir overrides its source. */
export function requestFor(ds: DatasetInfo, dataDir: string | undefined): DatasetRequest {
  const dir = dataDir ?? (process.env.EQUIVAE_DATA_DIR && ds.name !== "folder" ? undefined : ds.source);
  const l = ds.loader;
  return {
    name: ds.name,
    dataDir: dir,
    ...(ds.name === "folder" && l
      ? {
          imageSize: parseImageSize(l.imageSize),
          channels: l.channels,
          validationFraction: l.validationFraction,
        }
      : {}),
  };
}
