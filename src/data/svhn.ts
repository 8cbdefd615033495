/**
 * SVHN (Street View House Numbers, Netzer et al. 2011), "format 2": 32x32 colour crops of single
 * digits, in MATLAB v5 files from http://ufldl.stanford.edu/housenumbers/ :
 * `train_32x32.mat` (73,257 images), `test_32x32.mat` (26,032) and `extra_32x32.mat` (531,131; not used).
 *
 * Each file holds X, a uint8 array 32x32x3xN (column-major: X(row, col, channel, n)), and y, a
 * double array Nx1 of labels 1..10 where 10 is the digit 0. Here X becomes NHWC uint8 rows and
 * y = 10 becomes label 0, so label k is the digit k and the class names are "0".."9".
 *
 * Splits (as in the EquiVAE paper): 70,000 train / 3,257 validation / 26,032 test. The validation
 * images are the LAST 3,257 of train_32x32.mat (indices 70,000..73,256), the training images the
 * first 70,000.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { InputError } from "../util/errors.js";
import type { ImageSet, LabelledData } from "./dataset.js";
import { getArray, readMatFile, type MatArray } from "./mat.js";
import { DATA_DIR_ENV, type LoadOptions } from "./mnist.js";

export const SVHN_FILES = {
  train: "train_32x32.mat",
  test: "test_32x32.mat",
  extra: "extra_32x32.mat",
} as const;
export const SVHN_URL = "http://ufldl.stanford.edu/housenumbers/";
export const SVHN_CLASS_NAMES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
/** The paper's validation split: the last 3,257 of the 73,257 training images. */
export const SVHN_VALIDATION_SIZE = 3257;
export const SVHN_SIDE = 32;

export interface SvhnOptions extends LoadOptions {
  /** How many of the LAST training images are the validation split (default 3,257). */
  validationSize?: number;
}

/** --data-dir, then $EQUIVAE_DATA_DIR (there is no default location for SVHN). */
export function resolveSvhnDir(flag?: string): string {
  if (flag) return flag;
  const env = process.env[DATA_DIR_ENV];
  if (env) return env;
  throw new InputError(
    `SVHN: no data directory (pass --data-dir DIR or set ${DATA_DIR_ENV}; the directory needs ` +
      `${SVHN_FILES.train} and ${SVHN_FILES.test} from ${SVHN_URL})`,
  );
}

/**
 * Column-major [H, W, C, N] array -> NHWC rows. X(r, c, ch, n) is at r + H*(c + W*(ch + C*n))
 * in MATLAB's data; it goes to ((n*H + r)*W + c)*C + ch. Values must be integers 0..255.
 */
export function matImagesToNhwc(x: MatArray, file: string): Omit<ImageSet, "labels"> {
  const dims = x.dims.length === 3 ? [...x.dims, 1] : x.dims; // MATLAB drops a trailing N = 1
  if (dims.length !== 4 || (dims[2] !== 1 && dims[2] !== 3)) {
    throw new InputError(
      `${file}: '${x.name}' should be an image array H x W x C x N (C = 1 or 3), got ${x.dims.join("x")}`,
    );
  }
  const [h, w, c, n] = dims;
  const src = x.data;
  const out = new Uint8Array(h * w * c * n);
  if (x.className !== "uint8") {
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (!(v >= 0 && v <= 255 && Number.isInteger(v))) {
        throw new InputError(
          `${file}: '${x.name}' (${x.className}) has the value ${v} at linear index ${i}; pixels must be integers 0..255`,
        );
      }
    }
  }
  const plane = h * w * c;
  let s = 0;
  for (let k = 0; k < n; k++) {
    const base = k * plane;
    for (let ch = 0; ch < c; ch++)
      for (let col = 0; col < w; col++)
        for (let row = 0; row < h; row++) out[base + (row * w + col) * c + ch] = src[s++];
  }
  return { pixels: out, n, height: h, width: w, channels: c };
}

