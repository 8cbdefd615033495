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
 * L(x, y) for every unlabelled x and every candidate class y: the K terms inside U(x) (Eq. 5-7).
 * `vK` holds one class embedding per class ([K, dv]); `eps` is [B*K, dz], row i*K + y for
 * (x_i, y). q(z | x, v)'s conv stack on x does not depend on v, so it runs once per x and its
 * output is reused for all K classes (K times fewer conv passes than encoding B*K tiled copies;
 * the same values and gradients up to float rounding). Returns recon and kl, each [B, K].
 */
export function classTerms(
  model: EquiVAE,
  x: tf.Tensor4D,
  vK: tf.Tensor2D,
  eps: tf.Tensor2D,
): { recon: tf.Tensor2D; kl: tf.Tensor2D } {
  const B = x.shape[0];
  const K = vK.shape[0];
  const rep = <T extends tf.Tensor>(t: T): T =>
    tf.reshape(tf.tile(tf.expandDims(t, 1), [1, K, ...t.shape.slice(1).map(() => 1)]), [
      B * K,
      ...t.shape.slice(1),
    ]) as T;
  const hx = rep(model.encodeX(x));
  const v = tf.tile(vK, [B, 1]) as tf.Tensor2D;
  const { mu, logvar } = model.encodeHead(hx, v);
  const z = reparameterise(mu, logvar, eps);
  const out = model.decode(v, z);
  // Each x against its K outputs: [B, 1, H, W, C] broadcast against [B, K, H, W, C].
  const recon = tf.neg(
    model.likelihood.logProb(tf.expandDims(x, 1), tf.reshape(out, [B, K, ...out.shape.slice(1)])),
  );
  return {
    recon: recon as tf.Tensor2D,
    kl: tf.reshape(gaussianKl(mu, logvar), [B, K]) as tf.Tensor2D,
  };
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

export interface SemiSupervisedParts {
  /** L(x, y) of each labelled example with its true class, [B_l]. */
  labelledL: tf.Tensor1D;
  /** log q(y | x) of each labelled example's true class, [B_l]. */
  labelledLogQ: tf.Tensor1D;
  /** L(x, y) of each unlabelled example for every class y, [B_u, K]. */
  unlabelledL: tf.Tensor2D;
  /** log q(y | x) of each unlabelled example for every class y (log-softmax), [B_u, K]. */
  unlabelledLogQ: tf.Tensor2D;
  /** log p(y), [K]. */
  logPrior: tf.Tensor1D;
}

export interface SemiSupervisedLoss {
  /** J / (B_l + B_u): the mean per example of the step's J (the quantity minimised). */
  loss: tf.Scalar;
  /** U(x) per unlabelled example, [B_u]. */
  u: tf.Tensor1D;
  /** sum over the labelled examples of L(x, y). */
  sumL: tf.Scalar;
  /** sum over the unlabelled examples of U(x). */
  sumU: tf.Scalar;
  /** sum over the labelled examples of -log q(y | x). */
  sumXent: tf.Scalar;
}

/**
 * Combines the parts of the semi-supervised objective (Eq. 5-7), exactly over the K classes:
 *
 *   U(x) = sum_y q(y|x) (L(x,y) - log p(y)) + sum_y q(y|x) log q(y|x)
 *        = -( sum_y q(y|x) (-L(x,y) + log p(y)) + H(q(y|x)) )
 *   J    = sum_labelled L(x,y) + sum_unlabelled U(x) + sum_labelled -log q(y|x)
 *
 * with no weights on any term. The returned `loss` is J divided by the number of examples in the
 * step (B_l + B_u), i.e. the mean per example, so every example counts once whichever part it is in.
 */
export function semiSupervisedObjective(p: SemiSupervisedParts): SemiSupervisedLoss {
  const q = tf.exp(p.unlabelledLogQ);
  const perClass = tf.add(tf.sub(p.unlabelledL, p.logPrior), p.unlabelledLogQ);
  const u = tf.sum(tf.mul(q, perClass), 1) as tf.Tensor1D;
  const sumL = tf.sum(p.labelledL) as tf.Scalar;
  const sumU = tf.sum(u) as tf.Scalar;
  const sumXent = tf.neg(tf.sum(p.labelledLogQ)) as tf.Scalar;
  const count = p.labelledL.shape[0] + p.unlabelledL.shape[0];
  const loss = tf.div(tf.add(tf.add(sumL, sumU), sumXent), count) as tf.Scalar;
  return { loss, u, sumL, sumU, sumXent };
}
