/**
 * Which z dimensions the model uses: the KL of q(z | x, v) from the prior N(0, 1) per dimension,
 * averaged over images. A dimension whose mu stays ~0 and logvar ~0 on every image carries no
 * information (KL ~ 0): decoding along it changes nothing. The report draws its z-grid over the two
 * with the largest KL, from the manifest's `zActivity` (written by eval/train) when it is there,
 * else computed here on the report's own images.
 */

import { klPerDim as meanKlPerDim } from "../checkpoint/z-activity.js";

/** The manifest's record of the active z dimensions (eval/train), as far as the report reads it. */
export interface ZActivity {
  split?: string;
  n?: number;
  /** Mean KL per z dimension (nats), dz entries. */
  klPerDim?: number[];
  thresholdNats?: number;
  /** The dimensions whose KL is above the threshold. */
  activeDims: number[];
}

/**
 * Mean KL(q(z_j | x) || N(0, 1)) per dimension j over n images (the arithmetic train and eval
 * record zActivity with); mu and logvar are [n, dz] row-major.
 */
export function klPerDim(mu: Float32Array, logvar: Float32Array, n: number, dz: number): number[] {
  if (mu.length !== n * dz || logvar.length !== n * dz)
    throw new Error("klPerDim: mu/logvar are not [n, dz]");
  return n > 0 ? Array.from(meanKlPerDim(mu, logvar, dz)) : new Array<number>(dz).fill(0);
}

/** Dimension indices by KL, largest first (ties: lower index first). */
export function rankByKl(kl: number[]): number[] {
  return kl.map((_, j) => j).sort((a, b) => kl[b] - kl[a] || a - b);
}

const isDim = (x: unknown, dz: number): x is number =>
  Number.isInteger(x) && (x as number) >= 0 && (x as number) < dz;

/**
 * The manifest's `zActivity` when it is well formed for a model with `dz` z dimensions (activeDims
 * distinct indices below dz; klPerDim, when present, dz finite numbers), else undefined.
 */
export function manifestZActivity(manifest: unknown, dz: number): ZActivity | undefined {
  const za = (manifest as { zActivity?: unknown } | null)?.zActivity;
  if (za === null || typeof za !== "object") return undefined;
  const { activeDims, klPerDim: kl, split, n, thresholdNats } = za as Record<string, unknown>;
  if (!Array.isArray(activeDims) || !activeDims.every((d) => isDim(d, dz))) return undefined;
  if (new Set(activeDims).size !== activeDims.length) return undefined;
  const out: ZActivity = { activeDims: activeDims as number[] };
  if (Array.isArray(kl) && kl.length === dz && kl.every((x) => typeof x === "number" && Number.isFinite(x))) {
    out.klPerDim = kl as number[];
  }
  if (typeof split === "string") out.split = split;
  if (typeof n === "number") out.n = n;
  if (typeof thresholdNats === "number") out.thresholdNats = thresholdNats;
  return out;
}

export interface ActiveChoice {
  /** The chosen dimensions, most active first. */
  dims: number[];
  /** "manifest": from manifest.zActivity; "computed": from KL on the report's images. */
  from: "manifest" | "computed";
  /** KL per dimension the choice was ranked by, when known. */
  klPerDim?: number[];
}

/**
 * The `count` most active z dimensions: the manifest's active dimensions ranked by its KL per
 * dimension (in its own order without KL), else those of `computedKl` (KL on the report's images).
 * When fewer than `count` are active, the rest are the next dimensions by KL (or by index without
 * any KL). Undefined when neither source is there.
 */
export function mostActiveDims(
  count: number,
  dz: number,
  fromManifest: ZActivity | undefined,
  computedKl: number[] | undefined,
): ActiveChoice | undefined {
  const n = Math.min(count, dz);
  if (fromManifest) {
    const kl = fromManifest.klPerDim ?? computedKl;
    const active = kl
      ? [...fromManifest.activeDims].sort((a, b) => kl[b] - kl[a] || a - b)
      : [...fromManifest.activeDims];
    const rest = (kl ? rankByKl(kl) : Array.from({ length: dz }, (_, j) => j)).filter(
      (j) => !active.includes(j),
    );
    const dims = [...active, ...rest].slice(0, n);
    return { dims, from: "manifest", ...(kl ? { klPerDim: kl } : {}) };
  }
  if (computedKl) return { dims: rankByKl(computedKl).slice(0, n), from: "computed", klPerDim: computedKl };
  return undefined;
}
