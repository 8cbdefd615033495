import * as tf from "@tensorflow/tfjs";
import type { LikelihoodName } from "./config.js";

/**
 * p(x | v, z) given the decoder's output. Pluggable so the Gaussian (natural images)
 * can sit beside the Bernoulli (MNIST family) without touching the objective.
 */
export interface Likelihood {
  readonly name: LikelihoodName;
  /** Per-example log p(x | out), summed over pixels: shape [N]. */
  logProb(x: tf.Tensor4D, out: tf.Tensor4D): tf.Tensor1D;
  /** The decoder output mapped to data space (pixel probabilities or means). */
  mean(out: tf.Tensor4D): tf.Tensor4D;
}

/** Bernoulli over pixels with logits; pixel values in [0,1] are soft targets. */
export const bernoulli: Likelihood = {
  name: "bernoulli",
  logProb(x, logits) {
    // x*l - softplus(l) = x*log(sigmoid(l)) + (1-x)*log(1-sigmoid(l)), computed stably.
    return tf.sum(tf.sub(tf.mul(x, logits), tf.softplus(logits)), [1, 2, 3]) as tf.Tensor1D;
  },
  mean(logits) {
    return tf.sigmoid(logits);
  },
};

export function likelihoodFor(name: LikelihoodName): Likelihood {
  if (name === "bernoulli") return bernoulli;
  throw new Error(`likelihood '${name}' is not implemented yet`);
}
