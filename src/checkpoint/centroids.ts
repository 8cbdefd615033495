import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { InputError, errorMessage } from "../util/errors.js";
import { FILES, type Centroids } from "./format.js";

/** A checkpoint's centroids.json (the class centroids of v over the training split). */
export async function readCentroids(dir: string): Promise<Centroids> {
  const p = join(dir, FILES.centroids);
  try {
    return JSON.parse(await fsp.readFile(p, "utf8")) as Centroids;
  } catch (e) {
    throw new InputError(`${p}: unreadable centroids (${errorMessage(e)})`);
  }
}

/** The centroids as one row-major [K * dv] matrix; a class without training rows is NaN. */
export function centroidMatrix(c: Centroids): Float32Array {
  return Float32Array.from(c.centroids.flat(), (x) => x ?? NaN);
}

/**
 * Squared Euclidean distances from row `i` of `v` ([n, dv]) to each of the centroids ([K, dv]),
 * written to `out` ([K]): the one distance of nearest-centroid classification, in training,
 * evaluation and serving. A NaN centroid is at distance NaN.
 */
export function centroidDistances(
  v: Float32Array,
  i: number,
  centroids: Float32Array,
  dv: number,
  out: Float64Array,
): Float64Array {
  for (let y = 0; y < out.length; y++) {
    let s = 0;
    for (let j = 0; j < dv; j++) {
      const t = v[i * dv + j] - centroids[y * dv + j];
      s += t * t;
    }
    out[y] = s;
  }
  return out;
}
