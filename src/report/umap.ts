import { Rng } from "../util/rng.js";

/** UMAP's neighbourhood size (umap-js's and umap-learn's default). */
export const UMAP_NEIGHBOURS = 15;
/** How tightly points may pack in the picture (umap-learn's default). */
export const UMAP_MIN_DIST = 0.1;
/** Optimisation epochs: umap-learn's choice for large data; umap-js's 500 for small data takes 2.5x longer. */
export const UMAP_EPOCHS = 200;

/**
 * 2-D UMAP (umap-js) of n points of dimension d ([n, d] row-major), deterministic for a seed: every
 * random draw of umap-js (neighbour search, initialisation, negative samples) comes from Rng(seed).
 * Returns [n, 2] row-major.
 */
export async function umap2d(x: Float32Array, n: number, d: number, seed: number): Promise<Float64Array> {
  if (x.length !== n * d) throw new Error(`umap2d: ${x.length} values are not ${n} x ${d}`);
  if (n < 3) throw new Error(`umap2d: needs at least 3 points (got ${n})`);
  // Loaded here: umap-js is needed only by `report` (the serving image prunes it).
  const { UMAP } = await import("umap-js");
  const rng = new Rng(seed);
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors: Math.min(UMAP_NEIGHBOURS, n - 1),
    minDist: UMAP_MIN_DIST,
    nEpochs: UMAP_EPOCHS,
    random: () => rng.next(),
  });
  const rows = Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * d, (i + 1) * d)));
  const y = umap.fit(rows);
  const out = new Float64Array(n * 2);
  y.forEach((p, i) => {
    out[2 * i] = p[0];
    out[2 * i + 1] = p[1];
  });
  return out;
}
