/**
 * A small seeded generator of a colour image-folder dataset: 32x32 RGB pictures of a circle, a
 * square or a triangle (the class), each with a random light colour, position and size (upright,
 * not rotated) on a random dark background: a soft gradient between two nearby random colours,
 * plus a little pixel noise. Light on dark, as MNIST's digits: with both colours unconstrained the
 * class-mean images would be flat (the shape's contrast would have a random sign), and the
 * invariant embedding needs far more training to find the class. Written as an image folder
 * (src/data/folder.ts):
 *
 *     out/<class>/<class>-0000.png ...          perClass images per class (training + validation)
 *     out/test/<class>/<class>-0000.png ...     testPerClass images per class
 *
 * Same seed, same files (byte for byte). `equivae make-shapes` runs it from the command line.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { encodePng } from "../imaging/index.js";
import { InputError } from "../util/errors.js";
import { Rng, mixSeed } from "../util/rng.js";

export const SHAPE_CLASSES = ["circle", "square", "triangle"] as const;
export type ShapeClass = (typeof SHAPE_CLASSES)[number];

export interface ShapesOptions {
  out: string;
  /** Training + validation images per class. */
  perClass: number;
  /** Test images per class (default: perClass / 4, at least 1; 0 = no test split). */
  testPerClass?: number;
  seed?: number;
  /** Side of the square images (default 32). */
  size?: number;
}

export interface ShapesResult {
  root: string;
  classNames: string[];
  train: number;
  test: number;
}

type Rgb = [number, number, number];

function colour(rng: Rng): Rgb {
  return [rng.next(), rng.next(), rng.next()];
}

/** Whether the point (x, y) is inside the shape centred at (cx, cy) with "radius" r and angle a. */
function inside(
  kind: ShapeClass,
  x: number,
  y: number,
  cx: number,
  cy: number,
  r: number,
  a: number,
): boolean {
  const dx = x - cx;
  const dy = y - cy;
  if (kind === "circle") return dx * dx + dy * dy <= r * r;
  // Rotate the point into the shape's frame.
  const c = Math.cos(-a);
  const s = Math.sin(-a);
  const u = dx * c - dy * s;
  const v = dx * s + dy * c;
  if (kind === "square") {
    const h = r * 0.8; // half side: about the circle's area
    return Math.abs(u) <= h && Math.abs(v) <= h;
  }
  // An equilateral triangle inscribed in a circle of radius 1.2 r: v <= r', and two slanted edges.
  const R = r * 1.2;
  const k = Math.sqrt(3);
  return v <= R / 2 && k * u - v <= R && -k * u - v <= R;
}

/** One image: [size, size, 3] floats in [0, 1]. */
export function drawShape(kind: ShapeClass, rng: Rng, size = 32): Float32Array {
  // A dark background and a light shape (as MNIST's light-on-dark digits), hues at random.
  const bgA = colour(rng).map((v) => 0.45 * v) as Rgb;
  const bgB = bgA.map((v) => Math.min(1, Math.max(0, v + (rng.next() - 0.5) * 0.2))) as Rgb;
  const fg = colour(rng).map((v) => 0.55 + 0.45 * v) as Rgb;
  const gradAngle = rng.next() * 2 * Math.PI;
  const gx = Math.cos(gradAngle);
  const gy = Math.sin(gradAngle);
  const r = size * (0.3 + 0.08 * rng.next()); // 9.6 .. 12.2 pixels at 32
  // Centre within +-6% of the middle (+-2 pixels at 32).
  const cx = size * (0.47 + 0.06 * rng.next());
  const cy = size * (0.47 + 0.06 * rng.next());
  const angle = 0;
  const out = new Float32Array(size * size * 3);
  const SS = 4; // 4x4 supersampling for smooth edges
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let cover = 0;
      for (let sy = 0; sy < SS; sy++)
        for (let sx = 0; sx < SS; sx++)
          if (inside(kind, x + (sx + 0.5) / SS, y + (sy + 0.5) / SS, cx, cy, r, angle)) cover++;
      const f = cover / (SS * SS);
      // Gradient position in [0, 1] along the gradient direction.
      const t = 0.5 + (((x + 0.5) / size - 0.5) * gx + ((y + 0.5) / size - 0.5) * gy) * 0.7;
      for (let k = 0; k < 3; k++) {
        const bg = bgA[k] * (1 - t) + bgB[k] * t + (rng.next() - 0.5) * 0.06;
        const v = bg * (1 - f) + fg[k] * f;
        out[(y * size + x) * 3 + k] = Math.min(1, Math.max(0, v));
      }
    }
  }
  return out;
}

function writeSplit(dir: string, n: number, seed: number, split: number, size: number): void {
  SHAPE_CLASSES.forEach((kind, k) => {
    const cdir = join(dir, kind);
    mkdirSync(cdir, { recursive: true });
    for (let i = 0; i < n; i++) {
      const rng = new Rng(mixSeed(seed, split, k, i));
      const img = drawShape(kind, rng, size);
      writeFileSync(join(cdir, `${kind}-${String(i).padStart(4, "0")}.png`), encodePng(img, size, size, 3));
    }
  });
}

/** Writes the dataset (see the module comment); `out` must not exist or be empty. */
export function makeShapes(o: ShapesOptions): ShapesResult {
  const root = resolve(o.out);
  const size = o.size ?? 32;
  const seed = o.seed ?? 1;
  if (!Number.isInteger(o.perClass) || o.perClass < 2)
    throw new InputError(`--per-class must be an integer >= 2 (got ${o.perClass})`);
  const testN = o.testPerClass ?? Math.max(1, Math.floor(o.perClass / 4));
  if (!Number.isInteger(testN) || testN < 0)
    throw new InputError(`--test-per-class must be an integer >= 0 (got ${testN})`);
  if (!Number.isInteger(size) || size < 8 || size > 256)
    throw new InputError(`--size must be an integer in 8..256 (got ${size})`);
  if (existsSync(root) && readdirSync(root).length > 0)
    throw new InputError(`${root} already exists and is not empty; choose another --out`);
  writeSplit(root, o.perClass, seed, 0, size);
  if (testN > 0) writeSplit(join(root, "test"), testN, seed, 1, size);
  return {
    root,
    classNames: [...SHAPE_CLASSES],
    train: o.perClass * SHAPE_CLASSES.length,
    test: testN * SHAPE_CLASSES.length,
  };
}
