import * as tf from "@tensorflow/tfjs";
import { centroidDistances } from "../checkpoint/index.js";
import type { ImageSet } from "../data/dataset.js";
import { batchPixels } from "../data/dataset.js";
import type { EquiVAE } from "../model/equivae.js";

/** n = 1 invariant embeddings v(x) of every row of `set`, in batches: [N * dv] row-major. */
export function embedInvariant(model: EquiVAE, set: ImageSet, batch = 256): Float32Array {
  const dv = model.config.dv;
  const out = new Float32Array(set.n * dv);
  for (let s = 0; s < set.n; s += batch) {
    const idx: number[] = [];
    for (let i = s; i < Math.min(set.n, s + batch); i++) idx.push(i);
    const v = tf.tidy(() => {
      const x = tf.tensor4d(batchPixels(set, idx), [idx.length, set.height, set.width, set.channels]);
      return model.invariant(x);
    });
    out.set(v.dataSync(), s * dv);
    v.dispose();
  }
  return out;
}

/** Class centroids: the mean n = 1 embedding per class. Classes with no rows get NaN. */
export function centroidsFrom(v: Float32Array, labels: Int32Array, k: number, dv: number): Float32Array {
  const c = new Float32Array(k * dv);
  const counts = new Float64Array(k);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y < 0) continue;
    counts[y]++;
    for (let d = 0; d < dv; d++) c[y * dv + d] += v[i * dv + d];
  }
  for (let y = 0; y < k; y++) for (let d = 0; d < dv; d++) c[y * dv + d] /= counts[y] || NaN;
  return c;
}

/** Index of the nearest centroid (squared Euclidean distance) for every embedding. */
export function nearestCentroid(v: Float32Array, centroids: Float32Array, dv: number): Int32Array {
  const out = new Int32Array(v.length / dv);
  const d2 = new Float64Array(centroids.length / dv);
  for (let i = 0; i < out.length; i++) out[i] = indexOfMin(centroidDistances(v, i, centroids, dv, d2));
  return out;
}

/** The index of the smallest value; never a NaN's (a class without training rows is never the nearest). */
function indexOfMin(a: Float64Array): number {
  let best = 0;
  let min = Infinity;
  for (let y = 0; y < a.length; y++) {
    if (a[y] < min) {
      min = a[y];
      best = y;
    }
  }
  return best;
}

/** Fraction of rows whose prediction differs from the label. */
export function errorRate(pred: Int32Array, labels: Int32Array): number {
  let wrong = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] !== labels[i]) wrong++;
  return pred.length ? wrong / pred.length : NaN;
}

/** Nearest-centroid error of `set` under `centroids`. */
export function centroidError(model: EquiVAE, set: ImageSet, centroids: Float32Array): number {
  const v = embedInvariant(model, set);
  return errorRate(nearestCentroid(v, centroids, model.config.dv), set.labels);
}

export function checkImageShape(model: EquiVAE, set: ImageSet, what: string): void {
  const c = model.config;
  if (set.height !== c.height || set.width !== c.width || set.channels !== c.channels) {
    throw new Error(
      `${what}: images are ${set.height}x${set.width}x${set.channels} but the model expects ${c.height}x${c.width}x${c.channels}`,
    );
  }
}
