/**
 * Nearest-centroid error of set embeddings (Eq. 2 with n > 1): what `/embed/invariant` returns for
 * several images known to share a class. Every row of the split anchors one set: itself plus n - 1
 * other rows of its class drawn at random, so n = 1 is exactly the plain n = 1 centroid error and
 * larger n shows how fast averaging removes the single images' noise.
 */
import * as tf from "@tensorflow/tfjs";
import { batchPixels, rowsByClass, type ImageSet } from "../data/dataset.js";
import { averagingMatrix } from "../data/sampler.js";
import type { EquiVAE } from "../model/equivae.js";
import { InputError } from "../util/errors.js";
import { Rng, mixSeed } from "../util/rng.js";
import { errorRate, nearestCentroid } from "./embedding.js";

/** Each row followed by n - 1 distinct other rows of its class: [set.n * n] row indices. */
export function drawSets(set: ImageSet, by: number[][], n: number, rng: Rng): number[] {
  const pos = new Int32Array(set.n);
  for (const rows of by) rows.forEach((r, p) => (pos[r] = p));
  // Positions 0..m-2 within a class of m rows; a row's own position is skipped over when mapping back.
  const others = by.map((rows) => Array.from({ length: Math.max(0, rows.length - 1) }, (_, j) => j));
  const out: number[] = [];
  for (let i = 0; i < set.n; i++) {
    const y = set.labels[i];
    const drawn = rng.sample(others[y], n - 1);
    out.push(i, ...drawn.map((j) => by[y][j >= pos[i] ? j + 1 : j]));
  }
  return out;
}

/** v of each set of n consecutive rows of `members`, in batches: [sets * dv]. */
function embedSets(model: EquiVAE, set: ImageSet, members: number[], n: number, batch = 128): Float32Array {
  const dv = model.config.dv;
  const sets = members.length / n;
  const out = new Float32Array(sets * dv);
  for (let s = 0; s < sets; s += batch) {
    const b = Math.min(batch, sets - s);
    const rows = members.slice(s * n, (s + b) * n);
    const groups = Array.from({ length: b }, (_, r) => Array.from({ length: n }, (_, j) => r * n + j));
    const v = tf.tidy(() =>
      model.setInvariant(
        tf.tensor4d(batchPixels(set, rows), [rows.length, set.height, set.width, set.channels]),
        tf.tensor2d(averagingMatrix(groups, b * n), [b, b * n]),
      ),
    );
    out.set(v.dataSync(), s * dv);
    v.dispose();
  }
  return out;
}

/**
 * Error of the nearest centroid for sets of each size in `sizes` (fractions, keyed by n). Draws
 * are seeded: the same seed gives the same sets. Every class must have at least n rows.
 */
export function setCentroidErrors(
  model: EquiVAE,
  centroids: Float32Array,
  set: ImageSet,
  sizes: number[],
  seed: number,
): Record<string, number> {
  const by = rowsByClass(set.labels, model.config.numClasses);
  const smallest = Math.min(...by.filter((r) => r.length > 0).map((r) => r.length));
  const out: Record<string, number> = {};
  for (const n of sizes) {
    if (n > smallest)
      throw new InputError(
        `--set-sizes ${n}: a class of the evaluated split has only ${smallest} image${smallest === 1 ? "" : "s"}`,
      );
    const members = drawSets(set, by, n, new Rng(mixSeed(seed, n)));
    const v = embedSets(model, set, members, n);
    out[String(n)] = errorRate(nearestCentroid(v, centroids, model.config.dv), set.labels);
  }
  return out;
}