/** Reads one SVHN .mat file (X and y) as an ImageSet with labels 0..9. */
export function readSvhnFile(path: string): ImageSet {
  if (!existsSync(path)) {
    throw new InputError(`missing data file: ${path} (SVHN's format-2 .mat files are at ${SVHN_URL})`);
  }
  const mat = readMatFile(path, { only: ["X", "y"] });
  const x = getArray(mat, "X");
  const y = getArray(mat, "y");
  if (x.dims.length < 3 || x.dims[0] !== SVHN_SIDE || x.dims[1] !== SVHN_SIDE || x.dims[2] !== 3) {
    throw new InputError(
      `${path}: X should be 32x32x3xN (SVHN's 32x32 colour images), got ${x.dims.join("x")}` +
        (x.dims[x.dims.length - 1] === SVHN_SIDE ? " (saved in row-major order?)" : ""),
    );
  }
  const images = matImagesToNhwc(x, path);
  if (y.dims.filter((d) => d !== 1).length > 1) {
    throw new InputError(`${path}: y should be an N x 1 label vector, got ${y.dims.join("x")}`);
  }
  if (y.data.length !== images.n) {
    throw new InputError(
      `${path}: image/label count mismatch: X has ${images.n} images but y has ${y.data.length} labels`,
    );
  }
  const labels = new Int32Array(images.n);
  for (let i = 0; i < images.n; i++) {
    const v = y.data[i];
    if (!(Number.isInteger(v) && v >= 1 && v <= 10)) {
      throw new InputError(
        `${path}: label ${v} at index ${i} is outside 1..10 (SVHN's y uses 10 for the digit 0)`,
      );
    }
    labels[i] = v === 10 ? 0 : v;
  }
  return { ...images, labels };
}

/** Rows [a, b) of a set, as views of the same buffers (no copy). */
function rows(s: ImageSet, a: number, b: number): ImageSet {
  const d = s.height * s.width * s.channels;
  return { ...s, pixels: s.pixels.subarray(a * d, b * d), labels: s.labels.subarray(a, b), n: b - a };
}

/**
 * SVHN with the paper's 70,000 / 3,257 / 26,032 split (validation = the last `validationSize` training
 * images). The split sets are views of one buffer. trainSize / valSize keep the first N of a split.
 */
export function loadSvhn(opts: SvhnOptions = {}): LabelledData {
  const dir = resolveSvhnDir(opts.dataDir);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new InputError(`data directory not found: ${dir}`);
  const valN = opts.validationSize ?? SVHN_VALIDATION_SIZE;
  if (!Number.isInteger(valN) || valN < 0) throw new InputError(`SVHN: bad validation size ${valN}`);
  const trainPath = join(dir, SVHN_FILES.train);
  // Check both files up front so a missing test file is reported before minutes of decoding.
  const testPath = join(dir, SVHN_FILES.test);
  for (const p of opts.withTest ? [trainPath, testPath] : [trainPath]) {
    if (!existsSync(p)) {
      throw new InputError(
        `missing data file: ${p} (download SVHN's format-2 ${SVHN_FILES.train} and ${SVHN_FILES.test} from ${SVHN_URL})`,
      );
    }
  }
  const all = readSvhnFile(trainPath);
  if (all.n <= valN) {
    throw new InputError(`${trainPath}: ${all.n} images; need more than the ${valN} validation images`);
  }
  const cut = all.n - valN;
  let train = rows(all, 0, cut);
  let validation = rows(all, cut, all.n);
  if (opts.trainSize !== undefined) train = rows(train, 0, Math.min(opts.trainSize, train.n));
  if (opts.valSize !== undefined) validation = rows(validation, 0, Math.min(opts.valSize, validation.n));
  const test = opts.withTest ? readSvhnFile(testPath) : undefined;
  return { name: "svhn", source: dir, classNames: [...SVHN_CLASS_NAMES], train, validation, test };
}
