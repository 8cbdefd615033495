import { InputError } from "../util/errors.js";

export type LikelihoodName = "bernoulli" | "gaussian";

/**
 * The Gaussian likelihood's scale sigma (in the units the decoder works in: standardised units when
 * the model standardises, else pixel values in [0, 1]): "learned" is one trainable log sigma per
 * channel (`dec/log_sigma`), a number is a fixed sigma.
 */
export type GaussianScale = "learned" | number;

/** Everything needed to rebuild the networks; stored in every checkpoint's manifest. */
export interface ModelConfig {
  height: number;
  width: number;
  channels: number;
  numClasses: number;
  /** Size of the invariant representation v. */
  dv: number;
  /** Size of the equivariant latent z. */
  dz: number;
  /** Dense hidden units H. */
  hidden: number;
  /** Filters of the 5-layer conv stack. */
  filters: number[];
  /** Strides of the conv stack (the decoder mirrors them). */
  strides: number[];
  kernel: number;
  likelihood: LikelihoodName;
  /** Gaussian models only: the scale (absent = "learned"). */
  gaussianScale?: GaussianScale;
  /**
   * Per-pixel standardisation inside the model: the conv stacks see (x - mean) / std, with mean and
   * std per pixel and channel from the training split (the checkpoint's standardisation.json), and a
   * Gaussian likelihood compares its output with the standardised x. Absent (older checkpoints) = false.
   */
  standardise?: boolean;
  /**
   * Semi-supervised models (Eq. 5-7) carry the inference network q(y | x) under the `cls/` prefix.
   * Absent (older checkpoints) means false.
   */
  classifier?: boolean;
}

/**
 * Checks a model config (a manifest's `model`, or one about to be built). Here, with the config's
 * types, rather than in src/model, so that reading a manifest needs nothing of the training side.
 */
export function validateConfig(c: ModelConfig): void {
  const pos = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 1) throw new InputError(`${what} must be a positive integer (got ${v})`);
  };
  pos(c.dv, "dv");
  pos(c.dz, "dz");
  pos(c.hidden, "hidden");
  pos(c.numClasses, "number of classes");
  if (c.numClasses < 2) throw new InputError(`need at least 2 classes (got ${c.numClasses})`);
  if (c.filters.length !== c.strides.length) {
    throw new InputError(
      `--filters needs ${c.strides.length} values (one per conv layer), got ${c.filters.length}`,
    );
  }
  c.filters.forEach((f) => pos(f, "each filter count"));
  if (c.likelihood !== "bernoulli" && c.likelihood !== "gaussian") {
    throw new InputError(`unknown likelihood '${String(c.likelihood)}' (bernoulli or gaussian)`);
  }
  if (c.gaussianScale !== undefined) {
    if (c.likelihood !== "gaussian")
      throw new InputError("a Gaussian scale is set but the likelihood is Bernoulli");
    const s = c.gaussianScale;
    if (s !== "learned" && !(typeof s === "number" && Number.isFinite(s) && s > 0)) {
      throw new InputError(`the Gaussian scale must be 'learned' or a positive number (got '${String(s)}')`);
    }
  }
}
