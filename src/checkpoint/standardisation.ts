/**
 * standardisation.json: the per-pixel mean and std a standardising model applies to its inputs
 * (computed in src/model/standardisation.ts, applied by the model and the ONNX graphs).
 */
import { existsSync, promises as fsp } from "node:fs";
import { join } from "node:path";
import { InputError } from "../util/errors.js";
import { FILES, type Manifest } from "./format.js";

export type StandardiseMode = "pixel" | "channel";

export interface Standardisation {
  /** Per pixel and channel, NHWC order without N: H*W*C values each. */
  mean: Float32Array;
  std: Float32Array;
}

/** The JSON file (standardisation.json). */
export interface StandardisationFile {
  shape: [number, number, number];
  /** How the statistics were pooled (absent = "pixel"). */
  mode?: StandardiseMode;
  /** Training images the statistics were computed on. */
  count: number;
  /** The floor applied to std (see STD_FLOOR_* in src/model/standardisation.ts). */
  stdFloor: number;
  mean: number[];
  std: number[];
}

/** Checks a parsed standardisation.json against the model's image shape. */
export function fromFile(
  f: StandardisationFile,
  shape: [number, number, number],
  what: string,
): Standardisation {
  const d = shape[0] * shape[1] * shape[2];
  const ok =
    f &&
    Array.isArray(f.mean) &&
    Array.isArray(f.std) &&
    f.mean.length === d &&
    f.std.length === d &&
    f.mean.every((x) => Number.isFinite(x)) &&
    f.std.every((x) => Number.isFinite(x) && x > 0);
  if (!ok) {
    throw new InputError(
      `${what}: expected ${d} finite means and ${d} positive stds (${shape.join("x")}); the file is damaged`,
    );
  }
  return { mean: Float32Array.from(f.mean), std: Float32Array.from(f.std) };
}

/** A standardising model's standardisation.json, checked against its image shape. */
export async function readStandardisation(
  dir: string,
  m: Pick<Manifest, "model">,
): Promise<StandardisationFile> {
  const p = join(dir, FILES.standardisation);
  if (!existsSync(p)) {
    throw new InputError(`checkpoint file missing: ${p} (the model standardises its inputs)`);
  }
  let f: StandardisationFile;
  try {
    f = JSON.parse(await fsp.readFile(p, "utf8")) as StandardisationFile;
  } catch (e) {
    throw new InputError(`${p}: not valid JSON (${(e as Error).message})`);
  }
  const c = m.model;
  fromFile(f, [c.height, c.width, c.channels], p);
  return f;
}
