import { validateConfig } from "../checkpoint/model-config.js";
import type { GaussianScale, LikelihoodName, ModelConfig } from "../checkpoint/model-config.js";
import { InputError } from "../util/errors.js";

// The config's types live with the checkpoint format (src/checkpoint), which serving reads
// without any of the training side.
export type { GaussianScale, LikelihoodName, ModelConfig } from "../checkpoint/model-config.js";

/** Units of q(y | x)'s two dropout dense layers (the spec: 128, 64) and their dropout rate. */
export const CLASSIFIER_UNITS = [128, 64] as const;
export const CLASSIFIER_DROPOUT = 0.3;

export const MAX_PARAMETERS = 1_000_000;

export function defaultConfig(p: {
  height: number;
  width: number;
  channels: number;
  numClasses: number;
  dv?: number;
  dz?: number;
  hidden?: number;
  filters?: number[];
  likelihood?: LikelihoodName;
  gaussianScale?: GaussianScale;
  standardise?: boolean;
  classifier?: boolean;
}): ModelConfig {
  const dv = p.dv ?? 16;
  const cfg: ModelConfig = {
    height: p.height,
    width: p.width,
    channels: p.channels,
    numClasses: p.numClasses,
    dv,
    dz: p.dz ?? dv,
    // The spec: H = 128 for d = 16, halved for d = 8.
    hidden: p.hidden ?? (dv <= 8 ? 64 : 128),
    filters: p.filters ?? [16, 16, 32, 32, 64],
    strides: [1, 2, 2, 2, 2],
    kernel: 5,
    likelihood: p.likelihood ?? "bernoulli",
    // Only present when used, so Bernoulli manifests stay byte-for-byte as before.
    ...(p.likelihood === "gaussian" ? { gaussianScale: p.gaussianScale ?? "learned" } : {}),
    ...(p.standardise ? { standardise: true } : {}),
    // Only present when set, so supervised manifests stay byte-for-byte as before.
    ...(p.classifier ? { classifier: true } : {}),
  };
  validateConfig(cfg);
  return cfg;
}

/** Parses `--gaussian-scale learned|SIGMA`. */
export function parseGaussianScale(s: string): GaussianScale {
  if (s === "learned") return "learned";
  const n = Number(s);
  if (s.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new InputError(`--gaussian-scale must be 'learned' or a positive number (got '${s}')`);
  }
  return n;
}

/** Spatial sizes through the conv stack with 'same' padding: [input, after layer 1, ...]. */
export function convSizes(c: ModelConfig): Array<[number, number]> {
  const out: Array<[number, number]> = [[c.height, c.width]];
  for (const s of c.strides) {
    const [h, w] = out[out.length - 1];
    out.push([Math.ceil(h / s), Math.ceil(w / s)]);
  }
  return out;
}
