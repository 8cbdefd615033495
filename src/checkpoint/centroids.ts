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

/** The centroids as one row-major [K * dv] matrix. */
export function centroidMatrix(c: Centroids): Float32Array {
  return Float32Array.from(c.centroids.flat());
}
