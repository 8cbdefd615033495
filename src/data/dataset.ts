/**
 * An in-memory labelled image set: uint8 pixels (NHWC) and integer labels.
 * Pixels stay uint8 until a batch is built, which keeps the full MNIST training set at 47 MB.
 */
export interface ImageSet {
  pixels: Uint8Array;
  labels: Int32Array;
  n: number;
  height: number;
  width: number;
  channels: number;
}

export interface LabelledData {
  name: string;
  /** Where the files came from (a directory), for the manifest. */
  source: string;
  classNames: string[];
  train: ImageSet;
  validation: ImageSet;
  test?: ImageSet;
}

export function imageSize(s: ImageSet): number {
  return s.height * s.width * s.channels;
}

/** Row indices of each class 0..k-1, in order; rows labelled outside 0..k-1 (unlabelled: -1) are left out. */
export function rowsByClass(labels: ArrayLike<number>, k: number): number[][] {
  const by: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0; i < labels.length; i++) if (labels[i] >= 0 && labels[i] < k) by[labels[i]].push(i);
  return by;
}

/** A new ImageSet holding the given rows (copies). */
export function subset(s: ImageSet, idx: ArrayLike<number>): ImageSet {
  const d = imageSize(s);
  const pixels = new Uint8Array(idx.length * d);
  const labels = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const j = idx[i];
    pixels.set(s.pixels.subarray(j * d, (j + 1) * d), i * d);
    labels[i] = s.labels[j];
  }
  return { ...s, pixels, labels, n: idx.length };
}

export function range(a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i < b; i++) out.push(i);
  return out;
}

/** Float32 batch in [0,1] (NHWC, flattened) for the given rows. */
export function batchPixels(s: ImageSet, idx: ArrayLike<number>): Float32Array {
  const d = imageSize(s);
  const out = new Float32Array(idx.length * d);
  for (let i = 0; i < idx.length; i++) {
    const off = idx[i] * d;
    const o = i * d;
    for (let k = 0; k < d; k++) out[o + k] = s.pixels[off + k] / 255;
  }
  return out;
}

export function classCounts(labels: Int32Array, k: number): number[] {
  const c = new Array<number>(k).fill(0);
  for (const y of labels) c[y]++;
  return c;
}
