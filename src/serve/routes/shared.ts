/** Lookups the inference routes share: class references, centroids and vectors from a request. */
import type { Engine } from "../../inference/index.js";
import { ApiError } from "../errors.js";

/** A class label or name -> its index (422 unknown-class otherwise). */
export function classIndex(engine: Engine, ref: number | string): number {
  const K = engine.classNames.length;
  const y = typeof ref === "number" ? ref : engine.classNames.indexOf(ref);
  if (!Number.isInteger(y) || y < 0 || y >= K) {
    const names = engine.classNames.slice(0, 20).join(", ") + (K > 20 ? ", ..." : "");
    throw new ApiError(
      "unknown-class",
      typeof ref === "number"
        ? `class label ${ref} is out of range (the model has ${K} classes, 0..${K - 1})`
        : `unknown class name '${ref}' (classes: ${names})`,
    );
  }
  return y;
}

/** The class's centroid of v (422 when the class had no training images). */
export function centroid(engine: Engine, ref: number | string): Float32Array {
  const dv = engine.config.dv;
  const y = classIndex(engine, ref);
  const v = engine.centroids.slice(y * dv, (y + 1) * dv);
  if (v.some((t) => Number.isNaN(t)))
    throw new ApiError(
      "unknown-class",
      `class '${engine.classNames[y]}' has no centroid (no training images)`,
    );
  return v;
}

/** A v or z vector from JSON, checked for its length. */
export function vector(a: number[], d: number, what: string): Float32Array {
  if (a.length !== d)
    throw new ApiError("invalid-dimensions", `${what} has ${a.length} values; the model needs ${d}`);
  return Float32Array.from(a);
}

/** n copies of one row. */
export function repeat(row: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n * row.length);
  for (let i = 0; i < n; i++) out.set(row, i * row.length);
  return out;
}
