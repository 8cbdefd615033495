import { batchPixels, rowsByClass, type ImageSet } from "../data/dataset.js";
import type { Engine } from "../inference/index.js";
import { mixSeed, Rng } from "../util/rng.js";

/** Rows of prior samples (one z per row, shared by every class column). */
export const SAMPLE_ROWS = 8;
/** Decoded points per interpolation row, t = 0, 1/(STEPS-1), ..., 1. */
export const INTERPOLATION_STEPS = 10;
/** Rows of the interpolation and style-transfer pictures (at most one per class). */
export const MAX_IMAGE_ROWS = 10;

/** Separate random streams per picture, so changing one picture never changes another. */
const STREAM = { samples: 1, interpolation: 2, style: 3, points: 4, umapV: 5, umapZ: 6 } as const;

/** The seed of umap-js's random draws for the UMAP of v or of z. */
export function umapSeed(seed: number, space: "v" | "z"): number {
  return mixSeed(seed, space === "v" ? STREAM.umapV : STREAM.umapZ);
}

export type Cells = Array<Array<Float32Array | null>>;

/** A standard normal draw (Box-Muller; u1 in (0, 1]). */
export function gaussian(rng: Rng): number {
  const u1 = 1 - rng.next();
  const u2 = rng.next();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

function centroidOf(engine: Engine, y: number): Float32Array | null {
  const dv = engine.config.dv;
  const c = engine.centroids.subarray(y * dv, (y + 1) * dv);
  return c.every(Number.isFinite) ? c : null;
}

/** Decodes (centroid of class[i], z[i]) pairs; returns one image per pair. */
async function decodeWithCentroids(
  engine: Engine,
  classes: number[],
  z: Float32Array[],
): Promise<Float32Array[]> {
  const { dv, dz } = engine.config;
  const n = classes.length;
  if (n === 0) return [];
  const vb = new Float32Array(n * dv);
  const zb = new Float32Array(n * dz);
  for (let i = 0; i < n; i++) {
    vb.set(centroidOf(engine, classes[i])!, i * dv);
    zb.set(z[i], i * dz);
  }
  const out = await engine.decode(vb, zb, n);
  const px = out.length / n;
  return Array.from({ length: n }, (_, i) => out.slice(i * px, (i + 1) * px));
}

/** mu of q(z | x, v(x)) for the given images of a set (v = the image's own n = 1 embedding). */
export async function encodeStyles(engine: Engine, set: ImageSet, idx: number[]): Promise<Float32Array[]> {
  const dz = engine.config.dz;
  const x = batchPixels(set, idx);
  const v = await engine.embedInvariant(x, idx.length);
  const { mu } = await engine.encodeEquivariant(x, idx.length, v);
  return idx.map((_, i) => mu.slice(i * dz, (i + 1) * dz));
}

function realImage(set: ImageSet, i: number): Float32Array {
  return batchPixels(set, [i]);
}

/**
 * Prior samples: SAMPLE_ROWS rows x K class columns; cell (r, y) decodes (centroid y, z_r) with
 * z_r ~ N(0, I) seeded, the same z_r across a row. Classes without a centroid are null.
 */
export async function sampleCells(
  engine: Engine,
  seed: number,
): Promise<{ cells: Cells; z: Float32Array[] }> {
  const { dz, numClasses: K } = engine.config;
  const rng = new Rng(mixSeed(seed, STREAM.samples));
  const z = Array.from({ length: SAMPLE_ROWS }, () => Float32Array.from({ length: dz }, () => gaussian(rng)));
  const classes: number[] = [];
  const zs: Float32Array[] = [];
  for (let r = 0; r < SAMPLE_ROWS; r++) {
    for (let y = 0; y < K; y++) {
      if (centroidOf(engine, y)) {
        classes.push(y);
        zs.push(z[r]);
      }
    }
  }
  const dec = await decodeWithCentroids(engine, classes, zs);
  const cells: Cells = Array.from({ length: SAMPLE_ROWS }, () =>
    new Array<Float32Array | null>(K).fill(null),
  );
  let k = 0;
  for (let r = 0; r < SAMPLE_ROWS; r++) {
    for (let y = 0; y < K; y++) if (centroidOf(engine, y)) cells[r][y] = dec[k++];
  }
  return { cells, z };
}

export interface InterpolationRow {
  label: number;
  /** Indices (into the set) of the two end images. */
  a: number;
  b: number;
}

/** The rows' classes: the first MAX_IMAGE_ROWS classes with a centroid and >= `need` images. */
function rowClasses(engine: Engine, by: number[][], need: number): number[] {
  const out: number[] = [];
  for (let y = 0; y < by.length && out.length < MAX_IMAGE_ROWS; y++) {
    if (centroidOf(engine, y) && by[y].length >= need) out.push(y);
  }
  return out;
}

/** Random candidates per class; the interpolation runs between the two whose z are farthest apart. */
export const INTERPOLATION_CANDIDATES = 8;

/**
 * The end images of each interpolation row: of INTERPOLATION_CANDIDATES seeded random images of
 * the class, the pair whose mu are farthest apart (so the row shows a visible change of style).
 */
export async function interpolationRows(
  engine: Engine,
  set: ImageSet,
  seed: number,
): Promise<Array<InterpolationRow & { za: Float32Array; zb: Float32Array }>> {
  const rng = new Rng(mixSeed(seed, STREAM.interpolation));
  const by = rowsByClass(set.labels, engine.config.numClasses);
  const classes = rowClasses(engine, by, 2);
  const cands = classes.map((y) => rng.sample(by[y], Math.min(INTERPOLATION_CANDIDATES, by[y].length)));
  if (classes.length === 0) return [];
  const mu = await encodeStyles(engine, set, cands.flat());
  let k = 0;
  return classes.map((label, r) => {
    const zs = mu.slice(k, k + cands[r].length);
    k += cands[r].length;
    let best = [0, 1];
    let bestD = -1;
    for (let i = 0; i < zs.length; i++) {
      for (let j = i + 1; j < zs.length; j++) {
        let d = 0;
        for (let t = 0; t < zs[i].length; t++) d += (zs[i][t] - zs[j][t]) ** 2;
        if (d > bestD) {
          bestD = d;
          best = [i, j];
        }
      }
    }
    const [i, j] = best;
    return { label, a: cands[r][i], b: cands[r][j], za: zs[i], zb: zs[j] };
  });
}

/**
 * Interpolation in z with v fixed: a row per class, [x_a, decode(c_y, (1-t) z_a + t z_b) for
 * INTERPOLATION_STEPS values of t from 0 to 1, x_b], z_a = mu of q(z | x_a, v(x_a)).
 */
export async function interpolationCells(
  engine: Engine,
  set: ImageSet,
  seed: number,
): Promise<{ cells: Cells; rows: InterpolationRow[] }> {
  const rows = await interpolationRows(engine, set, seed);
  if (rows.length === 0) return { cells: [], rows };
  const classes: number[] = [];
  const zs: Float32Array[] = [];
  for (const r of rows) {
    for (let s = 0; s < INTERPOLATION_STEPS; s++) {
      const t = s / (INTERPOLATION_STEPS - 1);
      classes.push(r.label);
      zs.push(r.za.map((a, j) => (1 - t) * a + t * r.zb[j]));
    }
  }
  const dec = await decodeWithCentroids(engine, classes, zs);
  const cells: Cells = rows.map((r, i) => [
    realImage(set, r.a),
    ...dec.slice(i * INTERPOLATION_STEPS, (i + 1) * INTERPOLATION_STEPS),
    realImage(set, r.b),
  ]);
  return { cells, rows: rows.map(({ label, a, b }) => ({ label, a, b })) };
}

/** The seeded choice of style images: one image of each of the first MAX_IMAGE_ROWS classes. */
export function styleImages(engine: Engine, set: ImageSet, seed: number): number[] {
  const rng = new Rng(mixSeed(seed, STREAM.style));
  const by = rowsByClass(set.labels, engine.config.numClasses);
  return rowClasses(engine, by, 1).map((y) => by[y][rng.int(0, by[y].length - 1)]);
}

/**
 * Style transfer: a row per style image, [x, decode(c_y, z(x)) for every class y], with
 * z(x) = mu of q(z | x, v(x)). Classes without a centroid are null.
 */
export async function styleTransferCells(
  engine: Engine,
  set: ImageSet,
  seed: number,
): Promise<{ cells: Cells; images: number[] }> {
  const K = engine.config.numClasses;
  const images = styleImages(engine, set, seed);
  if (images.length === 0) return { cells: [], images };
  const mu = await encodeStyles(engine, set, images);
  const targets: number[] = [];
  for (let y = 0; y < K; y++) if (centroidOf(engine, y)) targets.push(y);
  const dec = await decodeWithCentroids(
    engine,
    images.flatMap(() => targets),
    mu.flatMap((z) => targets.map(() => z)),
  );
  const cells: Cells = images.map((i, r) => {
    const row: Array<Float32Array | null> = [
      realImage(set, i),
      ...new Array<Float32Array | null>(K).fill(null),
    ];
    targets.forEach((y, k) => (row[1 + y] = dec[r * targets.length + k]));
    return row;
  });
  return { cells, images };
}

/** Images per engine call when embedding many images (bounds memory; results do not depend on it). */
export const EMBED_CHUNK = 250;

export interface EmbeddedPoints {
  /** Indices into the set, in the seeded random order they are drawn in. */
  idx: number[];
  labels: Int32Array;
  /** v (n = 1 invariant embedding), [n, dv]. */
  v: Float32Array;
  /** mu and logvar of q(z | x, v(x)), [n, dz]. */
  mu: Float32Array;
  logvar: Float32Array;
}

/**
 * v, and q(z | x, v(x))'s mu and logvar, of `count` seeded random images of a set (all of them
 * when it has fewer), for the UMAP pictures and the KL per z dimension.
 */
export async function embedPoints(
  engine: Engine,
  set: ImageSet,
  seed: number,
  count: number,
): Promise<EmbeddedPoints> {
  const { dv, dz } = engine.config;
  const rng = new Rng(mixSeed(seed, STREAM.points));
  const all = Array.from({ length: set.n }, (_, i) => i);
  const idx = rng.sample(all, Math.min(count, set.n));
  const n = idx.length;
  const v = new Float32Array(n * dv);
  const mu = new Float32Array(n * dz);
  const logvar = new Float32Array(n * dz);
  for (let s = 0; s < n; s += EMBED_CHUNK) {
    const part = idx.slice(s, s + EMBED_CHUNK);
    const x = batchPixels(set, part);
    const vb = await engine.embedInvariant(x, part.length);
    const q = await engine.encodeEquivariant(x, part.length, vb);
    v.set(vb, s * dv);
    mu.set(q.mu, s * dz);
    logvar.set(q.logvar, s * dz);
  }
  return { idx, labels: Int32Array.from(idx, (i) => set.labels[i]), v, mu, logvar };
}

/** Values of each z-grid axis: Z_GRID_STEPS evenly spaced from -Z_GRID_RANGE to +Z_GRID_RANGE. */
export const Z_GRID_STEPS = 9;
export const Z_GRID_RANGE = 2;

export function zGridValues(): number[] {
  return Array.from(
    { length: Z_GRID_STEPS },
    (_, i) => -Z_GRID_RANGE + (2 * Z_GRID_RANGE * i) / (Z_GRID_STEPS - 1),
  );
}

/**
 * The z-grid (the paper's Figure 5, right): v fixed to class y's centroid, z = 0 except
 * z[dims[0]] = the column's value and z[dims[1]] = the row's (zGridValues, both ascending). Null
 * when the class has no centroid.
 */
export async function zGridCells(engine: Engine, y: number, dims: [number, number]): Promise<Cells | null> {
  if (!centroidOf(engine, y)) return null;
  const dz = engine.config.dz;
  const values = zGridValues();
  const zs: Float32Array[] = [];
  for (const row of values) {
    for (const col of values) {
      const z = new Float32Array(dz);
      z[dims[0]] = col;
      z[dims[1]] = row;
      zs.push(z);
    }
  }
  const dec = await decodeWithCentroids(
    engine,
    zs.map(() => y),
    zs,
  );
  const k = values.length;
  return values.map((_, i) => dec.slice(i * k, (i + 1) * k));
}
