import * as tf from "@tensorflow/tfjs";
import type { LikelihoodName } from "./config.js";

/**
 * p(x | v, z) given the decoder's output. Pluggable so the Gaussian (natural images)
 * can sit beside the Bernoulli (MNIST family) without touching the objective.
 * `x` is always the data as fed to the model (pixels in [0, 1]).
 */
export interface Likelihood {
  readonly name: LikelihoodName;
  /**
   * log p(x | out) summed over pixels: [..., H, W, C] -> [...], e.g. [N, H, W, C] -> [N]. `x`
   * broadcasts against `out`: [B, 1, H, W, C] against [B, K, H, W, C] scores each x under K
   * outputs without tiling x (wasm's Tile runs in JavaScript: 23 -> 8 ms a step at 32 x 10).
   */
  logProb(x: tf.Tensor, out: tf.Tensor): tf.Tensor;
  /** The decoder output mapped to data space (pixel probabilities or means), in [0, 1]. */
  mean(out: tf.Tensor4D): tf.Tensor4D;
}

/** The last three axes: height, width, channels. */
const PIXEL_AXES = [-3, -2, -1];

/** Bernoulli over pixels with logits; pixel values in [0,1] are soft targets. */
export const bernoulli: Likelihood = {
  name: "bernoulli",
  logProb(x, logits) {
    // x*l - softplus(l) = x*log(sigmoid(l)) + (1-x)*log(1-sigmoid(l)), computed stably.
    return tf.sum(tf.sub(tf.mul(x, logits), tf.softplus(logits)), PIXEL_AXES);
  },
  mean(logits) {
    return tf.sigmoid(logits);
  },
};

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** What the Gaussian likelihood needs from its model. */
export interface GaussianParts {
  /** log sigma in the decoder's units, broadcastable to [N, H, W, C] (a [C] variable or a scalar). */
  logSigma(): tf.Tensor;
  /** Data (pixels in [0, 1], [..., H, W, C]) -> the decoder's units: (x - mean) / std, or the identity. */
  toModel(x: tf.Tensor): tf.Tensor;
  /** The decoder's units -> data: out * std + mean, or the identity. */
  toData(out: tf.Tensor4D): tf.Tensor4D;
  /** sum over pixels and channels of log std (0 without standardisation). */
  logStdSum(): number;
}

/**
 * Diagonal Gaussian N(x_s | out, sigma^2) over the (standardised) pixels x_s, one sigma per channel
 * (learned) or one fixed sigma. logProb is the density of the pixels x themselves (in [0, 1] units):
 * the change of variables x_s = (x - mean) / std adds -sum log std, a constant that does not change
 * the gradients but keeps the reported ELBO comparable with and without standardisation.
 * The data-space mean is out * std + mean, clipped to [0, 1] (pictures, the decoder graph).
 */
export function gaussian(p: GaussianParts): Likelihood {
  return {
    name: "gaussian",
    logProb(x, out) {
      const ls = p.logSigma();
      const r = tf.mul(tf.sub(p.toModel(x), out), tf.exp(tf.neg(ls)));
      const perPixel = tf.add(tf.mul(0.5, tf.square(r)), tf.add(ls, HALF_LOG_2PI));
      return tf.sub(tf.neg(tf.sum(perPixel, PIXEL_AXES)), p.logStdSum());
    },
    mean(out) {
      return tf.clipByValue(p.toData(out), 0, 1);
    },
  };
}

/** The Bernoulli likelihood; the Gaussian needs its model's parts (see EquiVAE). */
export function likelihoodFor(name: LikelihoodName, parts?: GaussianParts): Likelihood {
  if (name === "bernoulli") return bernoulli;
  if (name === "gaussian") {
    if (!parts) throw new Error("the Gaussian likelihood needs its model's scale and standardisation");
    return gaussian(parts);
  }
  throw new Error(`unknown likelihood '${String(name)}'`);
}
