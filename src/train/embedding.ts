import * as tf from "@tensorflow/tfjs";
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
  const n = v.length / dv;
  const k = centroids.length / dv;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestD = Infinity;
    for (let y = 0; y < k; y++) {
      let d = 0;
      for (let j = 0; j < dv; j++) {
        const t = v[i * dv + j] - centroids[y * dv + j];
        d += t * t;
      }
      if (d < bestD) {
        bestD = d;
        best = y;
      }
    }
    out[i] = best;
  }
  return out;
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
