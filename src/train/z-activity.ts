/**
 * Active z dimensions: how much the model uses each dimension of z, as the mean per-dimension KL
 * of q(z | x, v) from the prior N(0, I) over a split (recorded in the manifest's `zActivity`).
 */
import * as tf from "@tensorflow/tfjs";
import type { ImageSet } from "../data/dataset.js";
import { batchPixels } from "../data/dataset.js";
import type { EquiVAE } from "../model/equivae.js";
import type { ZActivity } from "../checkpoint/index.js";
import { ACTIVE_KL_NATS, activeDims, klPerDim } from "../checkpoint/z-activity.js";
import { embedInvariant } from "./embedding.js";

export { ACTIVE_KL_NATS, activeDims, klPerDim } from "../checkpoint/z-activity.js";

/**
 * Measures zActivity on `set` (every row), with v = each image's own n = 1 embedding v(x) (pass
 * `v` when the caller has computed it already, [N * dv]).
 */
export function measureZActivity(
  model: EquiVAE,
  set: ImageSet,
  o: { split: string; v?: Float32Array; threshold?: number; batch?: number },
): ZActivity {
  const { dv, dz } = model.config;
  const v = o.v ?? embedInvariant(model, set);
  const batch = o.batch ?? 256;
  const mu = new Float32Array(set.n * dz);
  const logvar = new Float32Array(set.n * dz);
  for (let s = 0; s < set.n; s += batch) {
    const idx: number[] = [];
    for (let i = s; i < Math.min(set.n, s + batch); i++) idx.push(i);
    const [m, lv] = tf.tidy(() => {
      const x = tf.tensor4d(batchPixels(set, idx), [idx.length, set.height, set.width, set.channels]);
      const vb = tf.tensor2d(v.subarray(s * dv, (s + idx.length) * dv), [idx.length, dv]);
      const q = model.encode(x, vb);
      return [q.mu, q.logvar];
    });
    mu.set(m.dataSync(), s * dz);
    logvar.set(lv.dataSync(), s * dz);
    tf.dispose([m, lv]);
  }
  const threshold = o.threshold ?? ACTIVE_KL_NATS;
  const kl = klPerDim(mu, logvar, dz);
  return {
    split: o.split,
    n: set.n,
    v: "image",
    klPerDim: Array.from(kl, (x) => Number(x.toPrecision(6))),
    thresholdNats: threshold,
    activeDims: activeDims(kl, threshold),
  };
}
