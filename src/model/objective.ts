import * as tf from "@tensorflow/tfjs";
import type { EquiVAE } from "./equivae.js";

/** Analytic KL( N(mu, diag exp(logvar)) || N(0, I) ) per example: [N]. */
export function gaussianKl(mu: tf.Tensor2D, logvar: tf.Tensor2D): tf.Tensor1D {
  return tf.mul(
    0.5,
    tf.sum(tf.sub(tf.add(tf.exp(logvar), tf.square(mu)), tf.add(1, logvar)), 1),
  ) as tf.Tensor1D;
}

/** z = mu + sigma * eps (the reparameterisation trick; eps ~ N(0, I) is passed in). */
export function reparameterise(mu: tf.Tensor2D, logvar: tf.Tensor2D, eps: tf.Tensor2D): tf.Tensor2D {
  return tf.add(mu, tf.mul(tf.exp(tf.mul(0.5, logvar)), eps));
}

export interface LabelledTerms {
  /** -E_q[log p(x | v_y, z)] per example (one reparameterised sample), [N]. */
  recon: tf.Tensor1D;
  /** KL(q(z | x, v_y) || p(z)) per example, [N]. */
  kl: tf.Tensor1D;
}

/**
 * The labelled loss of Eq. 4, L(x, y) = recon + kl, per example, given the class embedding v_y
 * of each target. The semi-supervised U(x) of Eq. 5-7 reuses this with each candidate class's v_y.
 */
export function labelledTerms(
  model: EquiVAE,
  x: tf.Tensor4D,
  v: tf.Tensor2D,
  eps: tf.Tensor2D,
): LabelledTerms {
  const { mu, logvar } = model.encode(x, v);
  const z = reparameterise(mu, logvar, eps);
  const out = model.decode(v, z);
  const recon = tf.neg(model.likelihood.logProb(x, out)) as tf.Tensor1D;
  return { recon, kl: gaussianKl(mu, logvar) };
}

/**
 * Supervised training loss: the mean over the batch of L(x, y), with v_y computed from each
 * target's complementary set (context rows + averaging matrix).
 */
export function supervisedLoss(
  model: EquiVAE,
  x: tf.Tensor4D,
  context: tf.Tensor4D,
  avg: tf.Tensor2D,
  eps: tf.Tensor2D,
): { loss: tf.Scalar; recon: tf.Scalar; kl: tf.Scalar } {
  const v = model.setInvariant(context, avg);
  const t = labelledTerms(model, x, v, eps);
  const recon = tf.mean(t.recon) as tf.Scalar;
  const kl = tf.mean(t.kl) as tf.Scalar;
  return { loss: tf.add(recon, kl) as tf.Scalar, recon, kl };
}
